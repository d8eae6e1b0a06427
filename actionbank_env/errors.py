"""Exceptions raised by actionbank_env.

Every custom exception also subclasses the matching built-in, so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "ActionBankError",
    "ConfigError",
    "UnknownComponentError",
    "ServiceError",
]


class ActionBankError(Exception):
    """Base class of every error raised on purpose by this package."""


class ConfigError(ActionBankError, ValueError):
    """A configuration value breaks a rule; the message names the field, the rule and the value."""


class UnknownComponentError(ActionBankError, ValueError):
    """A registry name (agent, designer, reward model, embedder, ...) is not known."""


class ServiceError(ActionBankError, RuntimeError):
    """An outside service (OpenAI) failed after bounded retries."""
