"""A Stable-Baselines3 actor-critic that scores every message slot of the bank with shared weights.

A flat MLP over ``Discrete(K + 1)`` must learn an argmax over K slots from one concatenated vector, with a
separate output row per slot. The standard architecture for action banks scores each action from its own
features with weights shared across actions (Dulac-Arnold et al., 2015, "Deep reinforcement learning in large
discrete action spaces"; He et al., 2016, "Deep reinforcement learning with a natural language action space",
DRRN):

    logit_k = g(h(state), features of slot k)   for k = 1..K,    logit_nothing = w . h(state) + b,

so the policy is permutation-equivariant over the slots (permuting the bank permutes the action
probabilities) and what it learns about one message transfers to every message with similar features. The
value comes from its own MLP over the state and the mean of the slot features (permutation-invariant).

It reads ``ActionBank/Retention-v0``'s ``Dict`` observation (``observe_bank=True``): ``"subscriber"`` is the
state; each slot's features are its row of ``"bank"``, that row's first ``message_obs_dim`` values times the
last email's projection at the end of ``"subscriber"`` (the same principal axes, so a slot close to the last
email is visible to a linear layer; the novelty penalty of the dynamics), and with ``oracle_features`` the slot's
true click probability, its ratio to the best slot's and whether it is the best (``"oracle"``; its three
summary values join the state). A click model's estimates in the same layout (``"estimate"``, added by
:class:`agents.retention_estimates.EstimatedFeaturesVector`; deployable) are read the same way. The ratio and the indicator are there for scale: the best and second-best
slots differ by about 0.025 in the observation's units, which the raw probability alone makes a shared
linear layer learn slowly against bank features of size ~0.25. ``"action_mask"`` removes padded
slots. torch and SB3 are imported at module level: import this module only where a policy is built.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

__all__ = ["SlotFeaturesExtractor", "SlotScorer", "SlotScoringPolicy", "action_probs"]

#: Per-slot oracle features: the click probability, its ratio to the best slot's, and whether it is the best.
_N_ORACLE_SLOT = 3
#: Dict entries read as per-slot click probabilities + summary: the ground truth (``RetentionConfig.oracle_features``)
#: or a click model's estimates in the same layout (``agents.retention_estimates.EstimatedFeaturesVector``).
_ORACLE_KEYS = ("oracle", "estimate")
#: Logit given to masked (padded) slots: exp() of it is 0 in float32, and it stays finite for the entropy.
_MASKED_LOGIT = -1e8


class SlotFeaturesExtractor(BaseFeaturesExtractor):
    """Lays the ``Dict`` observation out as one flat tensor ``[state, slot features (K * d_slot), mask (K + 1)]``.

    SB3 passes one tensor from the features extractor to the ``mlp_extractor``; :class:`SlotScorer` splits it
    back with :attr:`d_state`, :attr:`n_slots` and :attr:`d_slot`.

    Args:
        observation_space: Retention-v0's ``Dict`` space (``"subscriber"``, ``"bank"``, ``"action_mask"``,
            optionally ``"oracle"`` or, in the same layout, a click model's ``"estimate"``; not both).
        message_obs_dim: Columns of the last email's projection at the end of ``"subscriber"`` (the env's
            ``RetentionConfig.message_obs_dim``); 0 leaves out the slot-by-last-email products.
    """

    def __init__(self, observation_space: spaces.Dict, message_obs_dim: int = 8) -> None:
        if not isinstance(observation_space, spaces.Dict):
            raise TypeError(
                "SlotFeaturesExtractor needs Retention-v0's Dict observation (observe_bank=True), "
                f"got {type(observation_space).__name__}."
            )
        missing = {"subscriber", "bank", "action_mask"} - set(observation_space.spaces)
        if missing:
            raise ValueError(
                f"SlotFeaturesExtractor needs Retention-v0's Dict observation (observe_bank=True); missing {sorted(missing)}."
            )
        shape = {key: tuple(space.shape or ()) for key, space in observation_space.spaces.items()}
        d_sub = int(shape["subscriber"][0])
        n_slots, d_bank = (int(v) for v in shape["bank"])
        d_msg = int(message_obs_dim)
        if not 0 <= d_msg <= min(d_sub, d_bank):
            raise ValueError(
                f"SlotFeaturesExtractor.message_obs_dim must be in [0, {min(d_sub, d_bank)}], got {d_msg}."
            )
        keys = [key for key in _ORACLE_KEYS if key in observation_space.spaces]
        if len(keys) > 1:
            raise ValueError(f"SlotFeaturesExtractor reads one of {list(_ORACLE_KEYS)}, got both.")
        self.oracle_key: str | None = keys[0] if keys else None
        self.oracle = self.oracle_key is not None
        d_state = d_sub + (int(shape[keys[0]][0]) - n_slots if self.oracle else 0)
        d_slot = d_bank + d_msg + (_N_ORACLE_SLOT if self.oracle else 0)
        super().__init__(observation_space, features_dim=d_state + n_slots * d_slot + n_slots + 1)
        self.d_state, self.n_slots, self.d_slot, self.d_msg = d_state, n_slots, d_slot, d_msg

    def forward(self, observations: dict[str, th.Tensor]) -> th.Tensor:
        """The flat layout of a batch, shape (B, features_dim)."""
        sub, bank = observations["subscriber"], observations["bank"]
        state = [sub]
        slots = [bank]
        if self.d_msg:
            last = sub[:, sub.shape[1] - self.d_msg :]
            slots.append(bank[:, :, : self.d_msg] * last[:, None, :])
        if self.oracle_key is not None:
            oracle = observations[self.oracle_key]
            probs, best = oracle[:, : self.n_slots], oracle[:, self.n_slots : self.n_slots + 1]
            relative = probs / best.clamp(min=1e-6)
            is_best = (probs >= best - 1e-6).to(probs.dtype)
            slots.append(th.stack([probs, relative, is_best], dim=2))
            state.append(oracle[:, self.n_slots :])
        batch = sub.shape[0]
        return th.cat([*state, th.cat(slots, dim=2).reshape(batch, -1), observations["action_mask"]], dim=1)


def _mlp(d_in: int, widths: list[int], activation: type[nn.Module]) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(d_in, width), activation()]
        d_in = width
    return nn.Sequential(*layers), d_in


class SlotScorer(nn.Module):
    """SB3's ``mlp_extractor``: the actor's latent is the K + 1 logits themselves, the critic's an MLP's output.

    Actor: ``h = MLP(state)`` (``net_arch``); each slot ``u_k = act(W_h h + W_x x_k + b)`` then ``slot_arch[1:]``
    more shared layers and a linear score; "send nothing" is a linear function of ``h``. Critic: ``MLP([state,
    mean_k x_k])`` (``net_arch``; the mean over unmasked slots, permutation-invariant). Masked slots get a logit
    of -1e8.

    Args:
        d_state: State features. n_slots: Message slots K. d_slot: Features per slot.
        net_arch: Widths of the state MLP and of the critic MLP.
        slot_arch: Widths of the shared per-slot layers (at least one).
        activation_fn: Activation class.
    """

    def __init__(
        self,
        d_state: int,
        n_slots: int,
        d_slot: int,
        *,
        net_arch: list[int],
        slot_arch: list[int],
        activation_fn: type[nn.Module],
    ) -> None:
        super().__init__()
        if not slot_arch:
            raise ValueError("SlotScorer.slot_arch must have at least one layer width, got [].")
        self.d_state, self.n_slots, self.d_slot = d_state, n_slots, d_slot
        self.state_net, d_h = _mlp(d_state, list(net_arch), activation_fn)
        self.slot_in_state = nn.Linear(d_h, slot_arch[0])
        self.slot_in_slot = nn.Linear(d_slot, slot_arch[0], bias=False)
        self.slot_act = activation_fn()
        self.slot_net, d_u = _mlp(slot_arch[0], list(slot_arch[1:]), activation_fn)
        self.slot_score = nn.Linear(d_u, 1)
        self.nothing_score = nn.Linear(d_h, 1)
        self.value_net, self.latent_dim_vf = _mlp(d_state + d_slot, list(net_arch), activation_fn)
        self.latent_dim_pi = n_slots + 1

    def split(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """State (B, d_state), slots (B, K, d_slot) and mask (B, K + 1) from the flat layout."""
        d, k = self.d_state, self.n_slots
        slots = features[:, d : d + k * self.d_slot].reshape(-1, k, self.d_slot)
        return features[:, :d], slots, features[:, d + k * self.d_slot :]

    def forward(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """Logits (B, K + 1) and the critic's latent."""
        return self.forward_actor(features), self.forward_critic(features)

    def forward_actor(self, features: th.Tensor) -> th.Tensor:
        """Logits of the K slots and of "send nothing", shape (B, K + 1)."""
        state, slots, mask = self.split(features)
        h = self.state_net(state)
        u = self.slot_act(self.slot_in_state(h)[:, None, :] + self.slot_in_slot(slots))
        scores = self.slot_score(self.slot_net(u)).squeeze(-1)
        logits = th.cat([scores, self.nothing_score(h)], dim=1)
        return th.where(mask > 0.5, logits, th.full_like(logits, _MASKED_LOGIT))

    def forward_critic(self, features: th.Tensor) -> th.Tensor:
        """The critic's latent from the state and the mean of the (unmasked) slot features."""
        state, slots, mask = self.split(features)
        valid = mask[:, : self.n_slots, None]
        mean = (slots * valid).sum(dim=1) / valid.sum(dim=1).clamp(min=1.0)
        out: th.Tensor = self.value_net(th.cat([state, mean], dim=1))
        return out


