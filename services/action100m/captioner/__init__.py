"""The captioner service: the Tree-of-Captions (Perception-LM on every node, Llama-3.2-Vision on leaves)."""
