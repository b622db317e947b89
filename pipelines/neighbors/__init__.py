"""Collaborative neighbor sets: item-item co-occurrence cosine and user-user kNN."""
