"""The classic ``run_full_simulation.py``: the full simulation, a thin wrapper over ``actionbank simulate``.

The original commands run as written (from the repository root or any other folder)::

    # Simple test run
    python examples/run_full_simulation.py --iterations 3 --users 100 --initial_actions 10

    # Run with same action bank for all stages (the baseline: no new actions)
    python examples/run_full_simulation.py \\
        --iterations 4 \\
        --users 10000 \\
        --initial_actions 30 \\
        --company_strategy linucb \\
        --reward_model_type lightgbm \\
        --action_bank_size 0

    # Production configuration
    python examples/run_full_simulation.py \\
        --iterations 4 \\
        --users 10000 \\
        --initial_actions 30 \\
        --action_bank_size 10 \\
        --company_strategy linucb \\
        --reward_model_type bayesian_neural \\
        --bnn_mc_samples 30 \\
        --use_pca \\
        --pca_components 128

Every flag of ``actionbank simulate --help`` is accepted, in snake_case or kebab-case: ``--results_dir``,
``--seed``, ``--ground_truth_type gmm --gmm_components 8 --density_scale_factor 1.0 --min_utility 0.005
--max_utility 0.5``, ``--alpha``, ``--diversity_weight``, ``--action_pool_size``, ``--use_uncertainty
--uncertainty_weight 0.1``, ``--openai_api_key``, ... Results go to ``<results_dir>/simulation_<UTC time>/``
(``results/`` under the current folder by default); the script prints the summary table and the run folder.

The default embedder is the offline all-MiniLM-L6-v2; add ``--embedder hashing --action_pool_size 200`` for a
run of a few seconds. Defaults differ from the original in two places: ``--iterations`` 3 (was 5) and
``--action_bank_size`` 10 (was 20).
"""

from __future__ import annotations

import sys

from actionbank_env.cli import main

if __name__ == "__main__":
    sys.exit(main(["simulate", *sys.argv[1:]]))
