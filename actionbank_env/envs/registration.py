"""Registration of the ``ActionBank/*`` Gymnasium ids (lazy ``"module:Class"`` entry points)."""

from __future__ import annotations

__all__ = ["ENV_IDS", "register_envs"]

#: Every env id this package registers.
ENV_IDS: tuple[str, ...] = ("ActionBank/Targeting-v0", "ActionBank/BankDesign-v0", "ActionBank/Retention-v0")


def register_envs() -> None:
    """Register ``ActionBank/Targeting-v0`` and ``ActionBank/Retention-v0`` (each with its native vector twin)
    and ``ActionBank/BankDesign-v0``.

    Idempotent: ids already in gymnasium's registry are left alone, so calling it twice (or importing the
    package in a worker process) neither warns nor re-registers. No ``max_episode_steps``: every env ends its
    episodes itself (a campaign has a fixed number of users and a design run a fixed number of iterations, with
    ``terminated=True``; a subscriber's lifetime is ``horizon`` weeks, default 26, with ``truncated=True``). A
    registered limit would cut ``gymnasium.make("ActionBank/Retention-v0", horizon=40)`` at 26 weeks without a
    word; ``max_episode_steps=N`` given to ``make`` / ``make_vec`` still shortens an episode.

    Example:
        >>> import gymnasium
        >>> register_envs(); register_envs()
        >>> gymnasium.spec("ActionBank/Targeting-v0").vector_entry_point
        'actionbank_env.envs.targeting_vector:TargetingVectorEnv'
    """
    import gymnasium

    if "ActionBank/Targeting-v0" not in gymnasium.registry:
        gymnasium.register(
            id="ActionBank/Targeting-v0",
            entry_point="actionbank_env.envs.targeting:TargetingEnv",
            vector_entry_point="actionbank_env.envs.targeting_vector:TargetingVectorEnv",
        )
    if "ActionBank/BankDesign-v0" not in gymnasium.registry:
        gymnasium.register(
            id="ActionBank/BankDesign-v0",
            entry_point="actionbank_env.envs.bank_design:BankDesignEnv",
        )
    if "ActionBank/Retention-v0" not in gymnasium.registry:
        # A subscriber's lifetime: ``horizon`` weekly steps, which the env truncates itself (no registered limit).
        gymnasium.register(
            id="ActionBank/Retention-v0",
            entry_point="actionbank_env.envs.retention:RetentionEnv",
            vector_entry_point="actionbank_env.envs.retention:RetentionVectorEnv",
        )
