"""The classic ``generate_simulation_data.py``: fixed users per iteration and the initial bank, written once.

A thin wrapper over ``actionbank generate-data``. The folder is then reused by
``run_simulation_from_data.py`` so that several algorithms are compared on exactly the same users and
initial bank. The original commands run as written::

    # Basic data generation
    python examples/generate_simulation_data.py \\
      --users 10000 \\
      --iterations 4 \\
      --initial_actions 30

    # Advanced data generation (OpenAI embeddings for the world)
    python examples/generate_simulation_data.py \\
      --users 1000 \\
      --iterations 5 \\
      --initial_actions 25 \\
      --openai_api_key your_api_key

The folder is ``data/simulation_data/data_seed<seed>_<settings hash>/`` under the current folder (or
``--out DIR``); the script prints it. It holds ``data_config.json``, ``initialization/action_bank.json`` and
``iteration_<t>/users.csv``. Other world flags: ``--seed``, ``--world_seed``, ``--embedder``,
``--ground_truth_type gmm --gmm_components 8 --density_scale_factor 1.0 --min_utility 0.005 --max_utility 0.5``.

``--openai_api_key KEY`` (or the ``OPENAI_API_KEY`` environment variable) switches the world's embedder to
OpenAI ``text-embedding-3-small``, unless ``--embedder`` is given explicitly: the initial bank and the
reference texts are embedded through the API (cached in ``~/.cache/actionbank_env``), and the data folder
records ``embedder: openai``, so ``run_simulation_from_data.py`` on it needs the key as well. The key is put
into this process's environment only and never written anywhere. With a placeholder key such as
``your_api_key`` the API refuses the calls and the script stops, after a few bounded retries, with exit
code 2 and one line saying why; to stay offline, leave the key out (the default MiniLM embedder) or pass
``--embedder minilm`` / ``--embedder hashing`` alongside it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from actionbank_env.cli import main

KEY_FLAGS = ("--openai_api_key", "--openai-api-key")


def export_openai_key(argv: Sequence[str]) -> None:
    """Put the value of ``--openai_api_key`` into ``OPENAI_API_KEY`` for this process (the flag stays in argv).

    ``actionbank generate-data`` switches the embedder to OpenAI when the flag is given but reads the key
    from the environment when it embeds, so the flag alone would fail with "needs an API key".
    """
    for i, arg in enumerate(argv):
        flag, eq, value = arg.partition("=")
        if flag in KEY_FLAGS:
            value = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
            if value:
                os.environ["OPENAI_API_KEY"] = value


if __name__ == "__main__":
    export_openai_key(sys.argv[1:])
    sys.exit(main(["generate-data", *sys.argv[1:]]))
