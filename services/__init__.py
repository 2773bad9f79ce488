"""action100m: turn a collection of videos into an Action100M-style dataset.

The import package is the folder services/: action100m.common (shared by the four services),
action100m.embedder, action100m.segmenter, action100m.captioner, action100m.refiner, and
action100m.v1 (gRPC stubs generated from protos/ at install time).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("action100m")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
