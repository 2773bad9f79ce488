"""Generates the Python gRPC stubs of protos/action100m/v1 into services/action100m/v1 (`make protos`).

The stubs are committed, so building or installing the package runs no code generation. Messages
come from protoc (grpcio-tools), typed stubs (.pyi for messages and services) from mypy-protobuf.
`--check` regenerates into a temporary folder and fails if the committed stubs differ: CI runs it
so the stubs always match the .proto files.

    python protos/generate.py            # write services/action100m/v1/
    python protos/generate.py --check    # exit 1 if they are out of date
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = ROOT / "protos"
PROTO_DIR = PROTO_ROOT / "action100m" / "v1"
STUB_DIR = ROOT / "services" / "action100m" / "v1"
INIT = '"""gRPC stubs generated from protos/action100m/v1 by `make protos`; do not edit."""\n'


def generate(into: Path) -> None:
    """Writes the stubs of every .proto under PROTO_DIR into `into` (created afresh)."""
    import grpc_tools
    from grpc_tools import protoc

    protos = sorted(str(p) for p in PROTO_DIR.glob("*.proto"))
    if not protos:
        raise SystemExit(f"no .proto files under {PROTO_DIR}")
    plugin_dir = Path(sys.executable).parent
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--plugin=protoc-gen-mypy={plugin_dir / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={plugin_dir / 'protoc-gen-mypy_grpc'}",
            f"--python_out={tmp}",
            f"--grpc_python_out={tmp}",
            f"--mypy_out={tmp}",
            f"--mypy_grpc_out={tmp}",
            "--mypy_opt=quiet",
            "--mypy_grpc_opt=quiet",
            *protos,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed on " + " ".join(protos))
        if into.exists():
            shutil.rmtree(into)
        shutil.copytree(Path(tmp) / "action100m" / "v1", into)
    (into / "__init__.py").write_text(INIT)


def differences(expected: Path, actual: Path) -> list[str]:
    """Files that are missing, extra or different in `actual` compared with `expected`."""
    names = {p.name for p in expected.iterdir()} | {p.name for p in actual.iterdir() if p.is_file()}
    problems = []
    for name in sorted(names - {"__pycache__"}):
        want, have = expected / name, actual / name
        if not have.exists():
            problems.append(f"missing {have}")
        elif not want.exists():
            problems.append(f"not generated from a .proto: {have}")
        elif not filecmp.cmp(want, have, shallow=False):
            problems.append(f"out of date: {have}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed stubs differ from the protos")
    args = parser.parse_args(argv)
    if not args.check:
        generate(STUB_DIR)
        print(f"wrote {STUB_DIR.relative_to(ROOT)}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "v1"
        generate(fresh)
        problems = differences(fresh, STUB_DIR) if STUB_DIR.exists() else [f"missing {STUB_DIR}"]
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("the gRPC stubs do not match protos/: run `make protos` and commit the result", file=sys.stderr)
        return 1
    print("gRPC stubs match protos/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
