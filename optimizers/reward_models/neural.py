"""Neural reward models: a fused two-tower MLP, and its MC-dropout Bayesian twin (Gal & Ghahramani, 2016).

The first layer is split into a user part and an action part, ``h1 = relu(W_u u + W_a e + b)``, so scoring
n_users x n_actions computes each tower once and only the (cheap) fused layers per pair, in user chunks
bounded by ``max_pairs_per_chunk``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_choice, check_int, check_prob, check_real
from actionbank_env.errors import ConfigError
from optimizers.reward_models._base import RewardModelBase, _as_tuple_of_ints, check_training_fields
from optimizers.reward_models._features import user_chunks

__all__ = ["NeuralConfig", "BayesianNeuralConfig", "NeuralRewardModel", "BayesianNeuralRewardModel"]


def _check_training_fields(config: Any) -> None:
    _as_tuple_of_ints(config, "hidden_sizes", low=1)
    check_training_fields(config)


@dataclass(frozen=True, slots=True, kw_only=True)
class NeuralConfig:
    """Hyperparameters of the neural reward model.

    Attributes:
        hidden_sizes: Widths of the hidden layers; the first one is the fused user + action layer.
        dropout: Dropout rate before the output layer during training, in [0, 1).
        learning_rate: Adam step size; must be > 0.
        weight_decay: Adam L2 penalty; must be >= 0.
        batch_size: Logged rows per minibatch.
        max_epochs: Upper bound on training epochs.
        patience: Epochs without a better validation loss before stopping (best weights are restored).
        validation_fraction: Share of rows held out for early stopping, in [0, 0.5); 0 trains max_epochs.
        embedding_components: Requested PCA components of the action embeddings (capped at the rank).
        max_pairs_per_chunk: Bound on user x action pairs per scoring chunk (memory).
    """

    hidden_sizes: tuple[int, ...] = (64, 64)
    dropout: float = 0.0
    learning_rate: float = 3e-3
    weight_decay: float = 1e-5
    batch_size: int = 256
    max_epochs: int = 50
    patience: int = 5
    validation_fraction: float = 0.1
    embedding_components: int = 16
    max_pairs_per_chunk: int = 2**18

    def __post_init__(self) -> None:
        check_real("NeuralConfig.dropout", self.dropout, low=0.0, high=1.0, high_open=True)
        _check_training_fields(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class BayesianNeuralConfig:
    """Hyperparameters of the MC-dropout reward model (fields as :class:`NeuralConfig`, plus ``mc_samples``).

    Attributes:
        mc_samples: Number of dropout networks averaged at prediction (CLI ``bnn_mc_samples``).
        dropout: Dropout rate of the last hidden layer, in (0, 1); used in training and in every MC sample.
    """

    mc_samples: int = 30
    hidden_sizes: tuple[int, ...] = (64, 64)
    dropout: float = 0.2
    learning_rate: float = 3e-3
    weight_decay: float = 1e-5
    batch_size: int = 256
    max_epochs: int = 50
    patience: int = 5
    validation_fraction: float = 0.1
    embedding_components: int = 16
    max_pairs_per_chunk: int = 2**18

    def __post_init__(self) -> None:
        check_int("BayesianNeuralConfig.mc_samples", self.mc_samples, low=2)
        check_prob("BayesianNeuralConfig.dropout", self.dropout, open_low=True, open_high=True)
        _check_training_fields(self)


def _make_net(d_user: int, d_action: int, hidden_sizes: tuple[int, ...]) -> Any:
    import torch
    from torch import nn

    class PairMLP(nn.Module):
        """Two towers fused in the first hidden layer, then an MLP torso and a linear head."""

        def __init__(self) -> None:
            super().__init__()
            self.user_in = nn.Linear(d_user, hidden_sizes[0])
            self.action_in = nn.Linear(d_action, hidden_sizes[0], bias=False)
            layers: list[nn.Module] = []
            for d_in, d_out in zip(hidden_sizes[:-1], hidden_sizes[1:], strict=True):
                layers += [nn.Linear(d_in, d_out), nn.ReLU()]
            self.torso = nn.Sequential(*layers)
            self.head = nn.Linear(hidden_sizes[-1], 1)

        def hidden(self, user_part: torch.Tensor, action_part: torch.Tensor) -> torch.Tensor:
            """Last hidden layer from the tower outputs (broadcast: (n, h) + (n, h) or (c, 1, h) + (1, m, h))."""
            out: torch.Tensor = self.torso(torch.relu(user_part + action_part))
            return out

    return PairMLP()


class NeuralRewardModel(RewardModelBase):
    """An MLP on [user, projected embedding], trained with weighted BCE, Adam and early stopping.

    Fitted attributes: ``net_`` (the torch module), ``history_`` (per-epoch losses), ``best_epoch_``
    (epoch whose weights were restored) and ``validation_index_`` (rows held out for early stopping).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> users, embeddings = rng.random((300, 3)), rng.standard_normal((300, 5)).astype(np.float32)
        >>> clicks = (rng.random(300) < 0.3).astype(float)
        >>> model = NeuralRewardModel(rng=rng, max_epochs=2).fit(users, embeddings, clicks)
        >>> model.predict(users[:4], embeddings[:3]).shape
        (4, 3)
    """

    name = "neural"
    config_class: type[Any] = NeuralConfig
    config: Any

    def _fit(
        self,
        users_z: NDArray[np.float64],
        actions_z: NDArray[np.float64],
        clicks: NDArray[np.float64],
        weights: NDArray[np.float64],
        rng: np.random.Generator,
    ) -> None:
        import torch

        from optimizers.reward_models._torch import (
            TrainSettings,
            build_module,
            dropout,
            make_generator,
            train_binary,
        )

        cfg = self.config
        generator = make_generator(rng)
        d_user, r = users_z.shape[1], actions_z.shape[1]
        net = build_module(lambda: _make_net(d_user, r, cfg.hidden_sizes), generator)
        users_t = torch.as_tensor(users_z, dtype=torch.float32)
        actions_t = torch.as_tensor(actions_z, dtype=torch.float32)

        def logits_fn(index: torch.Tensor, training: bool) -> torch.Tensor:
            h = net.hidden(net.user_in(users_t[index]), net.action_in(actions_t[index]))
            if training:
                h = dropout(h, cfg.dropout, generator)
            out: torch.Tensor = net.head(h).squeeze(-1)
            return out

        settings = TrainSettings.from_config(cfg)
        result = train_binary(net, logits_fn, clicks, weights, settings, rng=rng, generator=generator)
        self.net_ = net
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.validation_index_ = result.validation_index
        self._after_fit(generator)

    def _after_fit(self, generator: Any) -> None:
        """Hook for subclasses (the MC-dropout masks)."""

    def _hidden_chunks(self, users_z: NDArray[np.float64], actions_z: NDArray[np.float64]) -> Any:
        """Yield (user slice, last hidden layer (c, m, H)) over user chunks, in inference mode."""
        import torch

        net = self.net_
        net.eval()
        with torch.inference_mode():
            user_part = net.user_in(torch.as_tensor(users_z, dtype=torch.float32))
            action_part = net.action_in(torch.as_tensor(actions_z, dtype=torch.float32))[None, :, :]
            for chunk in user_chunks(users_z.shape[0], actions_z.shape[0], self.config.max_pairs_per_chunk):
                yield chunk, net.hidden(user_part[chunk, None, :], action_part)

    def _predict_z(self, users_z: NDArray[np.float64], actions_z: NDArray[np.float64]) -> NDArray[np.float64]:
        import torch

        out = np.empty((users_z.shape[0], actions_z.shape[0]), dtype=np.float64)
        for chunk, hidden in self._hidden_chunks(users_z, actions_z):
            out[chunk] = torch.sigmoid(self.net_.head(hidden).squeeze(-1)).numpy()
        return out

    def _state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        return {"best_epoch": self.best_epoch_, "history": self.history_}, {}

    def _save_files(self, folder: Path) -> None:
        from optimizers.reward_models._torch import save_state_dict

        save_state_dict(self.net_, folder / "weights.pt")

    def _restore(self, state: dict[str, Any], arrays: dict[str, NDArray[Any]], folder: Path) -> None:
        import torch

        from optimizers.reward_models._torch import build_module, load_state_dict

        net = build_module(
            lambda: _make_net(self.d_user_, self.n_components_, self.config.hidden_sizes), torch.Generator()
        )
        load_state_dict(net, folder / "weights.pt")
        self.net_ = net
        self.best_epoch_ = int(state["best_epoch"])
        self.history_ = [{k: float(v) for k, v in row.items()} for row in state["history"]]


class BayesianNeuralRewardModel(NeuralRewardModel):
    """MC dropout (Gal & Ghahramani, 2016) in the output layer of :class:`NeuralRewardModel`.

    Training applies dropout to the last hidden layer. At the end of ``fit``, ``mc_samples`` dropout masks
    are drawn once from the model's torch generator (``mc_masks_``, shape (mc_samples, H)); each mask is one
    sampled network, shared by every user x action pair, so predictions are deterministic, repeatable across
    calls and after :meth:`load`, and each sample is a coherent function (as Thompson sampling needs). The
    torso runs once per pair; the MC samples are one matrix product ``hidden @ (mask * w / (1 - p))``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> users, embeddings = rng.random((300, 3)), rng.standard_normal((300, 5)).astype(np.float32)
        >>> clicks = (rng.random(300) < 0.3).astype(float)
        >>> model = BayesianNeuralRewardModel(rng=rng, max_epochs=2, mc_samples=8).fit(users, embeddings, clicks)
        >>> mean, std = model.predict_with_uncertainty(users[:4], embeddings[:3])
        >>> mean.shape, std.shape, bool(np.all(std >= 0))
        ((4, 3), (4, 3), True)
    """

    name = "bayesian_neural"
    config_class = BayesianNeuralConfig

    def _after_fit(self, generator: Any) -> None:
        import torch

        width = self.config.hidden_sizes[-1]
        keep = torch.full((self.config.mc_samples, width), 1.0 - self.config.dropout)
        self.mc_masks_ = torch.bernoulli(keep, generator=generator).numpy().astype(np.float32)

    def predict_with_uncertainty(
        self, users: NDArray[np.float64], embeddings: NDArray[np.float32], *, space: str = "probability"
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """MC-dropout mean and standard deviation of the click probability (or of the logit).

        ReLU networks extrapolate linearly, so far from the data the MC logits spread more but their mean
        often runs to a saturated probability, where the probability's std shrinks again; ``space="logit"``
        shows the spread before the sigmoid.

        Args:
            users: User features, shape (n_users, d_user).
            embeddings: Action embeddings, shape (n_actions, d_embed).
            space: ``"probability"`` (default) or ``"logit"``.

        Returns:
            ``(mean, std)``, each float64 of shape (n_users, n_actions).
        """
        check_choice("space", space, ("probability", "logit"))
        users_z, actions_z = self._check_predict_inputs(users, embeddings)
        return self._mc_moments(users_z, actions_z, logit=space == "logit")

    def _mc_moments(
        self, users_z: NDArray[np.float64], actions_z: NDArray[np.float64], *, logit: bool = False
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        import torch

        head = self.net_.head
        masks = torch.as_tensor(self.mc_masks_)
        sample_weights = (masks * head.weight.detach()[0][None, :]).T / (1.0 - self.config.dropout)  # (H, S)
        bias = head.bias.detach()[0]
        shape = (users_z.shape[0], actions_z.shape[0])
        mean, std = np.zeros(shape, dtype=np.float64), np.zeros(shape, dtype=np.float64)
        if not mean.size:
            return mean, std
        for chunk, hidden in self._hidden_chunks(users_z, actions_z):
            samples = (hidden @ sample_weights + bias).double()  # (c, m, S)
            probs = samples if logit else torch.sigmoid(samples)
            mean[chunk] = probs.mean(dim=-1).numpy()
            std[chunk] = probs.std(dim=-1, correction=0).numpy()
        return (mean if logit else np.clip(mean, 0.0, 1.0)), std

    def _predict_z(self, users_z: NDArray[np.float64], actions_z: NDArray[np.float64]) -> NDArray[np.float64]:
        return self._mc_moments(users_z, actions_z)[0]

    def _state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        state, arrays = super()._state()
        return state, {**arrays, "mc_masks": self.mc_masks_}

    def _restore(self, state: dict[str, Any], arrays: dict[str, NDArray[Any]], folder: Path) -> None:
        super()._restore(state, arrays, folder)
        masks = np.asarray(arrays["mc_masks"], dtype=np.float32)
        if masks.shape != (self.config.mc_samples, self.config.hidden_sizes[-1]):
            raise ConfigError(f"{folder} mc_masks has shape {masks.shape}, inconsistent with the config.")
        self.mc_masks_ = masks
