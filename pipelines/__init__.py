"""WalkRank pipelines."""
