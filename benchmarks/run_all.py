"""Run every offgen benchmark (``benchmarks/*_bench.py``) in turn with its default sizes.

Usage: ``make bench`` or ``python benchmarks/run_all.py [--only NAME ...] [-- extra args]``.
Each benchmark measures its baseline in the same run and prints ratios; results are summarised in
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--only", nargs="*", default=None, help="benchmark names (e.g. sampling)")
    args, extra = parser.parse_known_args()
    here = Path(__file__).resolve().parent
    scripts = sorted(here.glob("*_bench.py"))
    if args.only:
        scripts = [s for s in scripts if any(s.stem.startswith(name) for name in args.only)]
    failed = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(script), *extra])
        print(f"=== {script.name}: exit {code} in {time.perf_counter() - start:.0f} s", flush=True)
        if code:
            failed.append(script.name)
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
