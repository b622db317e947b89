"""One module per stage: read tables, call the domain, write tables (`STAGE` in each).

The list of stages is pipelines/stage_registry.py."""
