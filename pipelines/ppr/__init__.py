"""Monte-Carlo personalized PageRank on Spark: broadcast and distributed strategies."""
