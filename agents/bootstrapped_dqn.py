"""Bootstrapped DQN (Osband, Blundell, Pritzel and Van Roy, 2016) for targeting.

"Deep Exploration via Bootstrapped DQN", NeurIPS 2016. ``n_heads`` Q-functions share a torso; each head is
trained on its own bootstrap resample of the replay (a Bernoulli(p) mask per transition and head), and a
randomly drawn head acts, which gives Thompson-sampling-like exploration.

``Q(x, e_a)`` reads the user features ``x`` and the (PCA-reduced) embedding ``e_a`` of the action, so the
agent scores actions it has never served. All heads are one network: a shared MLP torso over
``[x - 0.5, e_a, vec((x - 0.5) (x) e_a)]`` and per-head layers held as stacked weights (``n_heads`` batched
matrix products), so one forward pass gives ``(n_heads, B, K)``.

torch is imported inside the functions that need it, so ``import agents.bootstrapped_dqn`` stays light.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import (
    check_bool,
    check_choice,
    check_int,
    check_prob,
    check_real,
    check_str,
    resolve_config,
)
from actionbank_env.core.actions import ActionBank
from actionbank_env.errors import ConfigError, ConfigTypeError
from actionbank_env.protocols import AgentContext, Decision

from ._common import (
    check_bank,
    check_feedback,
    check_users,
    make_decision,
    make_projection,
    require_bank,
)

__all__ = ["BootstrappedDQNConfig", "BootstrappedDQNAgent", "ReplayBuffer"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class BootstrappedDQNConfig:
    """Hyperparameters of bootstrapped DQN (Osband et al., 2016).

    Attributes:
        n_heads: Number of bootstrap heads.
        hidden_sizes: Widths of the shared torso layers.
        head_hidden: Width of each head's hidden layer.
        lr: Adam learning rate.
        gamma: Discount. 0 for one-step bandit episodes (the target is the click); with gamma > 0 the users
            of one ``update`` batch form an episode (the next user is the next state, the last row ends it).
        batch_size: Transitions per gradient step.
        replay_capacity: Size of the ring replay buffer.
        mask_prob: Probability ``p`` that a transition is in a head's bootstrap sample.
        target_update_period: Gradient steps between copies of the online network to the target network.
        head_sampling: ``"episode"``: every user (a one-step episode) gets its own uniformly drawn head;
            ``"batch"``: one head acts for a whole ``act`` batch.
        train_steps_per_update: Gradient steps per ``update`` call (once ``learning_starts`` is reached).
        learning_starts: Transitions in the replay before training begins.
        use_pca: Reduce embeddings by PCA fitted on the context's reference embeddings.
        pca_components: Number of PCA components (clipped to what the reference supports).
        propensity_floor: Smallest propensity reported (the vote fraction is at least ``1 / n_heads`` anyway).
        device: torch device, e.g. ``"cpu"``.

    Example:
        >>> BootstrappedDQNConfig(n_heads=4).mask_prob
        0.5
    """

    n_heads: int = 10
    hidden_sizes: tuple[int, ...] = (64,)
    head_hidden: int = 32
    lr: float = 1e-3
    gamma: float = 0.0
    batch_size: int = 64
    replay_capacity: int = 10_000
    mask_prob: float = 0.5
    target_update_period: int = 100
    head_sampling: str = "episode"
    train_steps_per_update: int = 1
    learning_starts: int = 64
    use_pca: bool = True
    pca_components: int = 16
    propensity_floor: float = 0.01
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_int("BootstrappedDQNConfig.n_heads", self.n_heads, low=1)
        if not isinstance(self.hidden_sizes, tuple):
            raise ConfigTypeError(
                f"BootstrappedDQNConfig.hidden_sizes must be a tuple of ints, got {type(self.hidden_sizes).__name__}."
            )
        for i, width in enumerate(self.hidden_sizes):
            check_int(f"BootstrappedDQNConfig.hidden_sizes[{i}]", width, low=1)
        check_int("BootstrappedDQNConfig.head_hidden", self.head_hidden, low=1)
        check_real("BootstrappedDQNConfig.lr", self.lr, low=0.0, low_open=True)
        check_real("BootstrappedDQNConfig.gamma", self.gamma, low=0.0, high=1.0, high_open=True)
        check_int("BootstrappedDQNConfig.batch_size", self.batch_size, low=1)
        check_int("BootstrappedDQNConfig.replay_capacity", self.replay_capacity, low=1)
        check_prob("BootstrappedDQNConfig.mask_prob", self.mask_prob, open_low=True)
        check_int("BootstrappedDQNConfig.target_update_period", self.target_update_period, low=1)
        check_choice("BootstrappedDQNConfig.head_sampling", self.head_sampling, ("episode", "batch"))
        check_int("BootstrappedDQNConfig.train_steps_per_update", self.train_steps_per_update, low=0)
        check_int("BootstrappedDQNConfig.learning_starts", self.learning_starts, low=1)
        check_bool("BootstrappedDQNConfig.use_pca", self.use_pca)
        check_int("BootstrappedDQNConfig.pca_components", self.pca_components, low=1)
        check_prob("BootstrappedDQNConfig.propensity_floor", self.propensity_floor, open_low=True)
        check_str("BootstrappedDQNConfig.device", self.device)
        if self.learning_starts > self.replay_capacity:
            raise ConfigError(
                f"BootstrappedDQNConfig.learning_starts={self.learning_starts} must be <= "
                f"replay_capacity={self.replay_capacity}."
            )


class ReplayBuffer:
    """Preallocated numpy ring buffer of (user, embedding, reward, next user, done, bootstrap mask).

    Args:
        capacity: Rows kept; the oldest are overwritten.
        d_user: User feature dimension.
        d_embed: (Reduced) embedding dimension.
        n_heads: Length of each bootstrap mask.

    Example:
        >>> buf = ReplayBuffer(3, d_user=2, d_embed=1, n_heads=2)
        >>> buf.add(np.zeros((5, 2)), np.zeros((5, 1)), np.arange(5.0), np.zeros((5, 2)), np.ones(5), np.ones((5, 2)))
        >>> len(buf), sorted(buf.rewards.tolist())
        (3, [2.0, 3.0, 4.0])
    """

    def __init__(self, capacity: int, *, d_user: int, d_embed: int, n_heads: int) -> None:
        self.capacity = capacity
        self.users = np.zeros((capacity, d_user))
        self.embeddings = np.zeros((capacity, d_embed))
        self.rewards = np.zeros(capacity)
        self.next_users = np.zeros((capacity, d_user))
        self.dones = np.ones(capacity)
        self.masks = np.zeros((capacity, n_heads))
        self._pos = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(
        self,
        users: NDArray[np.float64],
        embeddings: NDArray[np.float64],
        rewards: NDArray[np.float64],
        next_users: NDArray[np.float64],
        dones: NDArray[np.float64],
        masks: NDArray[np.float64],
    ) -> None:
        """Append rows (n, ...) in order, wrapping around (only the last ``capacity`` rows of a batch kept)."""
        n = users.shape[0]
        if n > self.capacity:
            sl = slice(n - self.capacity, n)
            users, embeddings, rewards, next_users, dones, masks = (
                arr[sl] for arr in (users, embeddings, rewards, next_users, dones, masks)
            )
            n = self.capacity
        idx = (self._pos + np.arange(n)) % self.capacity
        self.users[idx], self.embeddings[idx], self.rewards[idx] = users, embeddings, rewards
        self.next_users[idx], self.dones[idx], self.masks[idx] = next_users, dones, masks
        self._pos = int((self._pos + n) % self.capacity)
        self._size = min(self._size + n, self.capacity)


def _build_network(d_user: int, d_embed: int, cfg: BootstrappedDQNConfig, generator: Any) -> Any:
    """The multi-head Q-network (a torch Module), initialised from ``generator``."""
    import torch

    class MultiHeadQ(torch.nn.Module):
        """Shared torso over pair features; per-head hidden + output layers as stacked weights."""

        def __init__(self) -> None:
            super().__init__()
            d_in = d_user + d_embed + d_user * d_embed
            sizes = (d_in, *cfg.hidden_sizes)
            self.torso = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
            h, hh, n_heads = sizes[-1], cfg.head_hidden, cfg.n_heads
            self.w1 = torch.nn.Parameter(torch.empty(n_heads, h, hh))
            self.b1 = torch.nn.Parameter(torch.empty(n_heads, 1, hh))
            self.w2 = torch.nn.Parameter(torch.empty(n_heads, hh, 1))
            self.b2 = torch.nn.Parameter(torch.empty(n_heads, 1, 1))
            with torch.no_grad():
                for layer in self.torso:
                    assert isinstance(layer, torch.nn.Linear)
                    bound = 1.0 / float(np.sqrt(layer.in_features))
                    layer.weight.uniform_(-bound, bound, generator=generator)
                    layer.bias.uniform_(-bound, bound, generator=generator)
                for w, b, fan_in in ((self.w1, self.b1, h), (self.w2, self.b2, hh)):
                    bound = 1.0 / float(np.sqrt(fan_in))
                    w.uniform_(-bound, bound, generator=generator)
                    b.uniform_(-bound, bound, generator=generator)

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            """Pair features (N, d_in) -> Q-values (n_heads, N)."""
            hidden = features
            for layer in self.torso:
                hidden = torch.relu(layer(hidden))
            heads = torch.relu(torch.matmul(hidden.unsqueeze(0), self.w1) + self.b1)  # (H, N, hh)
            return (torch.matmul(heads, self.w2) + self.b2).squeeze(-1)

    return MultiHeadQ().to(cfg.device)


class BootstrappedDQNAgent:
    """Bootstrapped DQN targeting agent (Osband et al., 2016) over (user, action embedding) pairs.

    Acting: one forward pass scores all B users x K actions for all heads, ``(n_heads, B, K)``; each user is
    served the argmax of its drawn head (``head_sampling``). The propensity is the fraction of heads whose
    argmax is the served action, which is the exact marginal probability of serving it when the head is drawn
    uniformly (ties aside); it is floored at ``propensity_floor``.

    Learning: ``update`` appends the batch to a numpy ring replay with a Bernoulli(``mask_prob``) mask per
    transition and head (from the agent's numpy ``rng``), then takes ``train_steps_per_update`` Adam steps
    on the masked squared TD error ``sum_{i,h} m_ih (Q_h(x_i, e_i) - y_ih)^2 / sum m_ih`` with
    ``y_ih = r_i + gamma (1 - done_i) max_a Q^target_h(x'_i, e_a)``. The target network is a copy of the
    online one refreshed every ``target_update_period`` steps.

    Determinism: torch parameters are initialised from a ``torch.Generator`` seeded by the agent's numpy
    ``rng``; minibatches, masks and heads come from the numpy ``rng``. Global torch settings are not changed.

    Args:
        context: The world's description (d_user, reference embeddings for the PCA).
        rng: The agent's only source of randomness.
        config: A :class:`BootstrappedDQNConfig`; or pass its fields as keyword arguments.
    """

    #: The config whose fields are this agent's keyword parameters.
    config_class: ClassVar[type[BootstrappedDQNConfig]] = BootstrappedDQNConfig

    def __init__(
        self,
        context: AgentContext,
        *,
        rng: np.random.Generator,
        config: BootstrappedDQNConfig | None = None,
        **hyperparameters: Any,
    ) -> None:
        import torch

        self.config = cfg = resolve_config(BootstrappedDQNConfig, config, hyperparameters, "BootstrappedDQNAgent")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"BootstrappedDQNAgent rng must be a numpy Generator, got {type(rng).__name__}.")
        self.context = context
        self._rng = rng
        self.d_user = int(context.d_user)
        self._projection = make_projection(context, cfg.use_pca, cfg.pca_components, "BootstrappedDQNConfig")
        self.d_embed = self._projection.n_components
        self._device = torch.device(cfg.device)
        generator = torch.Generator().manual_seed(int(rng.integers(2**63)))
        self.q_network = _build_network(self.d_user, self.d_embed, cfg, generator)
        self.target_network = _build_network(self.d_user, self.d_embed, cfg, generator)
        self.target_network.load_state_dict(self.q_network.state_dict())
        self.target_network.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.q_network.parameters(), lr=cfg.lr)
        self.replay = ReplayBuffer(cfg.replay_capacity, d_user=self.d_user, d_embed=self.d_embed, n_heads=cfg.n_heads)
        self.n_gradient_steps = 0
        self._bank: ActionBank | None = None
        self._bank_embeddings = np.zeros((0, self.d_embed))

    @property
    def bank(self) -> ActionBank | None:
        """The current bank (``None`` before :meth:`set_bank`)."""
        return self._bank

    def set_bank(self, bank: ActionBank) -> None:
        """Switch to ``bank``. Q reads embeddings, so nothing per id is kept or reset; the replay stays."""
        check_bank(bank)
        self._bank = bank
        self._bank_embeddings = self._projection.transform(bank.embeddings)

    def _pair_features(self, users: Any, embeddings: Any) -> Any:
        """Features of aligned pairs: users (N, d_user), embeddings (N, d_embed) -> (N, d_in) tensors."""
        import torch

        centred = users - 0.5
        outer = (centred.unsqueeze(-1) * embeddings.unsqueeze(-2)).flatten(-2)
        return torch.cat([centred, embeddings, outer], dim=-1)

    def _all_pairs(self, users: NDArray[np.float64], network: Any) -> Any:
        """Q-values of every user with every bank action: (n_heads, B, K) tensor (no grad)."""
        import torch

        n_rows, n_actions = users.shape[0], self._bank_embeddings.shape[0]
        x = torch.from_numpy(users.astype(np.float32)).to(self._device)
        e = torch.from_numpy(self._bank_embeddings.astype(np.float32)).to(self._device)
        feats = self._pair_features(
            x[:, None, :].expand(n_rows, n_actions, self.d_user), e[None, :, :].expand(n_rows, n_actions, self.d_embed)
        )
        with torch.no_grad():
            return network(feats.reshape(n_rows * n_actions, -1)).reshape(-1, n_rows, n_actions)

    def q_values(self, users: NDArray[np.float64]) -> NDArray[np.float64]:
        """Q-values of all heads, users (B, d_user) -> (n_heads, B, K)."""
        require_bank(self._bank, "BootstrappedDQNAgent")
        q = self._all_pairs(check_users(users, self.d_user), self.q_network)
        out: NDArray[np.float64] = q.cpu().numpy().astype(np.float64)
        return out

    def act(self, users: NDArray[np.float64]) -> Decision:
        """Serve each user the argmax of a drawn head; users (B, d_user) -> Decision (B,)."""
        require_bank(self._bank, "BootstrappedDQNAgent")
        users = check_users(users, self.d_user)
        n_rows, cfg = users.shape[0], self.config
        greedy = self._all_pairs(users, self.q_network).argmax(dim=-1).cpu().numpy().astype(np.int64)  # (H, B)
        heads: NDArray[np.int64]
        if cfg.head_sampling == "episode":
            heads = self._rng.integers(0, cfg.n_heads, size=(n_rows,))
        else:
            heads = np.full(n_rows, self._rng.integers(0, cfg.n_heads))
        actions = greedy[heads, np.arange(n_rows)]
        votes = np.mean(greedy == actions[None, :], axis=0)
        return make_decision(actions, np.maximum(votes, cfg.propensity_floor))

    def action_probs(self, users: NDArray[np.float64]) -> NDArray[np.float64]:
        """Share of heads whose argmax is each action: the distribution :meth:`act` draws from, shape (B, K)."""
        require_bank(self._bank, "BootstrappedDQNAgent")
        users = check_users(users, self.d_user)
        greedy = self._all_pairs(users, self.q_network).argmax(dim=-1).cpu().numpy().astype(np.int64)  # (H, B)
        n_heads, n_rows = greedy.shape
        probs = np.zeros((n_rows, self._bank_embeddings.shape[0]))
        np.add.at(probs, (np.tile(np.arange(n_rows), n_heads), greedy.ravel()), 1.0 / n_heads)
        return probs

    def update(
        self, users: NDArray[np.float64], actions: NDArray[np.int64], rewards: NDArray[np.float64]
    ) -> dict[str, float]:
        """Store the batch in the replay and train.

        Args:
            users: User features, shape (B, d_user).
            actions: Indices into the current bank, shape (B,).
            rewards: Observed rewards, shape (B,).

        Returns:
            ``{"train/replay_size": n}`` plus ``"train/td_loss"`` (mean over this call's steps) once training.
        """
        require_bank(self._bank, "BootstrappedDQNAgent")
        users, actions, rewards = check_feedback(users, actions, rewards, self.d_user, self._bank_embeddings.shape[0])
        n_rows, cfg = users.shape[0], self.config
        if n_rows:
            masks = (self._rng.random((n_rows, cfg.n_heads)) < cfg.mask_prob).astype(np.float64)
            next_users = np.concatenate([users[1:], users[-1:]], axis=0)
            dones = np.zeros(n_rows)
            dones[-1] = 1.0
            self.replay.add(users, self._bank_embeddings[actions], rewards, next_users, dones, masks)
        metrics: dict[str, float] = {"train/replay_size": float(len(self.replay))}
        if len(self.replay) < cfg.learning_starts or cfg.train_steps_per_update == 0:
            return metrics
        losses = [self._train_step() for _ in range(cfg.train_steps_per_update)]
        metrics["train/td_loss"] = float(np.mean(losses))
        return metrics

    def _train_step(self) -> float:
        import torch

        cfg, buf = self.config, self.replay
        idx = self._rng.integers(0, len(buf), size=cfg.batch_size)

        def tensor(arr: NDArray[np.float64]) -> torch.Tensor:
            return torch.from_numpy(arr.astype(np.float32)).to(self._device)

        x, e, r, m = (
            tensor(buf.users[idx]),
            tensor(buf.embeddings[idx]),
            tensor(buf.rewards[idx]),
            tensor(buf.masks[idx]),
        )
        target = r.unsqueeze(0).expand(cfg.n_heads, -1)
        if cfg.gamma > 0.0:
            next_q = self._all_pairs(buf.next_users[idx], self.target_network).max(dim=-1).values  # (H, n)
            target = target + cfg.gamma * (1.0 - tensor(buf.dones[idx])).unsqueeze(0) * next_q
        q = self.q_network(self._pair_features(x, e))  # (H, n)
        mask = m.T
        loss = torch.sum(mask * (q - target) ** 2) / torch.clamp(mask.sum(), min=1.0)
        self.optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        self.optimizer.step()
        self.n_gradient_steps += 1
        if self.n_gradient_steps % cfg.target_update_period == 0:
            self.target_network.load_state_dict(self.q_network.state_dict())
        return float(loss.item())
