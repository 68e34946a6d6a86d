"""Run every benchmark script in turn (``make bench``); ``--quick`` is passed on to those that take it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SCRIPTS = ["bench_core.py", "bench_windows.py", "bench_instrument.py", "bench_server.py"]


def main() -> int:
    quick = ["--quick"] if "--quick" in sys.argv else []
    failed = 0
    for script in SCRIPTS:
        print(f"== {script}", flush=True)
        args = quick if script != "bench_core.py" else []
        failed += subprocess.run([sys.executable, str(HERE / script), *args], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
