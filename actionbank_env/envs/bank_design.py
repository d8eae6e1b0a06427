"""``ActionBank/BankDesign-v0``: the outer loop. One step deploys a bank for one campaign iteration.

``reset(seed=...)`` deploys the world's initial bank as iteration ``first_iteration`` (0 by default; ``actionbank
simulate`` counts from 1, like its ``iteration_<t>`` folders), so the designer has data for its first proposal.
Each ``step(texts)`` deploys the next bank with the company's targeting agent on fresh users and returns the mean
ground-truth click probability of what was actually served. The episode ends with ``terminated=True`` after
``n_iterations`` steps (a design run has a fixed number of iterations; ``truncated`` is always ``False``); with
``n_iterations=0`` the episode is the initial deployment alone.

The action is the next bank as a sequence of texts, and every element of the action space is valid:

- Texts are cleaned (:func:`~actionbank_env.core.actions.clean_text`); texts empty after cleaning are
  skipped; duplicates (same normalised text) collapse to their first occurrence.
- If nothing remains (an empty sequence, or only blank texts) the current bank is kept.
- Past ``max_bank_size`` distinct texts the bank is truncated to the first ``max_bank_size``.
- Texts already seen in the episode keep their action ids (the company agent keeps their statistics
  through ``agent.set_bank``); new texts are embedded with the world's embedder in one batch.
- Texts need not use the space's ``charset`` (it only shapes ``action_space.sample()``); a text longer
  than ``MAX_TEXT_LENGTH`` characters, a non-string item or a non-sequence raises
  ``gymnasium.error.InvalidAction`` (a ``ValueError`` is never half-applied: the env stays usable).

Replay (``data_dir=``): ``data_dir/initialization/action_bank.json`` (``ActionBank.to_dict``) is the
initial bank, and ``data_dir/iteration_<t>/users.csv`` (``UserBatch.to_columns`` written with pandas,
columns ``user_id``, ``archetype`` and the feature names) are the users of the ``t``-th campaign of the episode,
``t = 1 .. n_iterations + 1`` (the layout ``actionbank generate-data`` writes). Every episode replays the same
users; the seed then drives the clicks and the agent.
"""

from __future__ import annotations

import json
import os
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import InvalidAction, ResetNeeded
from numpy.typing import NDArray

from actionbank_env._validation import check_array, check_int, check_str
from actionbank_env.core.actions import MAX_TEXT_LENGTH, ActionBank, ActionCatalog, clean_text, normalize_text
from actionbank_env.core.campaign import CampaignConfig, CampaignResult, run_campaign
from actionbank_env.core.observations import ObservationLog
from actionbank_env.core.projection import padded_bank
from actionbank_env.core.retention import RetentionCampaignConfig, run_retention_campaign
from actionbank_env.core.users import UserBatch
from actionbank_env.core.world import World
from actionbank_env.envs._common import (
    bank_projection,
    checked_config,
    checked_render_mode,
    get_world,
    split_world_kwargs,
)
from actionbank_env.errors import ConfigError, ConfigTypeError
from actionbank_env.registry import DEFAULT_AGENT, check_agent_spec, make_agent
from actionbank_env.results import INITIAL_BANK_FILE, USERS_FILE, iteration_file

__all__ = ["BankDesignConfig", "BankDesignEnv", "TEXT_CHARSET", "MAX_BANK_SLOTS", "load_replay_data"]

#: Largest ``max_bank_size`` (observation slots) an env accepts.
MAX_BANK_SLOTS = 10_000
#: Characters ``action_space.sample()`` draws texts from (letters, digits, space, common punctuation).
TEXT_CHARSET = string.ascii_letters + string.digits + " .,!?%'&:-$"


