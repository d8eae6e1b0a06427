"""Gymnasium adapters over the simulation core.

- ``ActionBank/Targeting-v0``: :class:`~actionbank_env.envs.targeting.TargetingEnv` (per-user targeting),
  with the native vector twin :class:`~actionbank_env.envs.targeting_vector.TargetingVectorEnv`.
- ``ActionBank/Retention-v0``: :class:`~actionbank_env.envs.retention.RetentionEnv` (a subscriber's weekly emails
  with fatigue, novelty and unsubscribes), with the native vector twin
  :class:`~actionbank_env.envs.retention.RetentionVectorEnv`.
- ``ActionBank/BankDesign-v0``: :class:`~actionbank_env.envs.bank_design.BankDesignEnv` (the outer loop),
  and :class:`~actionbank_env.envs.wrappers.FixedCatalogActionWrapper` for SB3/RLlib on it.

The ids are registered by :func:`~actionbank_env.envs.registration.register_envs` (called when
``actionbank_env`` is imported). This module does not import gymnasium itself; import the classes from
their modules.
"""

from __future__ import annotations

from actionbank_env.envs.registration import ENV_IDS, register_envs

__all__ = ["ENV_IDS", "register_envs"]
