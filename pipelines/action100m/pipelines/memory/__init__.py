"""GPU memory: what a model weighs and what its activations take (`facts`), and the plan that
places the services on the GPUs of one machine (`plan`, `a100m plan`)."""