@dataclass(frozen=True, slots=True, kw_only=True)
class BankDesignConfig:
    """Settings of ``ActionBank/BankDesign-v0`` (the world's settings are :class:`WorldConfig` fields, the
    campaign's :class:`~actionbank_env.core.campaign.CampaignConfig` fields; the env takes both as keywords too).

    Attributes:
        campaign: How each campaign is run (users per iteration, the agent's batch size).
        n_iterations: Steps per episode (designed banks), after the initial bank's campaign; 0: that campaign only.
        max_bank_size: Largest deployed bank; also the number of slots of the observation.
        bank_obs_dim: Features per action in the observation (fixed projection of the embeddings).
        company_strategy: The company's targeting agent: a registry name, ``"module:Class"`` or a class.
        company_params: Keyword arguments of the agent (or ``config=`` its config object).
        data_dir: Replay users and the initial bank from this folder (see the module docstring).
        first_iteration: Number of the initial bank's campaign (the observation's and the log's ``iteration``).
        origin: Recorded as :attr:`~actionbank_env.core.actions.Action.origin` of the texts a step adds.
        retention: ``None`` (default): each user of a campaign gets one email. A
            :class:`~actionbank_env.core.retention.RetentionCampaignConfig`: each user is a subscriber mailed weekly
            by the company's agent over a lifetime with Retention-v0's fatigue, novelty and unsubscribes
            (:func:`~actionbank_env.core.retention.run_retention_campaign`), the log has one row per email, and the
            reward and ``deployed_value`` are the expected clicks per subscriber over its lifetime.
    """

    campaign: CampaignConfig = field(default_factory=CampaignConfig)
    n_iterations: int = 3
    max_bank_size: int = 64
    bank_obs_dim: int = 16
    company_strategy: Any = DEFAULT_AGENT
    company_params: Mapping[str, Any] = field(default_factory=dict)
    data_dir: str | os.PathLike[str] | None = None
    first_iteration: int = 0
    origin: str = "designer"
    retention: RetentionCampaignConfig | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.campaign, CampaignConfig):
            raise ConfigTypeError(
                f"BankDesignConfig.campaign must be a CampaignConfig, got {type(self.campaign).__name__}."
            )
        check_int("BankDesignConfig.n_iterations", self.n_iterations, low=0)
        check_int("BankDesignConfig.max_bank_size", self.max_bank_size, low=1, high=MAX_BANK_SLOTS)
        check_int("BankDesignConfig.bank_obs_dim", self.bank_obs_dim, low=1, high=1024)
        check_int("BankDesignConfig.first_iteration", self.first_iteration, low=0)
        check_str("BankDesignConfig.origin", self.origin)
        if not isinstance(self.company_params, Mapping):
            raise ConfigTypeError(
                f"BankDesignConfig.company_params must be a mapping, got {type(self.company_params).__name__}."
            )
        if self.retention is not None and not isinstance(self.retention, RetentionCampaignConfig):
            raise ConfigTypeError(
                "BankDesignConfig.retention must be a RetentionCampaignConfig or None, "
                f"got {type(self.retention).__name__}."
            )
        if self.data_dir is not None and not isinstance(self.data_dir, str | os.PathLike):
            raise ConfigTypeError(
                f"BankDesignConfig.data_dir must be a path or None, got {type(self.data_dir).__name__}."
            )


_DESIGN_FIELDS = tuple(BankDesignConfig.__dataclass_fields__)
_CAMPAIGN_FIELDS = tuple(CampaignConfig.__dataclass_fields__)


def _inside(root: Path, relative: str, what: str) -> Path:
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise ConfigError(f"data_dir {what} {relative!r} resolves to {path}, outside data_dir={root}.")
    if not path.is_file():
        raise ConfigError(
            f"data_dir is missing {relative} (expected {path}); the layout is data_dir/initialization/"
            "action_bank.json and data_dir/iteration_<t>/users.csv for t = 1 .. n_iterations + 1."
        )
    return path


