"""Off-policy evaluation: estimate a new bank or targeting policy from the logs, beside the exact truth.

- :mod:`~actionbank_env.ope.data`: :class:`BanditData` (the log) and :class:`TargetPolicy` (pi over a bank).
- :mod:`~actionbank_env.ope.estimators`: DM, IPS, SNIPS, DR, switch-DR, DR-os, MIPS, SN-MIPS and marginal DR
  with analytic or bootstrap intervals.
- :mod:`~actionbank_env.ope.posterior`: the direct method under a Bayesian reward model's posterior
  (``bayes_dm``), its level-calibrated form (``bayes_cdm``) and the DR family on that model.
"""

from __future__ import annotations

from actionbank_env.ope.data import BanditData, TargetPolicy
from actionbank_env.ope.estimators import ESTIMATORS, ActionClusters, Estimate, OPEConfig, estimate_all

__all__ = ["BanditData", "TargetPolicy", "ESTIMATORS", "Estimate", "OPEConfig", "ActionClusters", "estimate_all"]
