"""Torch helpers shared by the neural reward models: seeded construction, training with early stopping.

Imported only by the torch-based model modules, never by the package ``__init__``. Every random draw uses a
``torch.Generator`` seeded from the model's numpy ``rng``: modules are built on the ``meta`` device and
initialised with that generator, minibatch orders come from ``torch.randperm(generator=...)`` and dropout
masks from ``torch.bernoulli(generator=...)``, so torch's global RNG is neither read nor advanced.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

__all__ = ["make_generator", "build_module", "TrainSettings", "TrainResult", "train_binary", "dropout"]


def make_generator(rng: np.random.Generator) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from ``rng``."""
    generator = torch.Generator(device="cpu")
    generator.manual_seed(int(rng.integers(2**63 - 1)))
    return generator


def _init_parameters(module: nn.Module, generator: torch.Generator) -> None:
    """Initialise every parameter from ``generator``: LayerNorm (1, 0), biases 0, matrices U(±1/sqrt(fan_in))."""
    norm_params = {id(p) for m in module.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()}
    with torch.no_grad():
        for name, param in module.named_parameters():
            if id(param) in norm_params:
                param.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias") or param.ndim < 2:
                param.zero_()
            elif "in_proj_weight" in name:
                nn.init.xavier_uniform_(param, generator=generator)
            else:
                # PyTorch's nn.Linear default: kaiming_uniform(a=sqrt(5)) == U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
                nn.init.kaiming_uniform_(param, a=math.sqrt(5.0), generator=generator)


def build_module(factory: Callable[[], nn.Module], generator: torch.Generator) -> nn.Module:
    """Build ``factory()`` on the meta device, then materialise it on CPU with seeded initial weights."""
    with torch.device("meta"):
        module = factory()
    module = module.to_empty(device="cpu")
    _init_parameters(module, generator)
    for buf in module.buffers():
        buf.zero_()
    return module


def dropout(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Inverted dropout with masks from ``generator`` (``torch.nn.functional.dropout`` uses the global RNG)."""
    if p <= 0.0:
        return x
    keep = torch.bernoulli(torch.full_like(x, 1.0 - p), generator=generator)
    return x * keep / (1.0 - p)


@dataclass(frozen=True, slots=True)
class TrainSettings:
    """Optimisation settings, taken from a model config."""

    max_epochs: int
    patience: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    validation_fraction: float

    @classmethod
    def from_config(cls, config: Any) -> TrainSettings:
        """The settings of a model config that has these fields."""
        return cls(
            max_epochs=config.max_epochs,
            patience=config.patience,
            batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            weight_decay=config.weight_decay,
            validation_fraction=config.validation_fraction,
        )


@dataclass(frozen=True, slots=True)
class TrainResult:
    """What training found out.

    Attributes:
        history: One dict per epoch: ``epoch`` (1-based), ``train_loss`` and ``val_loss`` (NaN without a
            validation split).
        best_epoch: Epoch whose weights were kept (lowest validation loss; the last epoch without validation).
        validation_index: Rows held out for validation, int64, shape (n_val,).
    """

    history: list[dict[str, float]]
    best_epoch: int
    validation_index: NDArray[np.int64]


LossFn = Callable[[torch.Tensor, bool], torch.Tensor]


def weighted_bce(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean binary cross-entropy from logits."""
    losses = nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return (losses * weights).sum() / weights.sum().clamp_min(1e-12)


def train_binary(
    module: nn.Module,
    logits_fn: Callable[[torch.Tensor, bool], torch.Tensor],
    targets: NDArray[np.float64],
    weights: NDArray[np.float64],
    settings: TrainSettings,
    *,
    rng: np.random.Generator,
    generator: torch.Generator,
) -> TrainResult:
    """Minibatch Adam on the weighted BCE with a validation split and early stopping.

    Args:
        module: The network (its parameters are optimised; it is switched between train and eval mode).
        logits_fn: ``logits_fn(row_index, training)`` -> logits of those logged rows, shape (len(index),).
        targets: Clicks, shape (n,).
        weights: Row weights, shape (n,).
        settings: Optimisation settings.
        rng: Draws the validation split.
        generator: Draws the minibatch order (and is what ``logits_fn`` uses for dropout).

    Returns:
        The history; ``module`` ends with the weights of the best validation epoch.
    """
    n = targets.shape[0]
    order = rng.permutation(n)
    n_val = int(round(settings.validation_fraction * n))
    if n_val == 0 or n_val >= n:
        n_val = 0
    val_index = np.sort(order[:n_val]).astype(np.int64)
    train_index = torch.as_tensor(np.sort(order[n_val:]), dtype=torch.int64)
    y = torch.as_tensor(targets, dtype=torch.float32)
    w = torch.as_tensor(weights, dtype=torch.float32)
    val_t = torch.as_tensor(val_index, dtype=torch.int64)

    optimizer = torch.optim.Adam(module.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    history: list[dict[str, float]] = []
    best_loss = math.inf
    best_epoch = 0
    best_state: dict[str, Any] | None = None
    stale = 0
    for epoch in range(1, settings.max_epochs + 1):
        module.train()
        perm = train_index[torch.randperm(train_index.shape[0], generator=generator)]
        total, total_w = 0.0, 0.0
        for start in range(0, perm.shape[0], settings.batch_size):
            batch = perm[start : start + settings.batch_size]
            loss = weighted_bce(logits_fn(batch, True), y[batch], w[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            batch_w = float(w[batch].sum())
            total += float(loss.detach()) * batch_w
            total_w += batch_w
        train_loss = total / max(total_w, 1e-12)
        val_loss = math.nan
        if n_val:
            val_loss = validation_loss(module, logits_fn, val_t, y, w, settings.batch_size)
        history.append({"epoch": float(epoch), "train_loss": train_loss, "val_loss": val_loss})
        if not n_val:
            continue
        if val_loss < best_loss:
            best_loss, best_epoch, stale = val_loss, epoch, 0
            best_state = copy.deepcopy(module.state_dict())
        else:
            stale += 1
            if stale >= settings.patience:
                break
    if best_state is not None:
        module.load_state_dict(best_state)
    else:
        best_epoch = len(history)
    module.eval()
    return TrainResult(history=history, best_epoch=best_epoch, validation_index=val_index)


def validation_loss(
    module: nn.Module,
    logits_fn: Callable[[torch.Tensor, bool], torch.Tensor],
    index: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    batch_size: int,
) -> float:
    """Weighted BCE of the rows ``index`` in eval mode (no dropout)."""
    module.eval()
    chunks = []
    with torch.no_grad():
        for start in range(0, index.shape[0], max(batch_size, 4096)):
            chunks.append(logits_fn(index[start : start + max(batch_size, 4096)], False))
    return float(weighted_bce(torch.cat(chunks), y[index], w[index]))


def save_state_dict(module: nn.Module, path: Any) -> None:
    """Save the module's tensors (a plain state dict, loadable with ``weights_only=True``)."""
    torch.save({k: v.detach().clone() for k, v in module.state_dict().items()}, path)


def load_state_dict(module: nn.Module, path: Any) -> None:
    """Load tensors written by :func:`save_state_dict` (``weights_only=True``, no pickle of code)."""
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    module.eval()
