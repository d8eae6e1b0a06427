"""Exceptions raised by actionbank_env.

Every custom exception also subclasses the matching built-in, so ``except ValueError`` keeps working, and callers
decide by exception *type*, never by the text of a message: the command line reports every
:class:`ActionBankError` as the user's mistake (exit code 2) and lets anything else through as a bug.
"""

from __future__ import annotations

__all__ = [
    "ActionBankError",
    "ConfigError",
    "ConfigTypeError",
    "UnknownComponentError",
    "MissingExtraError",
    "ServiceError",
    "DataError",
    "MissingFileError",
]


class ActionBankError(Exception):
    """Base class of every error raised on purpose by this package."""


class ConfigError(ActionBankError, ValueError):
    """A configuration value breaks a rule; the message names the field, the rule and the value."""


class ConfigTypeError(ActionBankError, TypeError):
    """A configuration value has the wrong type, or a setting name is unknown; the message names the field."""


class UnknownComponentError(ActionBankError, ValueError):
    """A registry name (agent, designer, reward model, embedder, ...) is not known."""


class MissingExtraError(ActionBankError, ImportError):
    """An optional extra (e.g. ``ray``) is not installed; the message names the extra and how to install it.

    Example:
        >>> str(MissingExtraError("ray", "--backend ray"))
        "--backend ray needs the 'ray' extra: pip install 'actionbank-env[ray]'"
    """

    def __init__(self, extra: str, what: str) -> None:
        self.extra = extra
        super().__init__(f"{what} needs the {extra!r} extra: pip install 'actionbank-env[{extra}]'")


class ServiceError(ActionBankError, RuntimeError):
    """An outside service (OpenAI) failed after bounded retries."""


class DataError(ConfigError):
    """A file's content breaks a rule (not valid JSON or CSV, a missing column, counts that disagree with its
    config, a model file that is not plain data); the message names the file, the rule and the value."""


class MissingFileError(ActionBankError, FileNotFoundError):
    """An input file or folder named by the settings does not exist; the message names the setting and the path."""
