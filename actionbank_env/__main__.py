"""``python -m actionbank_env`` runs the ``actionbank`` command."""

import sys

from actionbank_env.cli import main

sys.exit(main())
