"""Shared input checks with scikit-learn style messages: field, rule, value.

Example:
    >>> check_int("WorldConfig.initial_actions", 30, low=1)
    30
    >>> check_real("LinUCBConfig.alpha", -0.5, low=0.0)
    Traceback (most recent call last):
    ...
    actionbank_env.errors.ConfigError: LinUCBConfig.alpha must be a float >= 0.0, got -0.5.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
from collections.abc import Iterable
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from actionbank_env.errors import ConfigError, ConfigTypeError, UnknownComponentError

__all__ = [
    "check_int",
    "check_real",
    "check_prob",
    "check_bool",
    "check_choice",
    "check_array",
    "check_str",
    "check_known_names",
    "did_you_mean",
    "resolve_config",
]

C = TypeVar("C")


def _bounds_rule(kind: str, low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high}")
    return f"{kind} " + " and ".join(parts) if parts else kind


def check_int(
    name: str,
    value: Any,
    *,
    low: int | None = None,
    high: int | None = None,
) -> int:
    """Return ``value`` as an ``int`` if it is an integer within ``[low, high]``.

    Raises:
        ConfigTypeError: If ``value`` is not an integer (bools are rejected too).
        ConfigError: If it is out of bounds.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigTypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}.")
    ivalue = int(value)
    if (low is not None and ivalue < low) or (high is not None and ivalue > high):
        raise ConfigError(f"{name} must be an {_bounds_rule('int', low, high, False, False)}, got {value!r}.")
    return ivalue


