"""Two daily serve runs back to back: day 1 fits its ranker, day 2 ranks with it.

    python benchmarks/daily_bench.py --input $TOYS --out /tmp/daily [--set k=v ...]

From a `sequences` log (one line per user: `user item item ...`): day 1 is every line without
its last two items, day 2 every line without its last item, and `last.csv` each user's last
item as a new event (`user_id,item_id,ts`). A sequences log's times are the items' positions
(seconds after the epoch), so the new events take the second after day 2's last position:
`evaluate --against` scores only events after the run's last one.
Runs, one after the other, under `--out`:
- `day1`: a serve run with `rank.model=latest` (no model under --out yet: it fits);
- `day2`: a serve run with `rank.model=latest` (takes day 1's model, no fit pass);
- `day2-refit` (in its own folder, so no model is found): day 2 fitting its own ranker;
then scores both day-2 runs against the held-back last items (`walkrank evaluate --against`).
Prints each run's wall time, day 2 / day 1, and the two NDCG@10 (the RESULTS.md rows).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path


def split_days(log: Path, out: Path) -> dict[str, Path]:
    """day1.txt, day2.txt and last.csv from a sequences log (users with >= 3 items)."""
    paths = {"day1": out / "day1.txt", "day2": out / "day2.txt", "last": out / "last.csv"}
    held, longest = [], 0
    with log.open() as src, paths["day1"].open("w") as d1, paths["day2"].open("w") as d2:
        for line in src:
            user, *items = line.split()
            if len(items) < 3:
                continue
            d1.write(" ".join([user, *items[:-2]]) + "\n")
            d2.write(" ".join([user, *items[:-1]]) + "\n")
            held.append((user, items[-1]))
            longest = max(longest, len(items) - 1)
    with paths["last"].open("w") as last:
        last.write("user_id,item_id,ts\n")
        last.writelines(f"{u},{i},{longest + 1}\n" for u, i in held)
    return paths


def walkrank(*args: str) -> tuple[float, str]:
    """Run `walkrank ARGS`; (wall seconds, stdout). Fails loudly."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"walkrank {' '.join(args)} failed ({done.returncode})")
    return time.perf_counter() - t0, done.stdout


def ndcg10(run_dir: Path) -> float:
    """NDCG@10 of the rankings in the run's committed `served_metrics` (all users)."""
    import polars as pl

    from pipelines import tableio

    m = tableio.read_polars(run_dir, "served_metrics").filter(
        (pl.col("table") == "rankings")
        & (pl.col("metric") == "ndcg")
        & (pl.col("k") == 10)
        & (pl.col("segment") == "all")
    )
    return float(m["value"][0])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--input", required=True, type=Path, help="a sequences log (Amazon Toys)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--set", dest="sets", action="append", default=[])
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    days = split_days(a.input, a.out)
    sets = [x for s in ["eval.target=serve", *a.sets] for x in ("--set", s)]
    common = ["--format", "sequences", *sets]
    runs = a.out / "runs"
    seconds = {}
    for run_id, day, out, latest in (
        ("day1", "day1", runs, True),
        ("day2", "day2", runs, True),
        ("day2-refit", "day2", a.out / "refit", False),
    ):
        extra = ["--set", "rank.model=latest"] if latest else []
        args = ["run", "--input", str(days[day]), "--out", str(out), "--run-id", run_id]
        seconds[run_id], _ = walkrank(*args, *common, *extra)
        print(f"{run_id}: {seconds[run_id]:.0f} s", flush=True)
    scores = {}
    for run_dir in (runs / "day2", a.out / "refit" / "day2-refit"):
        walkrank("evaluate", str(run_dir), "--against", str(days["last"]), "--format", "csv")
        scores[run_dir.name] = ndcg10(run_dir)
    print(f"day2 / day1 wall: {seconds['day2'] / seconds['day1']:.2f}")
    print(f"NDCG@10 against the last items: day2 (latest) {scores['day2']:.4f}, "
          f"day2 refit {scores['day2-refit']:.4f}, "
          f"difference {scores['day2'] - scores['day2-refit']:+.4f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
