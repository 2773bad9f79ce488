"""The segmenter service: Ward clustering of frame features into a strict binary tree of segments."""
