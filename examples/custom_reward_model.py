"""Design banks with your own reward model: a scikit-learn pipeline inside the generative bank designer.

A reward model is any class with ``fit(users (n, 8), embeddings (n, d), clicks (n,), sample_weight=None)`` and
``predict(users (n, 8), embeddings (m, d)) -> (n, m)`` click probabilities, built as ``Model(rng=rng, **params)``
(see ``actionbank_env.protocols.RewardModel``). The designer also passes ``reference_embeddings=`` (the
candidate pool's embeddings, for fitting projections) unless ``fit_on_pool_pca=False``.

``GenerativeConfig.reward_model`` takes a *registered name* only (a class or ``"module:Class"`` is refused), so
the model is added to ``optimizers.reward_models.REWARD_MODELS`` under a new name first; the designer then
fits it on the logged campaigns, scores a pool of offline-written candidates and greedily picks new actions.
The script runs that designer on ``BankDesign-v0`` next to the built-in ``linear`` model and to keeping the
bank, and prints the true value (perfect targeting) and the served value of each deployed bank.

Run (about 20 s; hashing embedder for speed, ``--embedder minilm`` for the semantic default one)::

    python examples/custom_reward_model.py [--users 2000] [--embedder minilm]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

import actionbank_env  # noqa: F401  (registers the env ids)
from actionbank_env.core.copywriting import OfflineCopywriter
from actionbank_env.protocols import DesignerContext
from optimizers.generative import GenerativeDesigner
from optimizers.reward_models import REWARD_MODELS


class QuadraticLogitRewardModel:
    """Logistic regression on all degree-2 terms of [user features, PCA(embedding)]."""

    def __init__(
        self,
        *,
        rng: np.random.Generator,
        components: int = 8,
        C: float = 0.3,
        reference_embeddings: np.ndarray | None = None,
    ) -> None:
        self.components, self.reference = components, reference_embeddings
        self.pca = PCA(n_components=components, svd_solver="full")
        self.pipeline = make_pipeline(
            PolynomialFeatures(degree=2, include_bias=False), StandardScaler(), LogisticRegression(C=C, max_iter=2000)
        )

    def fit(
        self, users: np.ndarray, embeddings: np.ndarray, clicks: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> QuadraticLogitRewardModel:
        self.pca.fit(self.reference if self.reference is not None else embeddings)
        features = np.hstack([users, self.pca.transform(embeddings)])
        self.pipeline.fit(features, clicks, logisticregression__sample_weight=sample_weight)
        return self

    def predict(self, users: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
        n, m = users.shape[0], embeddings.shape[0]
        pairs = np.hstack([np.repeat(users, m, axis=0), np.tile(self.pca.transform(embeddings), (n, 1))])
        return self.pipeline.predict_proba(pairs)[:, 1].reshape(n, m)


def design_run(reward_model: str | None, args: argparse.Namespace) -> list[tuple[float, float]]:
    """(bank value, served value) of each bank deployed by the designer (``None``: keep the initial bank)."""
    env = gym.make("ActionBank/BankDesign-v0", embedder=args.embedder, users_per_iteration=args.users, n_iterations=2)
    world = env.unwrapped.world
    context = DesignerContext(world.embedder, OfflineCopywriter(), world.d_user, world.feature_names)
    rng = np.random.default_rng(0)
    designer = None
    if reward_model is not None:
        designer = GenerativeDesigner(
            context, rng=rng, reward_model=reward_model, action_pool_size=300, action_bank_size=5
        )
    _, info = env.reset(seed=0)
    values = [(info["bank_value"], info["deployed_value"])]
    terminated = False
    while not terminated:
        texts = designer.propose(info["history"], info["bank"], rng=rng).texts if designer else []
        _, _, terminated, _, info = env.step(texts)
        values.append((info["bank_value"], info["deployed_value"]))
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000, help="users per campaign")
    parser.add_argument("--embedder", default="hashing", choices=("hashing", "minilm"))
    args = parser.parse_args()
    # The workaround: register the class under a name ("module:Class"; this file's folder is on sys.path).
    REWARD_MODELS["quadratic_logit"] = f"{Path(__file__).stem}:QuadraticLogitRewardModel"
    print("bank value (perfect targeting) / served value, per deployed bank (initial bank first)")
    for label, model in (
        ("keep the bank", None),
        ("linear (built in)", "linear"),
        ("quadratic_logit (yours)", "quadratic_logit"),
    ):
        values = design_run(model, args)
        print(f"  {label:24s} " + "  ".join(f"{bank:.4f}/{served:.4f}" for bank, served in values))


if __name__ == "__main__":
    main()
