"""SimulationConfig: every setting of ``actionbank simulate`` in one frozen, validated dataclass.

Field names are the original system's flags (``--reward_model_type``, ``--company_strategy``, ...), so a
config file and the command line speak the same language. ``asdict(config)`` is what
``simulation_config.json`` holds and ``SimulationConfig(**data)`` reads it back.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, fields
from typing import Any

from actionbank_env._validation import (
    check_bool,
    check_choice,
    check_int,
    check_prob,
    check_real,
    check_str,
)
from actionbank_env.core.embedders import EMBEDDERS
from actionbank_env.core.ground_truth import GROUND_TRUTHS
from actionbank_env.core.world import WorldConfig
from actionbank_env.errors import ConfigError

__all__ = ["SimulationConfig", "REWARD_MODEL_NAMES", "OPTIMIZER_NAMES"]

REWARD_MODEL_NAMES = (
    "linear",
    "neural",
    "bayesian_neural",
    "lightgbm",
    "gaussian_process",
    "ft_transformer",
    "bayesian_bilinear",
)
OPTIMIZER_NAMES = ("generative", "keep", "random", "oracle")


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulationConfig:
    """Settings of a full simulation (the loop of ARCHITECTURE.md §6).

    Attributes:
        iterations: Campaign iterations after the initial one (each: propose a bank, deploy, evaluate).
        users: Fresh users per iteration.
        initial_actions: Size of the initial bank.
        results_dir: Parent folder of run folders.
        name: Run folder prefix.
        seed: Decides the episode (users, clicks, agent, optimizer).
        world_seed: Decides the world (ground truth, initial bank); ``None`` uses ``seed``.
        embedder: ``minilm`` (offline MiniLM), ``hashing`` or ``openai``.
        ground_truth_type: ``mixture_of_experts``, ``gmm`` or ``semantic``.
        base_ctr: Mean click probability of a random bank under random targeting.
        personalization: Share of the logit variance that is user x action interaction.
        gmm_components: GMM ground truth components.
        density_scale_factor: GMM density scale.
        min_utility: GMM lowest click probability.
        max_utility: GMM highest click probability.
        company_strategy: The company's targeting agent (registry name or ``module:Class``).
        company_params: Extra keyword arguments of the company agent (e.g. for a ``module:Class`` agent);
            they override the flag-derived ones.
        alpha: LinUCB exploration width.
        use_pca: LinUCB / DQN reduce action embeddings by PCA.
        pca_components: PCA components.
        n_heads: Bootstrapped DQN heads.
        campaign_batch_size: Users per act/update round of the company agent.
        optimizer: Bank designer: ``generative`` (the algorithm), ``keep``, ``random`` or ``oracle``.
        reward_model_type: Reward model of the generative optimizer (a name or ``module:Class``).
        lgb_n_estimators: LightGBM boosting rounds.
        lgb_learning_rate: LightGBM learning rate.
        lgb_num_leaves: LightGBM leaves per tree.
        bnn_mc_samples: MC-dropout samples of the Bayesian neural model.
        action_pool_size: Candidates generated per iteration.
        action_bank_size: New actions added per iteration (0 keeps the bank: the baseline).
        max_bank_size: Optional cap on the deployed bank (least valuable actions retired).
        diversity_weight: Penalty on similarity to actions already chosen.
        use_uncertainty: Add ``uncertainty_weight`` x predictive std to the selection objective.
        uncertainty_weight: Weight of the uncertainty bonus.
        n_representative_users: Logged users (or k-means prototypes of them) the optimizer's selection averages
            over; scoring cost grows linearly with it.
        representative_method: ``kmeans`` (prototypes weighted by cluster size) or ``subsample``.
        evaluation_users: Fresh users on which bank values are evaluated each iteration.
        data_dir: Replay the users and initial bank of a ``generate-data`` folder (its world settings win).
        threads: BLAS / torch / LightGBM threads (1 measured best on the 2-core machines here).
        tensorboard: Write TensorBoard events under ``tb/``.
        report: Write ``report.html`` with plots at the end.
    """

    iterations: int = 3
    users: int = 1000
    initial_actions: int = 30
    results_dir: str = "results"
    name: str = "simulation"
    seed: int = 0
    world_seed: int | None = None
    embedder: str = "minilm"
    ground_truth_type: str = "mixture_of_experts"
    base_ctr: float = 0.05
    personalization: float = 0.85
    gmm_components: int = 8
    density_scale_factor: float = 1.0
    min_utility: float = 0.005
    max_utility: float = 0.5
    company_strategy: str = "linucb"
    company_params: dict[str, Any] | None = None
    alpha: float = 0.2
    use_pca: bool = True
    pca_components: int = 16
    n_heads: int = 10
    campaign_batch_size: int = 64
    optimizer: str = "generative"
    reward_model_type: str = "lightgbm"
    lgb_n_estimators: int = 300
    lgb_learning_rate: float = 0.05
    lgb_num_leaves: int = 7
    bnn_mc_samples: int = 30
    action_pool_size: int = 2000
    action_bank_size: int = 10
    max_bank_size: int | None = None
    diversity_weight: float = 0.15
    use_uncertainty: bool = False
    uncertainty_weight: float = 0.1
    n_representative_users: int = 1000
    representative_method: str = "subsample"
    evaluation_users: int = 2000
    data_dir: str | None = None
    threads: int = 1
    tensorboard: bool = True
    report: bool = True

    def __post_init__(self) -> None:
        c = "SimulationConfig"
        check_int(f"{c}.iterations", self.iterations, low=0, high=1000)
        check_int(f"{c}.users", self.users, low=1, high=100_000_000)
        check_int(f"{c}.initial_actions", self.initial_actions, low=2, high=10_000)
        check_str(f"{c}.results_dir", self.results_dir)
        check_str(f"{c}.name", self.name)
        if any(ch in self.name for ch in "/\\") or self.name in (".", ".."):
            raise ConfigError(f"{c}.name must be a plain folder name without '/' or '\\\\', got {self.name!r}.")
        check_int(f"{c}.seed", self.seed, low=0)
        if self.world_seed is not None:
            check_int(f"{c}.world_seed", self.world_seed, low=0)
        check_choice(f"{c}.embedder", self.embedder, EMBEDDERS)
        check_choice(f"{c}.ground_truth_type", self.ground_truth_type, GROUND_TRUTHS)
        check_prob(f"{c}.base_ctr", self.base_ctr, open_low=True, open_high=True)
        check_prob(f"{c}.personalization", self.personalization)
        check_str(f"{c}.company_strategy", self.company_strategy)
        if self.company_params is not None and not isinstance(self.company_params, dict):
            raise TypeError(f"{c}.company_params must be a dict or None, got {type(self.company_params).__name__}.")
        check_real(f"{c}.alpha", self.alpha, low=0.0)
        check_bool(f"{c}.use_pca", self.use_pca)
        check_int(f"{c}.pca_components", self.pca_components, low=1, high=4096)
        check_int(f"{c}.n_heads", self.n_heads, low=1, high=1000)
        check_int(f"{c}.campaign_batch_size", self.campaign_batch_size, low=1)
        check_choice(f"{c}.optimizer", self.optimizer, OPTIMIZER_NAMES)
        if ":" not in check_str(f"{c}.reward_model_type", self.reward_model_type):  # "module:Class" is a user's own
            check_choice(f"{c}.reward_model_type", self.reward_model_type, REWARD_MODEL_NAMES)
        check_int(f"{c}.lgb_n_estimators", self.lgb_n_estimators, low=1)
        check_real(f"{c}.lgb_learning_rate", self.lgb_learning_rate, low=0.0, low_open=True)
        check_int(f"{c}.lgb_num_leaves", self.lgb_num_leaves, low=2)
        check_int(f"{c}.bnn_mc_samples", self.bnn_mc_samples, low=1)
        check_int(f"{c}.action_pool_size", self.action_pool_size, low=1)
        check_int(f"{c}.action_bank_size", self.action_bank_size, low=0)
        if self.max_bank_size is not None:
            check_int(f"{c}.max_bank_size", self.max_bank_size, low=1)
        if self.action_bank_size > self.action_pool_size:
            raise ConfigError(
                f"{c}.action_bank_size={self.action_bank_size} must be <= action_pool_size={self.action_pool_size}."
            )
        check_real(f"{c}.diversity_weight", self.diversity_weight, low=0.0)
        check_bool(f"{c}.use_uncertainty", self.use_uncertainty)
        check_real(f"{c}.uncertainty_weight", self.uncertainty_weight, low=0.0)
        check_int(f"{c}.n_representative_users", self.n_representative_users, low=1)
        check_choice(f"{c}.representative_method", self.representative_method, ("kmeans", "subsample"))
        check_int(f"{c}.evaluation_users", self.evaluation_users, low=1)
        if self.data_dir is not None:
            check_str(f"{c}.data_dir", self.data_dir)
        check_int(f"{c}.threads", self.threads, low=1, high=256)
        check_bool(f"{c}.tensorboard", self.tensorboard)
        check_bool(f"{c}.report", self.report)
        self.world_config()  # cross-checks the world fields with their own messages

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """All field names, in order."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> SimulationConfig:
        """Build from a dict (e.g. a ``--config`` file), naming unknown keys with a suggestion."""
        import difflib

        unknown = [k for k in data if k not in cls.field_names()]
        if unknown:
            hints = [
                f"{k!r}"
                + (f" (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(k, cls.field_names(), 1)) else "")
                for k in unknown
            ]
            raise ConfigError(f"{source} has unknown settings: {', '.join(hints)}.")
        return cls(**data)

    def replace(self, **changes: Any) -> SimulationConfig:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (no secrets: API keys are never part of the config)."""
        return asdict(self)

    @property
    def resolved_world_seed(self) -> int:
        """``world_seed`` or, when unset, ``seed``."""
        return self.seed if self.world_seed is None else self.world_seed

    def world_config(self) -> WorldConfig:
        """The world part of the config."""
        return WorldConfig(
            world_seed=self.resolved_world_seed,
            initial_actions=self.initial_actions,
            embedder=self.embedder,
            ground_truth=self.ground_truth_type,
            base_ctr=self.base_ctr,
            personalization=self.personalization,
            gmm_components=self.gmm_components,
            density_scale_factor=self.density_scale_factor,
            min_utility=self.min_utility,
            max_utility=self.max_utility,
            n_reference_texts=max(512, self.initial_actions),
        )

    def agent_params(self) -> dict[str, Any]:
        """Hyperparameters passed to the company agent (only those it understands, then ``company_params``)."""
        params: dict[str, Any] = {}
        if self.company_strategy == "linucb":
            params = {"alpha": self.alpha, "use_pca": self.use_pca, "pca_components": self.pca_components}
        elif self.company_strategy == "bootstrapped_dqn":
            params = {"n_heads": self.n_heads, "use_pca": self.use_pca, "pca_components": self.pca_components}
        return {**params, **(self.company_params or {})}

    def reward_model_params(self) -> dict[str, Any]:
        """Hyperparameters of the chosen reward model."""
        if self.reward_model_type == "lightgbm":
            return {
                "n_estimators": self.lgb_n_estimators,
                "learning_rate": self.lgb_learning_rate,
                "num_leaves": self.lgb_num_leaves,
            }
        if self.reward_model_type == "bayesian_neural":
            return {"mc_samples": self.bnn_mc_samples}
        return {}
