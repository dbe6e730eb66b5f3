"""Start-up: `render-local --version` against `python -c pass` (target <= 0.25 s)."""

import sys

from _common import CLI, median_of, report, timed


def main() -> int:
    baseline = median_of(7, lambda: timed([sys.executable, "-c", "pass"]))
    ours = median_of(7, lambda: timed(CLI + ["--version"]))
    ok = report("start-up (--version)", ours, baseline)
    print(f"absolute: {ours:.3f}s (target <= 0.25 s) {'OK' if ours <= 0.25 else 'MISSED'}")
    return 0 if ok and ours <= 0.25 else 1


if __name__ == "__main__":
    sys.exit(main())
