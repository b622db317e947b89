"""ray job submit --working-dir . -- python -m jobs.summary_embeddings --run-dir DIR [--config FILE] [--set key=value]...: the 'summary_embeddings' stage."""

import sys

from jobs.stage_job import main

if __name__ == "__main__":
    sys.exit(main("summary_embeddings"))
