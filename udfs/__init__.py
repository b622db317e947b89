"""WalkRank udfs."""
