"""The classic ``test_preference_model.py``: train reward models and score them against the ground truth.

A thin wrapper over ``actionbank compare-models``. Each model is fitted on a fresh random-targeting log of
``--users`` rows (or on the logs of a run folder given as the first argument) and scored on fresh users
against the true click probabilities: Pearson, Spearman, AUC, log loss, calibration error, fit seconds.
The original commands run as written::

    # Test all reward models
    python examples/test_preference_model.py --model_type compare_all

    # Test specific model
    python examples/test_preference_model.py --model_type neural --users 500

Model types: ``linear``, ``neural``, ``bayesian_neural``, ``lightgbm``, ``gaussian_process``,
``ft_transformer`` or ``compare_all``. The default embedder is the offline all-MiniLM-L6-v2; add
``--embedder hashing`` for a faster run. ``--json scores.json`` also writes the table as JSON;
``python examples/test_preference_model.py results/<run> --model_type lightgbm`` uses a run's logs.
"""

from __future__ import annotations

import sys

from actionbank_env.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare-models", *sys.argv[1:]]))
