"""spark-submit jobs/evaluate.py --run-dir DIR [--config FILE] [--set key=value]...: the 'evaluate' stage.

With `--against EVENTS [--format F]` it runs `walkrank evaluate DIR --against EVENTS` instead:
a serve run's rankings scored against the events that arrived after it (the daily DAG's last
task: the previous day's run against the day's new events); a run without committed rankings
is skipped with a message (exit 0).
"""

import sys

from jobs.stage_job import main

if __name__ == "__main__":
    sys.exit(main("evaluate"))
