"""Watch a run in TensorBoard: run a tiny simulation, read its event file back, print the tags and values.

Every ``actionbank simulate`` run writes TensorBoard events under ``<run folder>/tb/`` (``--no-tensorboard``
turns them off): per-iteration scalars (``env/company_reward``, ``env/regret``, ``optimizer/bank_value``,
``optimizer/improvement_captured``, ``fidelity/*``, ...), a histogram of the per-action CTR and the bank as text.
This script runs a 3-iteration simulation, opens the events with TensorBoard's ``EventAccumulator`` (what the
TensorBoard UI reads) and prints them, then the command that shows them in a browser.

Run (about 15 s; hashing embedder for speed, ``--embedder minilm`` for the semantic default one)::

    python examples/tensorboard_walkthrough.py [--results_dir results] [--users 500] [--embedder minilm]
    tensorboard --logdir results
"""

from __future__ import annotations

import argparse

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from actionbank_env.config import SimulationConfig
from actionbank_env.experiment import run_simulation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results_dir", default="results")
    parser.add_argument("--embedder", default="hashing", choices=("hashing", "minilm"))
    parser.add_argument("--users", type=int, default=500, help="users per iteration")
    args = parser.parse_args()
    config = SimulationConfig.from_settings(
        {
            "iterations": 3,
            "users_per_iteration": args.users,
            "initial_actions": 10,
            "embedder": args.embedder,
            "designer.reward_model": "linear",
            "designer.action_pool_size": 200,
            "designer.action_bank_size": 5,
            "evaluation_users": 500,
            "results_dir": args.results_dir,
            "name": "tensorboard_walkthrough",
            "tensorboard": True,
            "report": False,
        }
    )
    result = run_simulation(config)
    events = EventAccumulator(str(result.path / "tb"), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    tags = events.Tags()
    print(f"run folder: {result.path}")
    print(f"event files under: {result.path / 'tb'}")
    print("scalars (one value per iteration):")
    for tag in sorted(tags["scalars"]):
        values = ", ".join(f"{e.step}:{e.value:.4f}" for e in events.Scalars(tag))
        print(f"  {tag:36s} {values}")
    print(f"histograms: {', '.join(sorted(tags['histograms'])) or '(none)'}")
    print(f"text: {', '.join(sorted(tags['tensors'])) or '(none)'}")
    print(f"\nsee them in a browser:  tensorboard --logdir {args.results_dir}")


if __name__ == "__main__":
    main()
