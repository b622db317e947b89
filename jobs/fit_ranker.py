"""python -m jobs.fit_ranker --run-dir DIR [--config FILE] [--set key=value]...: the 'fit_ranker' stage."""

import sys

from jobs.stage_job import main

if __name__ == "__main__":
    sys.exit(main("fit_ranker"))
