"""actionbank-env: test action-bank design for personalised targeting before touching real customers.

Importing the package registers the Gymnasium environments (``ActionBank/Targeting-v0``,
``ActionBank/BankDesign-v0``) lazily; heavy libraries (torch, sentence-transformers, lightgbm) are only
imported by the code that uses them.
"""

from __future__ import annotations

from actionbank_env.envs.registration import register_envs as _register_envs

__version__ = "0.1.0"

_register_envs()

__all__ = ["__version__"]
