"""WalkRank: Spark and Ray batch recommendation pipelines."""

__version__ = "0.1.0"
