"""spark-submit jobs/candidates.py --run-dir DIR [--config FILE] [--set key=value]...: the 'candidates' stage."""

import sys

from jobs.stage_job import main

if __name__ == "__main__":
    sys.exit(main("candidates"))
