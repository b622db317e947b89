"""ray job submit --working-dir . -- python -m jobs.llm_scores --run-dir DIR [--config FILE] [--set key=value]...: the 'llm_scores' stage."""

import sys

from jobs.stage_job import main

if __name__ == "__main__":
    sys.exit(main("llm_scores"))
