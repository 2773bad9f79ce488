"""What the presets are, for the help of the commands that take one (`run`, `plan`)."""

PRESETS_HELP = """presets (GPU needs from `a100m plan`):
  tiny        random tiny models built offline: every code path on a CPU, outputs are noise
  single-gpu  V-JEPA 2 ViT-g, Perception-LM-3B, Llama-3.2-11B-Vision, GPT-OSS-20B (caption batch 4):
              about 57 GiB in all; every service together on one 80 GB GPU (A100/H100); stage by
              stage on a 48 GB GPU; a 24 GB GPU cannot hold the captioner's two models
  paper       the paper's models, GPT-OSS-120B as the refiner: about 113 GiB in all; stage by stage on
              one 80 GB GPU, together on two or more (the refiner alone on one 80 GB GPU)
"""
