"""WalkRank jobs."""
