"""python -m jobs.rank --run-dir DIR [--config FILE] [--set key=value]...: the 'rank' stage."""

import sys

from jobs.stage_job import main

if __name__ == "__main__":
    sys.exit(main("rank"))
