"""FT-Transformer (Gorishniy et al., 2021) over the user features, fused with the action embedding.

Each user feature becomes a token ``x_j * w_j + b_j`` (d_token), a [CLS] token is prepended, and a small
pre-norm ``nn.TransformerEncoder`` (``enable_nested_tensor=False``) encodes the sequence once per user. The
projected action embedding goes through an MLP to one action token. Fusion:

- ``"concat"``: [CLS ⊕ action] -> MLP head; the head's first layer is split, so scoring adds a user part
  (n, h) and an action part (m, h) per pair.
- ``"attention"``: the action token is a query that attends over the user's encoded tokens (multi-head
  cross-attention computed with einsum for all user x action pairs), added back to the action token, ⊕ CLS
  -> MLP head.

Encoders run once per user and once per action; only the fusion runs per pair, in user chunks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_choice, check_int
from actionbank_env.errors import ConfigError
from optimizers.reward_models._base import RewardModelBase, check_training_fields
from optimizers.reward_models._features import user_chunks

__all__ = ["FTTransformerConfig", "FTTransformerRewardModel"]

FUSION_TYPES = ("concat", "attention")


@dataclass(frozen=True, slots=True, kw_only=True)
class FTTransformerConfig:
    """Hyperparameters of the FT-Transformer reward model.

    Attributes:
        fusion_type: ``"concat"`` or ``"attention"`` (see the module docstring).
        d_token: Token width; must be divisible by ``n_heads``.
        n_layers: Transformer encoder layers.
        n_heads: Attention heads (encoder and cross-attention).
        d_ffn: Hidden width of the encoder's feed-forward blocks.
        d_hidden: Hidden width of the action MLP and the fused head.
        learning_rate: AdamW-style Adam step size; must be > 0.
        weight_decay: Adam L2 penalty; must be >= 0.
        batch_size: Logged rows per minibatch.
        max_epochs: Upper bound on training epochs.
        patience: Epochs without a better validation loss before stopping (best weights are restored).
        validation_fraction: Share of rows held out for early stopping, in [0, 0.5).
        embedding_components: Requested PCA components of the action embeddings (capped at the rank).
        max_pairs_per_chunk: Bound on user x action pairs per scoring chunk (memory).
    """

    fusion_type: str = "concat"
    d_token: int = 32
    n_layers: int = 1
    n_heads: int = 4
    d_ffn: int = 64
    d_hidden: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 1e-5
    batch_size: int = 256
    max_epochs: int = 40
    patience: int = 5
    validation_fraction: float = 0.1
    embedding_components: int = 16
    max_pairs_per_chunk: int = 2**17

    def __post_init__(self) -> None:
        name = "FTTransformerConfig"
        check_choice(f"{name}.fusion_type", self.fusion_type, FUSION_TYPES)
        check_int(f"{name}.d_token", self.d_token, low=1)
        check_int(f"{name}.n_layers", self.n_layers, low=1)
        check_int(f"{name}.n_heads", self.n_heads, low=1)
        if self.d_token % self.n_heads:
            raise ConfigError(f"{name}.d_token={self.d_token} must be divisible by n_heads={self.n_heads}.")
        check_int(f"{name}.d_ffn", self.d_ffn, low=1)
        check_int(f"{name}.d_hidden", self.d_hidden, low=1)
        check_training_fields(self)


def _make_net(d_user: int, d_action: int, cfg: FTTransformerConfig) -> Any:
    import torch
    from torch import nn

    d, heads = cfg.d_token, cfg.n_heads

    class FTNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.token_weight = nn.Parameter(torch.empty(d_user, d))
            self.token_offset = nn.Parameter(torch.empty(d_user, d))
            self.cls_token = nn.Parameter(torch.empty(1, 1, d))
            layer = nn.TransformerEncoderLayer(
                d, heads, cfg.d_ffn, dropout=0.0, activation="relu", batch_first=True, norm_first=True
            )
            self.encoder = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(d)
            self.action_mlp = nn.Sequential(nn.Linear(d_action, cfg.d_hidden), nn.ReLU(), nn.Linear(cfg.d_hidden, d))
            if cfg.fusion_type == "attention":
                self.query = nn.Linear(d, d)
                self.key_value = nn.Linear(d, 2 * d)
                self.attn_out = nn.Linear(d, d)
            self.head_user = nn.Linear(d, cfg.d_hidden)
            self.head_action = nn.Linear(d, cfg.d_hidden, bias=False)
            self.head_out = nn.Linear(cfg.d_hidden, 1)

        def encode_users(self, users: torch.Tensor) -> torch.Tensor:
            """(n, d_user) -> encoded tokens (n, 1 + d_user, d); token 0 is [CLS]."""
            tokens = users[:, :, None] * self.token_weight + self.token_offset
            tokens = torch.cat([self.cls_token.expand(users.shape[0], 1, d), tokens], dim=1)
            out: torch.Tensor = self.norm(self.encoder(tokens))
            return out

        def encode_actions(self, actions: torch.Tensor) -> torch.Tensor:
            """(m, r) -> action tokens (m, d)."""
            out: torch.Tensor = self.action_mlp(actions)
            return out

        def fuse(self, tokens: torch.Tensor, actions: torch.Tensor, grid: bool) -> torch.Tensor:
            """Logits: paired (n rows) -> (n,), or grid (c users x m actions) -> (c, m)."""
            cls = tokens[:, 0]
            user_part = self.head_user(cls)  # (c, h)
            if cfg.fusion_type == "attention":
                dh = d // heads
                q = self.query(actions).reshape(*actions.shape[:-1], heads, dh)
                k, v = self.key_value(tokens).reshape(tokens.shape[0], tokens.shape[1], 2, heads, dh).unbind(2)
                if grid:
                    scores = torch.einsum("mhe,nlhe->nmhl", q, k) / math.sqrt(dh)
                    mixed = torch.einsum("nmhl,nlhe->nmhe", scores.softmax(-1), v)
                    actions = actions[None, :, :] + self.attn_out(mixed.flatten(-2))  # (c, m, d)
                else:
                    scores = torch.einsum("nhe,nlhe->nhl", q, k) / math.sqrt(dh)
                    mixed = torch.einsum("nhl,nlhe->nhe", scores.softmax(-1), v)
                    actions = actions + self.attn_out(mixed.flatten(-2))
            action_part = self.head_action(actions)
            if grid:
                user_part = user_part[:, None, :]
                if action_part.ndim == 2:
                    action_part = action_part[None, :, :]
            out: torch.Tensor = self.head_out(torch.relu(user_part + action_part)).squeeze(-1)
            return out

    return FTNet()


class FTTransformerRewardModel(RewardModelBase):
    """FT-Transformer user encoder fused with an action token (see the module docstring).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> users, embeddings = rng.random((300, 3)), rng.standard_normal((300, 5)).astype(np.float32)
        >>> clicks = (rng.random(300) < 0.3).astype(float)
        >>> model = FTTransformerRewardModel(rng=rng, max_epochs=1, fusion_type="attention")
        >>> model.fit(users, embeddings, clicks).predict(users[:4], embeddings[:3]).shape
        (4, 3)
    """

    name = "ft_transformer"
    config_class = FTTransformerConfig
    config: FTTransformerConfig

    def _fit(
        self,
        users_z: NDArray[np.float64],
        actions_z: NDArray[np.float64],
        clicks: NDArray[np.float64],
        weights: NDArray[np.float64],
        rng: np.random.Generator,
    ) -> None:
        import torch

        from optimizers.reward_models._torch import TrainSettings, build_module, make_generator, train_binary

        cfg = self.config
        generator = make_generator(rng)
        d_user, r = users_z.shape[1], actions_z.shape[1]
        net = build_module(lambda: _make_net(d_user, r, cfg), generator)
        users_t = torch.as_tensor(users_z, dtype=torch.float32)
        actions_t = torch.as_tensor(actions_z, dtype=torch.float32)

        def logits_fn(index: torch.Tensor, training: bool) -> torch.Tensor:
            out: torch.Tensor = net.fuse(
                net.encode_users(users_t[index]), net.encode_actions(actions_t[index]), grid=False
            )
            return out

        settings = TrainSettings.from_config(cfg)
        result = train_binary(net, logits_fn, clicks, weights, settings, rng=rng, generator=generator)
        self.net_ = net
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.validation_index_ = result.validation_index

    def _predict_z(self, users_z: NDArray[np.float64], actions_z: NDArray[np.float64]) -> NDArray[np.float64]:
        import torch

        net = self.net_
        net.eval()
        out = np.empty((users_z.shape[0], actions_z.shape[0]), dtype=np.float64)
        with torch.inference_mode():
            actions = net.encode_actions(torch.as_tensor(actions_z, dtype=torch.float32))
            users_t = torch.as_tensor(users_z, dtype=torch.float32)
            for chunk in user_chunks(users_z.shape[0], actions_z.shape[0], self.config.max_pairs_per_chunk):
                tokens = net.encode_users(users_t[chunk])
                out[chunk] = torch.sigmoid(net.fuse(tokens, actions, grid=True)).numpy()
        return out

    def _state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        return {"best_epoch": self.best_epoch_, "history": self.history_}, {}

    def _save_files(self, folder: Path) -> None:
        from optimizers.reward_models._torch import save_state_dict

        save_state_dict(self.net_, folder / "weights.pt")

    def _restore(self, state: dict[str, Any], arrays: dict[str, NDArray[Any]], folder: Path) -> None:
        import torch

        from optimizers.reward_models._torch import build_module, load_state_dict

        net = build_module(lambda: _make_net(self.d_user_, self.n_components_, self.config), torch.Generator())
        load_state_dict(net, folder / "weights.pt")
        self.net_ = net
        self.best_epoch_ = int(state["best_epoch"])
        self.history_ = [{k: float(v) for k, v in row.items()} for row in state["history"]]
