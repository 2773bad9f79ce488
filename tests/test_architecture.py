"""Facts about the code's shape that grep and `ast` can check: settings are values (never written
into the environment), per-service facts live in the registry, functions are short enough to read
at once, modules import each other in one direction, and the DAG's options are typed."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from action100m.pipelines.registry import STAGES

from .support import REPO

SOURCES = [REPO / "services" / "action100m", REPO / "pipelines" / "action100m"]
PIPELINES = REPO / "pipelines" / "action100m" / "pipelines"
GENERATED = REPO / "services" / "action100m" / "v1"
MAX_FUNCTION_LINES = 80


def python_files(*roots: Path) -> Iterator[Path]:
    for root in roots:
        yield from (p for p in sorted(root.rglob("*.py")) if GENERATED not in p.parents)


def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def module_name(path: Path) -> str:
    source_root = next(root.parent for root in SOURCES if root in path.parents)
    parts = list(path.relative_to(source_root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_pipelines_never_write_the_environment():
    writes = []
    for path in python_files(PIPELINES):
        for node in ast.walk(parsed(path)):
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                if isinstance(target, ast.Subscript) and ast.unparse(target.value) == "os.environ":
                    writes.append(f"{path}:{node.lineno}")
            if isinstance(node, ast.Call) and ast.unparse(node.func) in (
                "os.environ.update",
                "os.environ.setdefault",
                "os.putenv",
            ):
                writes.append(f"{path}:{node.lineno}")
    assert writes == []


def test_a_service_is_named_only_by_its_registry_entry():
    services = {spec.service for spec in STAGES}
    registry = PIPELINES / "registry"
    found = [
        f"{path.relative_to(REPO)}:{node.lineno} {node.value!r}"
        for path in python_files(PIPELINES)
        if registry not in path.parents
        for node in ast.walk(parsed(path))
        if isinstance(node, ast.Constant) and node.value in services
    ]
    assert found == []


def test_a_stage_is_named_only_by_its_registry_entry():
    """The pipeline and the run's command line take stages, their modes and their release fields from
    the registry (`TREE`, `CAPTIONS`, `ANNOTATIONS`, `OPTIONAL`, ...), never by a name of their own."""
    names = {spec.name for spec in STAGES}
    registry = PIPELINES / "registry"
    cli = REPO / "services" / "action100m" / "cli"
    found = [
        f"{path.relative_to(REPO)}:{node.lineno} {node.value!r}"
        for path in [*python_files(PIPELINES), cli / "run.py", cli / "pipeline.py"]
        if registry not in path.parents
        for node in ast.walk(parsed(path))
        if isinstance(node, ast.Constant) and node.value in names
    ]
    assert found == []


def test_every_function_is_short_enough_to_read_at_once():
    long = [
        f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in python_files(*SOURCES)
        for node in ast.walk(parsed(path))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (node.end_lineno or node.lineno) - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def imports_of(path: Path, module: str) -> set[str]:
    """The action100m modules `path` imports, anywhere in it (a lazy import is an arrow too)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("action100m.")}


def test_no_two_modules_import_each_other_however_far_round():
    modules = {module_name(path): path for path in python_files(*SOURCES)}
    graph = {name: {m for m in imports_of(path, name) if m in modules and m != name} for name, path in modules.items()}
    # a package's __init__ re-exporting its modules is not an arrow back up from them
    graph = {name: {m for m in deps if not name.startswith(f"{m}.")} for name, deps in graph.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dep in sorted(graph[name]):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep] if dep in path else [name, dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_common_imports_nothing_above_it():
    common = REPO / "services" / "action100m" / "common"
    upward = [
        f"{module_name(path)} -> {m}"
        for path in python_files(common)
        for m in imports_of(path, module_name(path))
        if not m.startswith(("action100m.common", "action100m.v1"))
    ]
    assert upward == []


def test_the_dag_takes_typed_options_not_json_strings():
    dag = parsed(PIPELINES / "dag.py")
    (pipeline,) = [n for n in ast.walk(dag) if isinstance(n, ast.FunctionDef) and n.name == "action100m"]
    annotations = {arg.arg: ast.unparse(arg.annotation) for arg in pipeline.args.args if arg.annotation}
    assert [name for name in annotations if "option" in name] == ["options"]
    assert annotations["options"].startswith("Dict[")
    assert "str" not in {annotations[name] for name in annotations if "option" in name}
