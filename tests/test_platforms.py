"""The two platform lines (docs/platforms.md): their pins, and the Spark 3.5 path where Spark 4 differs.

The whole suite runs on both lines (`make test`, `make test-spark35`); these tests pin what makes
that possible: the constraints files differ only in the Spark line, the project's requirements
admit both, and the Spark 3.5 fallback for finding an unreadable file works on either runtime.
"""

from __future__ import annotations

import ast
import gzip
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pyspark
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pyspark.sql import DataFrame, SparkSession

from features.io.extract import _unnamed_failed_file

ROOT = Path(__file__).resolve().parents[1]


def _pins(name: str) -> dict[str, str]:
    lines = (ROOT / name).read_text().splitlines()
    pins = (line.split("==") for line in lines if line.strip() and not line.startswith("#"))
    return {canonicalize_name(name): version for name, version in pins}


def _install_requires() -> list[Requirement]:
    call = next(n for n in ast.walk(ast.parse((ROOT / "setup.py").read_text())) if isinstance(n, ast.Call))
    (value,) = (k.value for k in call.keywords if k.arg == "install_requires")
    return [Requirement(ast.literal_eval(item)) for item in cast(ast.List, value).elts]


def test_spark35_constraints_differ_from_the_primary_only_in_the_spark_line() -> None:
    main, compat = _pins("constraints.txt"), _pins("constraints-spark35.txt")
    differ = {k: (main.get(k), compat.get(k)) for k in main.keys() | compat.keys() if main.get(k) != compat.get(k)}
    assert differ == {
        "pyspark": ("4.0.2", "3.5.6"),
        "delta-spark": ("4.0.0", "3.3.2"),
        "py4j": ("0.10.9.9", "0.10.9.7"),
    }


@pytest.mark.parametrize("constraints", ["constraints.txt", "constraints-spark35.txt"])
def test_the_project_requirements_admit_each_platforms_pins(constraints: str) -> None:
    pins = _pins(constraints)
    for requirement in _install_requires():
        assert requirement.specifier.contains(pins[canonicalize_name(requirement.name)]), (
            constraints,
            str(requirement),
        )


def test_the_running_spark_is_one_of_the_two_lines(spark: SparkSession) -> None:
    assert spark.version == pyspark.__version__ in {"4.0.2", "3.5.6"}
    assert spark.conf.get("spark.sql.ansi.enabled") == "true"


@pytest.fixture
def text_files(tmp_path: Path) -> list[str]:
    """Five gzip text files; the fourth is truncated mid-stream, as a half-uploaded log is."""
    paths = []
    for i in range(5):
        data = gzip.compress("".join(f"line {n}\n" for n in range(500)).encode(), mtime=0)
        path = tmp_path / f"part-{i}.txt.gz"
        path.write_bytes(data[:300] if i == 3 else data)
        paths.append(str(path))
    return paths


def test_spark35_finds_the_unreadable_file_by_halving(spark: SparkSession, text_files: list[str]) -> None:
    reads: list[list[str]] = []

    def read(paths: list[str]) -> DataFrame:
        reads.append(paths)
        return spark.read.text(paths)

    spark35 = cast(SparkSession, SimpleNamespace(version="3.5.6"))
    assert _unnamed_failed_file(spark35, read, text_files) == text_files[3]
    # all five (fail), [0, 1] (read: go right), [2] (read: go right), [3] (fail): found.
    assert reads == [text_files, text_files[:2], text_files[2:3], text_files[3:4]]
    reads.clear()
    assert _unnamed_failed_file(spark35, read, text_files[:3] + text_files[4:]) is None
    assert len(reads) == 1


def test_spark4_names_the_file_itself_so_nothing_is_probed(text_files: list[str]) -> None:
    def read(paths: list[str]) -> DataFrame:
        raise AssertionError(f"probed {paths}")

    spark4 = cast(SparkSession, SimpleNamespace(version="4.0.2"))
    assert _unnamed_failed_file(spark4, read, text_files) is None
