"""A training set from datasets, as Action100M's Sec. 5.4 makes one: exact dedup, semantic clusters,
balanced resampling (`a100m sample`).

    segments.py  the segments of datasets, one text field each, filtered
    dedup.py     texts identical once normalised, grouped
    embed.py     the unique texts' embeddings (WordLlama offline, or sentence-transformers), cached
    cluster.py   k-means (faiss) and each cluster's most central text
    resample.py  what is drawn: none, dedup, semantic
    sample.py    the two passes, the parquet per k
    report.py    report.json, the card section, the cluster sizes' picture
"""

from .sample import SampleSettings, sample
from .segments import SegmentFilter

__all__ = ["SampleSettings", "SegmentFilter", "sample"]
