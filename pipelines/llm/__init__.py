"""LLM work of the pipeline: model loading, batched inference, Ray execution, resumable shards."""
