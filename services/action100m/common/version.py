"""The installed package's version (action100m is a namespace package: it has no __init__ to hold it)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("action100m")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.0.0"
