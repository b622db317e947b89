"""ray job submit --working-dir . -- python -m jobs.summaries --run-dir DIR [--config FILE] [--set key=value]...: the 'summaries' stage."""

import sys

from jobs.stage_job import main

if __name__ == "__main__":
    sys.exit(main("summaries"))
