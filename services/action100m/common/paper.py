"""The paper's parameters (docs/method.md says where each comes from), defined once.

Every service takes its stage's defaults from here, and so do its `Info` answer (which the
pipeline folds into the artifact fingerprints), the validator and the CLI; the chart and the
README name the same numbers and a test holds them to these. A request overrides a value by
setting the stage option of the same name (proto3 `optional`: unset means this default, so 0
stays a value a user can ask for).
"""

from __future__ import annotations

# Stage 1: embedding and segmentation
FRAME_STRIDE = 4  # keep every 4th decoded frame
WINDOW_FRAMES = 64  # sampled frames per V-JEPA 2 window (the model's clip length)
WINDOW_STRIDE = 8  # sampled frames between window starts
MIN_LEAF_SECONDS = 0.5  # a node keeps its two children only if both last at least this long

# Stage 2: the Tree-of-Captions
VIDEO_FRAMES = 32  # Perception-LM frames per node
VIDEO_FRAME_SIZE = 320  # their square side in pixels
CAPTION_MAX_NEW_TOKENS = 1024  # plm_caption
ACTION_MAX_NEW_TOKENS = 64  # plm_action (the paper does not say; the release has answers up to ~37 tokens)
IMAGE_MAX_NEW_TOKENS = 1024  # llama3_caption

# Stage 3: LLM aggregation with Self-Refine
ROUNDS = 3  # a draft, then two "verify and revise" turns
MIN_ANNOTATED_SECONDS = 4.0  # non-leaf nodes at least this long get a gpt annotation
MAX_SUBTREE_DEPTH = 6  # deepest level of the segment's own subtree in the prompt
GLOBAL_TREE_DEPTH = 2  # depth of the whole-video tree in the prompt