def check_real(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a finite ``float`` within the given bounds.

    Raises:
        ConfigTypeError: If ``value`` is not a real number.
        ConfigError: If it is NaN, infinite or out of bounds.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigTypeError(f"{name} must be a float, got {value!r} of type {type(value).__name__}.")
    fvalue = float(value)
    rule = _bounds_rule("float", low, high, low_open, high_open)
    if not math.isfinite(fvalue):
        raise ConfigError(f"{name} must be a finite {rule}, got {value!r}.")
    too_low = low is not None and (fvalue <= low if low_open else fvalue < low)
    too_high = high is not None and (fvalue >= high if high_open else fvalue > high)
    if too_low or too_high:
        raise ConfigError(f"{name} must be a {rule}, got {value!r}.")
    return fvalue


def check_prob(name: str, value: Any, *, open_low: bool = False, open_high: bool = False) -> float:
    """Return ``value`` if it is a probability in [0, 1] (ends optionally open)."""
    return check_real(name, value, low=0.0, high=1.0, low_open=open_low, high_open=open_high)


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool (numpy bools included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigTypeError(f"{name} must be a bool, got {value!r} of type {type(value).__name__}.")
    return bool(value)


def check_str(name: str, value: Any, *, non_empty: bool = True, max_len: int | None = None) -> str:
    """Return ``value`` if it is a string (non-empty and at most ``max_len`` characters when asked)."""
    if not isinstance(value, str):
        raise ConfigTypeError(f"{name} must be a str, got {value!r} of type {type(value).__name__}.")
    if non_empty and not value.strip():
        raise ConfigError(f"{name} must be a non-empty string, got {value!r}.")
    if max_len is not None and len(value) > max_len:
        raise ConfigError(f"{name} must be at most {max_len} characters, got {len(value)} characters.")
    return value


def check_choice(name: str, value: Any, choices: Iterable[str], *, error: type[ValueError] = ConfigError) -> str:
    """Return ``value`` if it is one of ``choices``; otherwise suggest the closest one (difflib).

    Example:
        >>> check_choice("WorldConfig.embedder", "hasing", ["hashing", "minilm"])
        Traceback (most recent call last):
        ...
        actionbank_env.errors.ConfigError: WorldConfig.embedder must be one of ['hashing', 'minilm'], got 'hasing'. Did you mean 'hashing'?
    """
    options = sorted(choices)
    if not isinstance(value, str):
        raise ConfigTypeError(f"{name} must be a str, one of {options}, got {value!r} of type {type(value).__name__}.")
    if value not in options:
        raise error(f"{name} must be one of {options}, got {value!r}.{did_you_mean(value, options)}")
    return value


def did_you_mean(value: str, options: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` for the option closest to ``value`` (difflib), or ``""`` when none is close.

    Example:
        >>> did_you_mean("alpah", ["alpha", "l2"]), did_you_mean("zzz", ["alpha"])
        (" Did you mean 'alpha'?", '')
    """
    if not isinstance(value, str):  # a JSON object's key is a string, a Python dict's need not be
        return ""
    close = difflib.get_close_matches(value, [o for o in options if isinstance(o, str)], n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_known_names(owner: str, names: Iterable[str], valid: Iterable[str], *, what: str = "parameters") -> None:
    """Raise :class:`ConfigTypeError` naming every name of ``names`` not in ``valid``, with the closest valid ones.

    Example:
        >>> check_known_names("FooAgent", ["alpah", "l2"], ["alpha", "l2"])
        Traceback (most recent call last):
        ...
        actionbank_env.errors.ConfigTypeError: FooAgent got unknown parameters ['alpah']; valid names are ['alpha', 'l2']. Did you mean 'alpha'?
        >>> check_known_names("FooAgent", ["alpah", "l3"], ["alpha", "l2"])
        Traceback (most recent call last):
        ...
        actionbank_env.errors.ConfigTypeError: FooAgent got unknown parameters ['alpah', 'l3']; valid names are ['alpha', 'l2']. Did you mean 'alpah' -> 'alpha'?
    """
    options = list(valid)
    unknown = sorted(set(names) - set(options))
    if len(unknown) == 1:
        hint = did_you_mean(unknown[0], options)
        raise ConfigTypeError(f"{owner} got unknown {what} {unknown}; valid names are {options}.{hint}")
    if unknown:
        hints = [f"{u!r} -> {c[0]!r}" for u in unknown if (c := difflib.get_close_matches(u, options, n=1))]
        hint = f" Did you mean {', '.join(hints)}?" if hints else ""
        raise ConfigTypeError(f"{owner} got unknown {what} {unknown}; valid names are {options}.{hint}")


def resolve_config(cls: type[C], config: C | None, params: dict[str, Any], owner: str) -> C:
    """The config of a component built as ``Component(config=..., **params)``: ``cls(**params)``, or ``config``
    with ``params`` applied on top (validated again).

    Raises:
        ConfigTypeError: On unknown parameter names (each named, with the closest valid one) or a ``config`` that
            is not a ``cls``.

    Example:
        >>> @dataclasses.dataclass(frozen=True)
        ... class FooConfig:
        ...     alpha: float = 1.0
        >>> resolve_config(FooConfig, None, {"alpha": 2.0}, "FooAgent")
        FooConfig(alpha=2.0)
        >>> resolve_config(FooConfig, FooConfig(alpha=3.0), {}, "FooAgent")
        FooConfig(alpha=3.0)
    """
    check_known_names(owner, params, [f.name for f in dataclasses.fields(cls)])  # type: ignore[arg-type]
    if config is None:
        return cls(**params)
    if not isinstance(config, cls):
        raise ConfigTypeError(f"{owner} config must be a {cls.__name__}, got {type(config).__name__}.")
    return dataclasses.replace(config, **params) if params else config  # type: ignore[type-var]


def check_component(kind: str, value: Any, choices: Iterable[str]) -> str:
    """Like :func:`check_choice` for registry names; raises :class:`UnknownComponentError`."""
    return check_choice(kind, value, choices, error=UnknownComponentError)


def check_array(
    name: str,
    value: Any,
    *,
    ndim: int | None = None,
    shape: tuple[int | None, ...] | None = None,
    dtype: type | np.dtype[Any] = np.float64,
    finite: bool = True,
    low: float | None = None,
    high: float | None = None,
) -> NDArray[Any]:
    """Return ``value`` as a numpy array of ``dtype`` after checking its shape and values.

    ``shape`` entries that are ``None`` match any size.

    Raises:
        ConfigTypeError: If the value cannot be converted to a numeric array.
        ValueError: On a wrong number of dimensions, a wrong shape or non-finite / out-of-range values.
    """
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ConfigTypeError(
            f"{name} must be an array of {np.dtype(dtype).name}, got {type(value).__name__}: {exc}"
        ) from None
    if ndim is not None and array.ndim != ndim:
        raise ConfigError(f"{name} must be a {ndim}-D array, got shape {array.shape}.")
    if shape is not None:
        if array.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, array.shape, strict=True)):
            want = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"
            raise ConfigError(f"{name} must have shape {want}, got {array.shape}.")
    if array.dtype.kind == "f" and array.size:
        if finite and not np.all(np.isfinite(array)):
            raise ConfigError(
                f"{name} must contain only finite values, got {int(np.sum(~np.isfinite(array)))} NaN/inf."
            )
        if low is not None and array.min() < low:
            raise ConfigError(f"{name} must be >= {low}, got a minimum of {array.min()!r}.")
        if high is not None and array.max() > high:
            raise ConfigError(f"{name} must be <= {high}, got a maximum of {array.max()!r}.")
    return array
