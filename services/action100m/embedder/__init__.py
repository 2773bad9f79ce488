"""The embedder service: per-frame V-JEPA 2 features of every 4th frame, windows batched on the GPU."""