def load_replay_data(
    data_dir: str | os.PathLike[str], world: World, n_iterations: int
) -> tuple[ActionBank, list[UserBatch]]:
    """Read the initial bank and the users of the episode's ``n_iterations + 1`` campaigns from ``data_dir``.

    The users of the ``t``-th campaign (``t`` from 1) are in ``iteration_<t>/users.csv``.

    Raises:
        ConfigError: If the folder or a file is missing, a path escapes ``data_dir`` (e.g. a symlink), the
            bank file is not valid JSON or not an ``ActionBank.to_dict`` object, or the bank's embeddings do
            not match the world's embedder.
    """
    import pandas as pd

    root = Path(data_dir).resolve()
    if not root.is_dir():
        raise ConfigError(f"BankDesignConfig.data_dir must be an existing folder, got {str(data_dir)!r}.")
    bank_path = _inside(root, INITIAL_BANK_FILE, "file")
    try:
        bank = ActionBank.from_dict(json.loads(bank_path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{bank_path} is not valid JSON: {exc}.") from None
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ConfigError(
            f"{bank_path} is not a valid action bank (ActionBank.to_dict: an object with a list of 'actions', "
            f"each with id, text and embedding): {type(exc).__name__}: {exc}."
        ) from None
    if len(bank) == 0:
        raise ConfigError(f"{bank_path} must hold at least one action, got an empty bank.")
    if bank.d_embed != world.d_embed:
        raise ConfigError(
            f"{bank_path} has embeddings of dimension {bank.d_embed}; the world's embedder gives {world.d_embed}."
        )
    users = []
    for t in range(n_iterations + 1):
        frame = pd.read_csv(_inside(root, iteration_file(t + 1, USERS_FILE), "file"))
        columns = {c: frame[c].to_numpy() for c in frame.columns}
        users.append(UserBatch.from_columns(columns, archetype_names=world.population.archetype_names))
    return bank, users


class BankDesignEnv(gym.Env[dict[str, NDArray[np.float32]], Any]):
    """Outer-loop env: the action is the next bank (texts), the reward its deployed engagement.

    See the module docstring for what every action means. Observation (fixed-size ``Dict``, float32):
    ``"iteration"`` (1,), ``"bank"`` (``max_bank_size``, ``bank_obs_dim``) in [-1, 1], ``"bank_mask"``
    (``max_bank_size``,), and ``"impressions"`` / ``"clicks"`` (``max_bank_size``,): what the company
    has logged for each action of the current bank over the episode so far.

    ``info`` after ``reset`` and each ``step``: ``"log"`` (this iteration's :class:`ObservationLog`, no
    ground truth), ``"history"`` (every log of the episode), ``"bank"`` (:class:`ActionBank`),
    ``"bank_ids"``, ``"bank_texts"``, ``"iteration"``, ``"company_reward"`` (realised CTR),
    ``"deployed_value"``, ``"bank_value"`` (perfect targeting), ``"random_targeting_value"``,
    ``"regret"``, ``"summary"`` (:meth:`CampaignResult.summary`), ``"users"`` (the campaign's
    :class:`~actionbank_env.core.users.UserBatch`) and ``"catalog"`` (a copy of the episode's
    :class:`~actionbank_env.core.actions.ActionCatalog`: ``info["catalog"].bank(texts, world.embedder)`` is the bank a
    ``step(texts)`` would deploy, with the same ids, without deploying it); after a step also ``"kept_bank"``,
    ``"skipped_texts"`` (blank) and ``"dropped_texts"`` (past ``max_bank_size``).

    Args:
        config: Env settings (or pass :class:`BankDesignConfig` fields as keywords).
        world: A prebuilt world; otherwise the cached world of the given ``WorldConfig`` keywords.
        render_mode: ``None`` or ``"ansi"``; other modes warn and disable rendering.
        **kwargs: :class:`BankDesignConfig`, :class:`~actionbank_env.core.campaign.CampaignConfig` and
            :class:`WorldConfig` fields.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(
        self,
        config: BankDesignConfig | None = None,
        *,
        world: World | None = None,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        own, world_kwargs = split_world_kwargs(type(self).__name__, kwargs, _DESIGN_FIELDS + _CAMPAIGN_FIELDS)
        if config is not None and own:
            raise ConfigError(f"BankDesignEnv got both config= and the config fields {sorted(own)}; pass one.")
        campaign = {k: own.pop(k) for k in _CAMPAIGN_FIELDS if k in own}
        if campaign:
            if "campaign" in own:
                raise ConfigError(
                    f"BankDesignEnv got both campaign= and the campaign fields {sorted(campaign)}; pass one."
                )
            own["campaign"] = CampaignConfig(**campaign)
        self.config = checked_config(type(self).__name__, config, BankDesignConfig, own)
        self.render_mode = checked_render_mode(type(self).__name__, render_mode, ("ansi",))
        self.world = get_world(type(self).__name__, world, world_kwargs)
        cfg = self.config
        check_agent_spec(cfg.company_strategy, dict(cfg.company_params), self.world)  # at make(), not at reset()
        self._replay: list[UserBatch] | None = None
        #: The designer's (predict, users) for the next deploy's new actions (set_action_prior), used once.
        self._action_prior: tuple[Callable[..., Any], NDArray[np.float64]] | None = None
        if cfg.data_dir is not None:
            self._initial_bank, self._replay = load_replay_data(cfg.data_dir, self.world, cfg.n_iterations)
            total_users = sum(len(u) for u in self._replay)
        else:
            self._initial_bank = self.world.initial_bank
            total_users = cfg.campaign.users_per_iteration * (cfg.n_iterations + 1)
        if len(self._initial_bank) > cfg.max_bank_size:
            raise ConfigError(
                f"BankDesignConfig.max_bank_size={cfg.max_bank_size} must be >= the initial bank size "
                f"{len(self._initial_bank)}."
            )
        if cfg.retention is not None:
            # Resolved (and checked against the world's features) once; one log row per email.
            self._retention = cfg.retention.dynamics.resolve(self.world.feature_names, self.world.config.base_ctr)
            total_users *= cfg.retention.horizon
        self._projection = bank_projection(self.world, cfg.bank_obs_dim)
        k_max, bound = cfg.max_bank_size, float(total_users)
        self.observation_space = spaces.Dict(
            {
                "iteration": spaces.Box(
                    float(cfg.first_iteration),
                    float(cfg.first_iteration + cfg.n_iterations),
                    shape=(1,),
                    dtype=np.float32,
                ),
                "bank": spaces.Box(-1.0, 1.0, shape=(k_max, cfg.bank_obs_dim), dtype=np.float32),
                "bank_mask": spaces.Box(0.0, 1.0, shape=(k_max,), dtype=np.float32),
                "impressions": spaces.Box(0.0, bound, shape=(k_max,), dtype=np.float32),
                "clicks": spaces.Box(0.0, bound, shape=(k_max,), dtype=np.float32),
            }
        )
        self.action_space = spaces.Sequence(spaces.Text(max_length=MAX_TEXT_LENGTH, min_length=0, charset=TEXT_CHARSET))
        self._iteration = -1  # -1: reset needed
        self._done = True
        self.bank = self._initial_bank
        self._history: list[ObservationLog] = []
        self._results: list[CampaignResult] = []

    # ------------------------------------------------------------------ helpers

    def _initial_catalog(self) -> ActionCatalog:
        if self._replay is None:
            return self.world.new_catalog()
        catalog = ActionCatalog()
        for action in self._initial_bank:
            catalog.add(action)
        return catalog

    def _users(self, iteration: int) -> UserBatch:
        if self._replay is not None:
            return self._replay[iteration - self.config.first_iteration]
        users = self.world.sample_users(
            self.config.campaign.users_per_iteration, rng=self._user_rng, first_id=self._next_user_id
        )
        self._next_user_id += len(users)
        return users

    def set_action_prior(
        self,
        predict: Callable[[NDArray[np.float64], NDArray[np.float32]], NDArray[np.float64]],
        users: NDArray[np.float64],
    ) -> None:
        """Hand the bank designer's predictions to the company agent for the next bank's new actions.

        At the next :meth:`step`, after the agent has switched to the new bank, an agent that wants a prior
        (``action_prior_weight > 0``, e.g. LinUCB with ``new_action_prior``) gets
        ``prime_new_actions(indices, users, predict(users, new_embeddings))`` for the actions it has never
        served. Other agents ignore it. Used once, then dropped.

        Args:
            predict: The designer's reward model's ``predict(users, embeddings) -> click probabilities``.
            users: Logged users to predict for, shape (n, d_user) (the last campaign's users).
        """
        if not callable(predict):
            raise TypeError(f"set_action_prior: predict must be callable, got {type(predict).__name__}.")
        self._action_prior = (predict, check_array("users", users, ndim=2, shape=(None, self.world.d_user)))

    def _deploy(self, bank: ActionBank) -> CampaignResult:
        agent = self._agent
        agent.set_bank(bank)
        prior, self._action_prior = self._action_prior, None
        if prior is not None and float(getattr(agent, "action_prior_weight", 0.0)) > 0.0:
            new = np.asarray(agent.new_action_indices, dtype=np.int64)
            if new.size:
                predict, users = prior
                agent.prime_new_actions(new, users, np.asarray(predict(users, bank.embeddings[new]), dtype=np.float64))
        users = self._users(self._iteration)
        result: CampaignResult
        if self.config.retention is None:
            result = run_campaign(
                self.world.ground_truth,
                bank,
                self._agent,
                users,
                rng=self._click_rng,
                batch_size=self.config.campaign.campaign_batch_size,
                iteration=self._iteration,
            )
        else:
            sensitivity_index, relevance_ctr = self._retention
            result = run_retention_campaign(
                self.world.ground_truth,
                bank,
                self._agent,
                users,
                config=self.config.retention,
                sensitivity_index=sensitivity_index,
                relevance_ctr=relevance_ctr,
                rng=self._click_rng,
                batch_size=self.config.campaign.campaign_batch_size,
                iteration=self._iteration,
            )
        cols = result.log.columns
        shows = np.bincount(cols["action_index"], minlength=len(bank))
        clicks = np.bincount(cols["action_index"], weights=cols["click"], minlength=len(bank))
        for action_id, n_shown, n_clicked in zip(bank.ids, shows.tolist(), clicks.tolist(), strict=True):
            old = self._counts.get(action_id, (0.0, 0.0))
            self._counts[action_id] = (old[0] + n_shown, old[1] + n_clicked)
        self.bank = bank
        self._history.append(result.log)
        self._results.append(result)
        self._users_now = users
        return result

    def _observation(self) -> dict[str, NDArray[np.float32]]:
        k_max = self.config.max_bank_size
        features, mask = padded_bank(self._projection, self.bank, k_max)
        impressions = np.zeros(k_max, dtype=np.float32)
        clicks = np.zeros(k_max, dtype=np.float32)
        counts = np.array([self._counts.get(i, (0.0, 0.0)) for i in self.bank.ids], dtype=np.float32).reshape(-1, 2)
        impressions[: len(self.bank)] = counts[:, 0]
        clicks[: len(self.bank)] = counts[:, 1]
        return {
            "iteration": np.array([self._iteration], dtype=np.float32),
            "bank": features.copy(),
            "bank_mask": mask.copy(),
            "impressions": impressions,
            "clicks": clicks,
        }

    def _info(self, result: CampaignResult) -> dict[str, Any]:
        summary = result.summary()
        return {
            "iteration": self._iteration,
            "log": result.log,
            "history": list(self._history),
            "bank": self.bank,
            "bank_ids": self.bank.ids,
            "bank_texts": self.bank.texts,
            "company_reward": summary["company_reward"],
            "deployed_value": result.deployed_value,
            "bank_value": result.bank_value,
            "random_targeting_value": summary["random_targeting_value"],
            "regret": result.regret,
            "summary": summary,
            "users": self._users_now,
            "catalog": self._catalog.copy(),
        }

    def parse_action(self, action: Any) -> tuple[list[str], int, int]:
        """The texts of the next bank from ``action``, without side effects.

        Returns:
            ``(texts, skipped, dropped)``: the cleaned, distinct texts (empty: keep the bank), how many
            were blank after cleaning, and how many were dropped past ``max_bank_size``.

        Raises:
            InvalidAction: If ``action`` is not a sequence of strings or a text is too long.
        """
        if isinstance(action, ActionBank):
            action = action.texts
        if isinstance(action, str | bytes) or not isinstance(action, Sequence | np.ndarray):
            raise InvalidAction(
                f"action must be a sequence of texts (a tuple or list of str), got {type(action).__name__}: "
                f"{str(action)[:60]!r}."
            )
        if isinstance(action, np.ndarray) and action.ndim != 1:
            raise InvalidAction(f"action must be a 1-D sequence of texts, got an array of shape {action.shape}.")
        texts: list[str] = []
        keys: set[str] = set()
        skipped = dropped = 0
        for i, text in enumerate(action):
            if not isinstance(text, str):
                raise InvalidAction(f"action[{i}] must be a str, got {type(text).__name__}: {str(text)[:60]!r}.")
            if len(text) > MAX_TEXT_LENGTH:
                raise InvalidAction(f"action[{i}] must be at most {MAX_TEXT_LENGTH} characters, got {len(text)}.")
            cleaned = clean_text(text)[:MAX_TEXT_LENGTH]  # NFKC may lengthen a text; keep the limit
            if not cleaned:
                skipped += 1
                continue
            key = normalize_text(cleaned)
            if key in keys:
                continue
            if len(texts) == self.config.max_bank_size:
                dropped += 1
                continue
            keys.add(key)
            texts.append(cleaned)
        return texts, skipped, dropped

    # ------------------------------------------------------------------ gymnasium API

    def reset(
        self, *, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, NDArray[np.float32]], dict[str, Any]]:
        """Start a design run: build the company agent, deploy the initial bank as iteration 0.

        The episode's seed is split into independent streams for the agent, the users and the clicks,
        so the users of iteration ``t`` do not depend on which banks were deployed before.
        """
        super().reset(seed=seed)
        seq = np.random.SeedSequence(int(self.np_random.integers(2**63)))
        agent_rng, self._user_rng, self._click_rng = (np.random.default_rng(s) for s in seq.spawn(3))
        cfg = self.config
        self._agent = make_agent(cfg.company_strategy, self.world, rng=agent_rng, **dict(cfg.company_params))
        self._catalog = self._initial_catalog()
        self._counts: dict[str, tuple[float, float]] = {}
        self._next_user_id = 0
        self._action_prior = None
        self._history = []
        self._results = []
        self._iteration = cfg.first_iteration
        result = self._deploy(self._initial_bank)
        self._done = cfg.n_iterations == 0
        return self._observation(), self._info(result)

    def step(self, action: Any) -> tuple[dict[str, NDArray[np.float32]], float, bool, bool, dict[str, Any]]:
        """Deploy the bank given by ``action`` for one campaign iteration (see the module docstring).

        Raises:
            ResetNeeded: Before ``reset`` or after the last iteration.
            InvalidAction: For an action outside the space (the env stays usable).
        """
        if self._done:
            raise ResetNeeded("Call reset() before step() (the episode has not started or has ended).")
        texts, skipped, dropped = self.parse_action(action)
        iteration = self._iteration + 1
        if texts:
            bank = self._catalog.bank(texts, self.world.embedder, origin=self.config.origin, iteration=iteration)
        else:
            bank = self.bank
        self._iteration = iteration
        result = self._deploy(bank)
        terminated = iteration == self.config.first_iteration + self.config.n_iterations
        self._done = terminated
        info = self._info(result)
        info.update(kept_bank=not texts, skipped_texts=skipped, dropped_texts=dropped)
        return self._observation(), result.deployed_value, terminated, False, info

    def render(self) -> str | None:
        """``"ansi"``: the iteration, the bank size and the last campaign's numbers."""
        if self.render_mode != "ansi":
            return None
        if not self._results:
            return "BankDesign-v0: not reset yet.\n"
        s = self._results[-1].summary()
        return (
            f"iteration {self._iteration}: bank of {len(self.bank)} actions, ctr={s['company_reward']:.4f}, "
            f"deployed={s['deployed_value']:.4f}, bank_value={s['bank_value']:.4f}, regret={s['regret']:.4f}\n"
        )
