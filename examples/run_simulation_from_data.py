"""The classic ``run_simulation_from_data.py``: run an algorithm on a ``generate_simulation_data.py`` folder.

A thin wrapper over ``actionbank run-from-data``. The users of every iteration and the initial bank come from
``--data_dir`` (so does the world: embedder, ground truth, seed); the algorithm settings are yours, so several
algorithms can be compared on exactly the same data. The original commands run as written::

    # Baseline (same action bank across all stages)
    python examples/run_simulation_from_data.py \\
      --data_dir data/simulation_data/<unique_id> \\
      --company_strategy linucb \\
      --reward_model_type lightgbm \\
      --use_pca \\
      --pca_components 128 \\
      --action_bank_size 0

    # Test LightGBM approach
    python examples/run_simulation_from_data.py \\
      --data_dir data/simulation_data/<unique_id> \\
      --company_strategy linucb \\
      --reward_model_type lightgbm \\
      --use_pca \\
      --pca_components 128 \\
      --action_bank_size 5

Results go to ``<results_dir>/simulation_from_data_<UTC time>/`` (``results/`` under the current folder by
default) with ``run_from_data_config.json`` naming the data folder. Every flag of ``actionbank run-from-data
--help`` is accepted (``--action_pool_size 200`` makes a quick run). If the data was generated with an OpenAI
key, its world embeds with OpenAI and this run needs ``OPENAI_API_KEY`` (or ``--openai_api_key``) too.
"""

from __future__ import annotations

import sys

from actionbank_env.cli import main

if __name__ == "__main__":
    sys.exit(main(["run-from-data", *sys.argv[1:]]))
