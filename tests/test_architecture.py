"""The package layout's rules (docs/architecture.md), checked on the source and the built wheel."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"features": ROOT / "features", "featurestore_local": ROOT / "featurestore-local" / "featurestore_local"}


def _modules() -> dict[str, Path]:
    found = {}
    for package, root in PACKAGES.items():
        for path in root.rglob("*.py"):
            parts = (package, *path.relative_to(root).with_suffix("").parts)
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Our modules ``name`` imports anywhere in its file (top level, functions, TYPE_CHECKING)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        for imported in targets:
            target = imported
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(f"{target}."):
                out.add(target)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycle() -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(GRAPH):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_has_no_cycle() -> None:
    assert _cycle() is None


@pytest.mark.parametrize(
    ("modules", "forbidden"),
    [
        # Pure definitions and transforms: no IO, no session, no CLI, no AWS, no configuration.
        (
            ("features.definitions", "features.transform"),
            ("features.io", "features.session", "features.cli", "features.config", "features.online", "boto3"),
        ),
        # Push settings are read by replay, which must not need Spark.
        (("features.online.settings",), ("pyspark", "boto3", "botocore", "features.online.push")),
        # The local runtime is a separate developer tool.
        (("featurestore_local",), ("features",)),
        # Stages never reach up into the pipeline or the commands.
        (
            ("features.io", "features.load", "features.validate", "features.online", "features.transform"),
            ("features.pipeline", "features.cli"),
        ),
    ],
)
def test_stages_import_downwards_only(modules: tuple[str, ...], forbidden: tuple[str, ...]) -> None:
    offenders = []
    for name, path in MODULES.items():
        if not any(name == m or name.startswith(f"{m}.") for m in modules):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        raw = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        raw |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level}
        for target in raw | GRAPH[name]:
            if any(target == f or target.startswith(f"{f}.") for f in forbidden):
                offenders.append(f"{name} -> {target}")
    assert offenders == []


def test_the_job_wheel_does_not_ship_the_local_runtime(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), "."],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("emr_feature_pipeline-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "features/pipeline.py" in names
    assert "features/cli/__init__.py" in names
    assert not [n for n in names if n.startswith(("featurestore_local/", "tests/", "bench/"))]
