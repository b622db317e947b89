"""spark-submit jobs/neighbors.py --run-dir DIR [--config FILE] [--set key=value]...: the 'neighbors' stage."""

import sys

from jobs.stage_job import main

if __name__ == "__main__":
    sys.exit(main("neighbors"))
