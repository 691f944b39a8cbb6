"""Start-up time of `vgbench --help` and `vgbench list` (one run; prints times and ratios, asserts nothing)."""

import statistics
import subprocess
import sys
import time

COMMANDS = [["--help"], ["list"], ["list", "reps", "--json"]]


def timed(argv, repeats=5):
    """Median wall time of running ``argv`` ``repeats`` times."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


if __name__ == "__main__":
    bare = timed([sys.executable, "-c", "pass"])
    print(f"bare interpreter start: {bare:.3f} s")
    for args in COMMANDS:
        t = timed([sys.executable, "-m", "vgbench", *args])
        print(f"vgbench {' '.join(args):<20} {t:.3f} s  ({t / bare:.1f}x bare interpreter; target < 1 s)")
