"""The inputs of off-policy evaluation: logged bandit feedback and a target policy over a (new) bank.

Both are plain frozen containers of numpy arrays, checked once at construction so every estimator can trust
them. Actions are matched between the logged bank and the target bank by id (the catalog gives the same
normalised text the same id, so a text kept in the new bank is the same action in both).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_array
from actionbank_env.errors import ConfigError

__all__ = ["BanditData", "TargetPolicy", "PROB_TOLERANCE"]

#: Tolerance on probability rows summing to one and on a logged propensity matching the logged distribution.
PROB_TOLERANCE = 1e-6


def _ids(name: str, ids: Sequence[str], n: int) -> tuple[str, ...]:
    out = tuple(str(i) for i in ids)
    if len(out) != n:
        raise ConfigError(f"{name} must have one id per action ({n}), got {len(out)}.")
    if len(set(out)) != len(out):
        dup = sorted({i for i in out if out.count(i) > 1})
        raise ConfigError(f"{name} must be distinct, got duplicates {dup[:5]}.")
    return out


def _check_distribution(name: str, probs: Any, n_rows: int, n_actions: int) -> NDArray[np.float64]:
    probs = check_array(name, probs, shape=(n_rows, n_actions), low=0.0, high=1.0 + PROB_TOLERANCE)
    if n_rows:
        sums = probs.sum(axis=1)
        bad = np.flatnonzero(np.abs(sums - 1.0) > PROB_TOLERANCE)
        if bad.size:
            raise ConfigError(
                f"{name} rows must sum to 1 (a distribution over the bank's {n_actions} actions), got a sum of "
                f"{sums[bad[0]]!r} in row {int(bad[0])}."
            )
    probs.setflags(write=False)
    out: NDArray[np.float64] = probs
    return out


@dataclass(frozen=True, slots=True)
class BanditData:
    """Logged bandit feedback ``(x_i, a_i, p_i, y_i)`` of one logged bank.

    Attributes:
        users: User features, shape (n, d_user).
        actions: Index of the served action in the logged bank, int64, shape (n,).
        propensities: Probability the logging policy gave the served action, in (0, 1], shape (n,).
        clicks: Observed rewards (0/1 clicks), shape (n,).
        embeddings: Embeddings of the logged bank, shape (K0, d_embed).
        action_ids: Ids of the logged bank's actions, length K0.
        logging_probs: The logging policy's whole distribution over the logged bank for each row, shape
            (n, K0), when the agent reported it (``None``: only the served action's propensity is known).
        mean_logging_probs: The logger's distribution averaged over the whole campaign, evaluated at each
            logged user, shape (n, K0): ``(1/n) sum_t pi0_t(. | x_i)`` for a logger that learned as it went.
            With i.i.d. users this "balanced" propensity gives unbiased importance weights too (Agarwal et
            al., 2017, "Effective Evaluation Using Logged Bandit Feedback from Multiple Loggers"), and far
            steadier ones when each decision alone was nearly deterministic. ``None``: not recorded.

    Raises:
        ConfigError: On a missing (NaN) or non-positive propensity, an action index outside the bank, clicks
            outside {0, 1}, or logging probabilities that are not distributions or disagree with the
            propensities.

    Example:
        >>> data = BanditData(users=np.zeros((2, 1)), actions=np.array([0, 1]), propensities=np.array([0.5, 0.5]),
        ...                   clicks=np.array([1.0, 0.0]), embeddings=np.eye(2), action_ids=("A0", "A1"))
        >>> data.n_rounds, data.n_actions
        (2, 2)
    """

    users: NDArray[np.float64]
    actions: NDArray[np.int64]
    propensities: NDArray[np.float64]
    clicks: NDArray[np.float64]
    embeddings: NDArray[np.float64]
    action_ids: tuple[str, ...]
    logging_probs: NDArray[np.float64] | None = None
    mean_logging_probs: NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        users = check_array("BanditData.users", self.users, ndim=2)
        n = users.shape[0]
        embeddings = check_array("BanditData.embeddings", self.embeddings, ndim=2)
        n_actions = embeddings.shape[0]
        if n_actions == 0:
            raise ConfigError("BanditData.embeddings must hold at least one logged action, got 0.")
        actions = np.asarray(self.actions)
        if actions.shape != (n,) or (actions.size and actions.dtype.kind not in "iu"):
            raise ConfigError(f"BanditData.actions must be {n} integer action indices, got shape {actions.shape}.")
        actions = actions.astype(np.int64)
        if n and (actions.min() < 0 or actions.max() >= n_actions):
            raise ConfigError(
                f"BanditData.actions must be indices into the logged bank, in [0, {n_actions}), got values in "
                f"[{actions.min()}, {actions.max()}]."
            )
        props = check_array("BanditData.propensities", self.propensities, shape=(n,), finite=False)
        if np.isnan(props).any():
            raise ConfigError(
                f"BanditData.propensities must be known for every row (importance weights need them), got "
                f"{int(np.isnan(props).sum())} missing (NaN); log with an agent that reports its propensities."
            )
        if n and not np.all((props > 0.0) & (props <= 1.0)):
            bad = props[~((props > 0.0) & (props <= 1.0))][0]
            raise ConfigError(
                f"BanditData.propensities must be in (0, 1] (a zero propensity means the logger could not have "
                f"served that action), got {bad!r}."
            )
        clicks = check_array("BanditData.clicks", self.clicks, shape=(n,))
        if n and not np.all((clicks == 0.0) | (clicks == 1.0)):
            raise ConfigError("BanditData.clicks must be 0 or 1.")
        ids = _ids("BanditData.action_ids", self.action_ids, n_actions)
        logging_probs = self.logging_probs
        if logging_probs is not None:
            logging_probs = _check_distribution("BanditData.logging_probs", logging_probs, n, n_actions)
            served = logging_probs[np.arange(n), actions]
            bad = np.flatnonzero(np.abs(served - props) > PROB_TOLERANCE * np.maximum(1.0, props))
            if bad.size:
                i = int(bad[0])
                raise ConfigError(
                    f"BanditData.logging_probs must give each served action its logged propensity, got "
                    f"{served[i]!r} against propensity {props[i]!r} in row {i}."
                )
        mean_probs = self.mean_logging_probs
        if mean_probs is not None:
            mean_probs = _check_distribution("BanditData.mean_logging_probs", mean_probs, n, n_actions)
            if n and np.any(mean_probs[np.arange(n), actions] <= 0.0):
                raise ConfigError(
                    "BanditData.mean_logging_probs must be > 0 for every served action (it was served, so the "
                    "campaign's average policy gave it a positive probability)."
                )
        for arr in (users, actions, props, clicks, embeddings):
            arr.setflags(write=False)
        object.__setattr__(self, "users", users)
        object.__setattr__(self, "actions", actions)
        object.__setattr__(self, "propensities", props)
        object.__setattr__(self, "clicks", clicks)
        object.__setattr__(self, "embeddings", embeddings)
        object.__setattr__(self, "action_ids", ids)
        object.__setattr__(self, "logging_probs", logging_probs)
        object.__setattr__(self, "mean_logging_probs", mean_probs)

    def without(self, *fields: str) -> BanditData:
        """A copy with the optional fields ``fields`` (``logging_probs``, ``mean_logging_probs``) dropped."""
        kwargs = {f: getattr(self, f) for f in BanditData.__dataclass_fields__}
        for f in fields:
            if f not in ("logging_probs", "mean_logging_probs"):
                raise ConfigError(f"BanditData.without accepts 'logging_probs' and 'mean_logging_probs', got {f!r}.")
            kwargs[f] = None
        return BanditData(**kwargs)

    @property
    def n_rounds(self) -> int:
        """Number of logged rows."""
        return int(self.users.shape[0])

    @property
    def n_actions(self) -> int:
        """Number of actions in the logged bank."""
        return int(self.embeddings.shape[0])


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """A target policy evaluated on the logged users: its action distribution over a target bank.

    Attributes:
        probs: pi(a | x_i) for every logged user and every action of the target bank, shape (n, K1).
        embeddings: Embeddings of the target bank, shape (K1, d_embed).
        action_ids: Ids of the target bank's actions, length K1 (shared ids = the same action as logged).
        name: A label for tables.

    Example:
        >>> pi = TargetPolicy(probs=np.array([[0.0, 1.0]]), embeddings=np.eye(2), action_ids=("A0", "A9"))
        >>> pi.n_actions
        2
    """

    probs: NDArray[np.float64]
    embeddings: NDArray[np.float64]
    action_ids: tuple[str, ...]
    name: str = "target"

    def __post_init__(self) -> None:
        embeddings = check_array("TargetPolicy.embeddings", self.embeddings, ndim=2)
        if embeddings.shape[0] == 0:
            raise ConfigError("TargetPolicy.embeddings must hold at least one action, got 0.")
        probs = np.asarray(self.probs)
        if probs.ndim != 2:
            raise ConfigError(f"TargetPolicy.probs must be a 2-D array (n_users, n_actions), got shape {probs.shape}.")
        if probs.shape[1] != embeddings.shape[0]:
            raise ConfigError(
                f"TargetPolicy.probs must give a probability to each of the target bank's {embeddings.shape[0]} "
                f"actions and no other (a policy cannot pick outside its bank), got {probs.shape[1]} columns."
            )
        probs = _check_distribution("TargetPolicy.probs", probs, probs.shape[0], embeddings.shape[0])
        embeddings.setflags(write=False)
        object.__setattr__(self, "probs", probs)
        object.__setattr__(self, "embeddings", embeddings)
        object.__setattr__(self, "action_ids", _ids("TargetPolicy.action_ids", self.action_ids, embeddings.shape[0]))

    @property
    def n_actions(self) -> int:
        """Number of actions in the target bank."""
        return int(self.embeddings.shape[0])

    @classmethod
    def from_actions(
        cls,
        actions: NDArray[np.int64],
        embeddings: NDArray[np.floating[Any]],
        action_ids: Sequence[str],
        *,
        name: str = "target",
    ) -> TargetPolicy:
        """A deterministic policy serving ``actions[i]`` (indices into the target bank) to user ``i``.

        Raises:
            ConfigError: If an index lies outside the target bank.

        Example:
            >>> TargetPolicy.from_actions(np.array([1, 0]), np.eye(2), ("A0", "A1")).probs.tolist()
            [[0.0, 1.0], [1.0, 0.0]]
        """
        actions = np.asarray(actions)
        n_actions = int(np.asarray(embeddings).shape[0])
        if actions.ndim != 1 or (actions.size and actions.dtype.kind not in "iu"):
            raise ConfigError(f"target actions must be a 1-D array of indices, got shape {actions.shape}.")
        if actions.size and (actions.min() < 0 or actions.max() >= n_actions):
            raise ConfigError(
                f"target actions must be indices into the target bank, in [0, {n_actions}) (a policy cannot pick "
                f"outside its bank), got values in [{actions.min()}, {actions.max()}]."
            )
        probs = np.zeros((actions.size, n_actions))
        probs[np.arange(actions.size), actions] = 1.0
        return cls(
            probs=probs, embeddings=np.asarray(embeddings, dtype=np.float64), action_ids=tuple(action_ids), name=name
        )
