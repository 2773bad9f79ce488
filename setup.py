"""Build hook: generate the gRPC stubs from protos/ while the package builds.

Everything else about the package lives in pyproject.toml. The stubs are written to services/v1/
(importable as action100m.v1, ignored by git) whenever setup.py runs, i.e. by every build and every
(editable) install, so the
Python code always matches the .proto files and nobody edits generated code by hand.
"""

import shutil
import tempfile
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
PROTO_ROOT = ROOT / "protos"
PROTO_DIR = PROTO_ROOT / "action100m" / "v1"
STUB_DIR = ROOT / "services" / "v1"


def generate_grpc_stubs() -> None:
    import grpc_tools
    from grpc_tools import protoc

    protos = sorted(str(p) for p in PROTO_DIR.glob("*.proto"))
    if not protos:
        raise RuntimeError(f"no .proto files under {PROTO_DIR}")
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *protos,
        ]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed on " + " ".join(protos))
        if STUB_DIR.exists():
            shutil.rmtree(STUB_DIR)
        shutil.copytree(Path(tmp) / "action100m" / "v1", STUB_DIR)
    (STUB_DIR / "__init__.py").write_text('"""gRPC stubs generated from protos/action100m/v1 at build time."""\n')


def find_packages_under_services() -> list[str]:
    packages = ["action100m", "action100m.v1", "action100m.pipelines"]
    for init in sorted((ROOT / "services").rglob("__init__.py")):
        rel = init.parent.relative_to(ROOT / "services")
        if rel.parts and rel.parts[0] != "v1":
            packages.append(".".join(("action100m", *rel.parts)))
    return packages


# Generated before setup() runs: every build step (egg_info included) needs the package to exist.
generate_grpc_stubs()
# pipelines/ (top level, beside services/) is the subpackage action100m.pipelines.
setup(packages=find_packages_under_services(), package_dir={"action100m": "services", "action100m.pipelines": "pipelines"})
