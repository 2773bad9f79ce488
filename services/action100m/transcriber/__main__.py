"""`python -m action100m.transcriber`: serve the transcriber (settings from A100M_* variables)."""

import sys

from action100m.common.grpc_server import serve_main

from .service import serve_from_env

if __name__ == "__main__":
    sys.exit(serve_main("transcriber", serve_from_env))
