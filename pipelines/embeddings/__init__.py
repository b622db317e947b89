"""Item text embeddings: a sentence encoder (mean pooling, L2 normalisation) on Ray actors."""