class SlotScoringPolicy(ActorCriticPolicy):
    """PPO/A2C policy for Retention-v0's ``Dict`` observation that scores every slot with shared weights.

    Use as ``PPO(SlotScoringPolicy, env, policy_kwargs={"net_arch": [128, 128], "slot_arch": [32]})`` on an
    env with ``observe_bank=True``; ``agents.retention.train_sb3(..., policy="slots")`` does it.

    Args:
        observation_space: Retention-v0's ``Dict`` space.
        action_space: ``Discrete(K + 1)``.
        lr_schedule: SB3's learning-rate schedule.
        net_arch: Widths of the state MLP and of the critic MLP (a list; default [128, 128]).
        slot_arch: Widths of the shared per-slot layers (default [32]).
        message_obs_dim: See :class:`SlotFeaturesExtractor`.
        **kwargs: Other :class:`ActorCriticPolicy` arguments.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Discrete,
        lr_schedule: Any,
        net_arch: list[int] | None = None,
        slot_arch: list[int] | None = None,
        message_obs_dim: int = 8,
        **kwargs: Any,
    ) -> None:
        if not isinstance(action_space, spaces.Discrete):
            raise TypeError(f"SlotScoringPolicy needs a Discrete action space, got {action_space}.")
        if net_arch is not None and not isinstance(net_arch, list):
            raise TypeError(f"SlotScoringPolicy.net_arch must be a list of widths, got {net_arch!r}.")
        self.slot_arch = list(slot_arch) if slot_arch is not None else [32]
        self.message_obs_dim = message_obs_dim
        kwargs.setdefault("features_extractor_class", SlotFeaturesExtractor)
        kwargs.setdefault("features_extractor_kwargs", {"message_obs_dim": message_obs_dim})
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=list(net_arch) if net_arch is not None else [128, 128],
            **kwargs,
        )
        extractor = self._slot_extractor()
        if int(action_space.n) != extractor.n_slots + 1:
            raise ValueError(
                f"SlotScoringPolicy: the action space has {action_space.n} actions, the bank {extractor.n_slots} slots "
                "(expected slots + 1, the last sends nothing)."
            )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(slot_arch=self.slot_arch, message_obs_dim=self.message_obs_dim)
        return data

    def _slot_extractor(self) -> SlotFeaturesExtractor:
        extractor = self.features_extractor
        if not isinstance(extractor, SlotFeaturesExtractor):
            raise TypeError(
                f"SlotScoringPolicy needs a SlotFeaturesExtractor (or a subclass), got {type(extractor).__name__}."
            )
        return extractor

    def _build_mlp_extractor(self) -> None:
        extractor = self._slot_extractor()
        net_arch = self.net_arch if isinstance(self.net_arch, list) else []
        # SB3 types mlp_extractor as its MlpExtractor; it only uses the latent dims and forward(_actor/_critic).
        self.mlp_extractor = SlotScorer(  # type: ignore[assignment]
            extractor.d_state,
            extractor.n_slots,
            extractor.d_slot,
            net_arch=list(net_arch),
            slot_arch=self.slot_arch,
            activation_fn=self.activation_fn,
        )

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        # The scorer's output already is the logits: no linear layer over them (it would mix the slots).
        self.action_net = nn.Identity()
        scorer = self.mlp_extractor
        assert isinstance(scorer, SlotScorer)
        if self.ortho_init:  # small initial scores, as SB3 does for action_net: a near-uniform first policy
            for layer in (scorer.slot_score, scorer.nothing_score):
                nn.init.orthogonal_(layer.weight, gain=0.01)
                nn.init.zeros_(layer.bias)
        # Rebuilt without the replaced action_net's parameters (they would sit in the optimizer's state).
        self.optimizer = self.optimizer_class(
            self.parameters(),
            lr=lr_schedule(1),  # type: ignore[call-arg]
            **self.optimizer_kwargs,
        )


def action_probs(policy: SlotScoringPolicy, observations: dict[str, np.ndarray]) -> th.Tensor:
    """The policy's action probabilities on a batch of numpy observations, shape (B, K + 1) (for tests and notebooks)."""
    obs, _ = policy.obs_to_tensor(observations)
    with th.no_grad():
        dist = policy.get_distribution(obs)
    inner = dist.distribution
    assert isinstance(inner, th.distributions.Categorical)
    probs: th.Tensor = inner.probs
    return probs
