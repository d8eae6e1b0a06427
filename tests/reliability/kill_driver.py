"""Run (or resume) the small reliability simulation and SIGKILL this process at one exact point.

``python -m tests.reliability.kill_driver OUT SUFFIX WHEN``: the process kills itself with ``SIGKILL`` around the
first atomic write (``os.replace``) whose destination ends with ``SUFFIX``: ``tmp``, just before the rename (the
temp file is fully written and stays behind, as after any kill inside the write window), or ``after`` it. A real ``SIGKILL``: no ``finally``, no ``atexit``, no cleanup runs.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any


def _install(suffix: str, when: str) -> None:
    real = os.replace

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        hit = str(dst).endswith(suffix)
        if hit and when == "tmp":
            os.kill(os.getpid(), signal.SIGKILL)
        real(src, dst, *args, **kwargs)
        if hit and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace


def main(argv: list[str]) -> int:
    out, suffix, when = argv
    from actionbank_env.config import SimulationConfig
    from actionbank_env.experiment import run_simulation
    from tests.reliability.conftest import SMALL_RUN

    _install(suffix, when)
    run_simulation(SimulationConfig.from_settings(SMALL_RUN), out=out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
