"""``make package`` (bootstrap/package.py, docs/packaging.md): the artifacts, their manifest, and the
EMR Serverless archive run the way EMR Serverless runs it.

A full build takes one to two minutes on 2 shared cores, so the slow tests share one per module.
Reproducibility is checked on a build without the archive (wheel, zip, jobs: seconds) made twice,
and on the archive's rewrite of a tiny venv made twice in other directories at other times.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

import pyspark
import pytest
from featurestore_local import LocalFeatureStore

import features.cli
from bootstrap import package
from features.online.client import get_record
from tests.test_jobs import AS_OF, overrides

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bootstrap" / "package.py"
WHEEL = "emr_feature_pipeline-0.1.0-py3-none-any.whl"
#: 2026-10-31T00:00:00Z, for the tiny archive (a real build uses the commit's time).
EPOCH = 1793404800
#: What must never ship in the archive: the Spark runtime's own packages, test and dev tools.
NOT_IN_ARCHIVE = {
    "pyspark",
    "py4j",
    "pip",
    "setuptools",
    "pytest",
    "chispa",
    "duckdb",
    "moto",
    "ruff",
    "mypy",
    "venv-pack",
    "featurestore-local",
}


def build(dist: Path, *args: str, timeout: int) -> dict[str, Any]:
    """``bootstrap/package.py build`` as make runs it; returns the manifest it wrote."""
    cmd = [sys.executable, str(SCRIPT), "build", "--dist", str(dist), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    manifest: dict[str, Any] = json.loads((dist / "manifest.json").read_text())
    return manifest


@pytest.fixture(scope="module")
def code_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two builds of the wheel, zip and jobs (no archive), made one after the other."""
    root = tmp_path_factory.mktemp("code")
    for name in ("one", "two"):
        build(root / name, "--without-archive", timeout=300)
    return root / "one", root / "two"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One full build, as ``make package`` makes it."""
    out = tmp_path_factory.mktemp("package") / "dist"
    build(out, timeout=1200)
    return out


def without_build_time(manifest: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in manifest.items() if key != "built_at"}


def test_two_builds_of_one_commit_give_the_same_manifest(code_builds: tuple[Path, Path]) -> None:
    one, two = (json.loads((d / "manifest.json").read_text()) for d in code_builds)
    assert without_build_time(one) == without_build_time(two)
    assert sorted(one["files"]) == [
        WHEEL,
        "features.zip",
        "jobs/backfill.py",
        "jobs/build_features.py",
        "jobs/training_set.py",
    ]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert (one["project"], one["version"], one["git_commit"]) == ("emr-feature-pipeline", "0.1.0", head.stdout.strip())
    assert one["artifacts"] == {
        "wheel": WHEEL,
        "archive": None,
        "py_files": "features.zip",
        "jobs": ["jobs/backfill.py", "jobs/build_features.py", "jobs/training_set.py"],
    }
    assert one["archive"] is None
    assert (code_builds[0] / "jobs/build_features.py").read_bytes() == (ROOT / "jobs/build_features.py").read_bytes()


def test_the_wheel_and_the_zip_hold_features_only(code_builds: tuple[Path, Path]) -> None:
    wheel_names = zipfile.ZipFile(code_builds[0] / WHEEL).namelist()
    assert "features/pipeline.py" in wheel_names
    assert all(n.startswith(("features/", "emr_feature_pipeline-0.1.0.dist-info/")) for n in wheel_names)
    with zipfile.ZipFile(code_builds[0] / "features.zip") as zf:
        infos = zf.infolist()
    tracked = subprocess.run(["git", "ls-files", "features"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert {i.filename for i in infos} >= set(tracked.stdout.split())
    assert all(i.filename.startswith("features/") and "__pycache__" not in i.filename for i in infos)
    epoch = json.loads((code_builds[0] / "manifest.json").read_text())["source_date_epoch"]
    # A zip entry's time has two-second resolution (DOS time): an odd commit second rounds down.
    assert {i.date_time for i in infos} == {time.gmtime(epoch - epoch % 2)[:6]}


def test_features_imports_from_the_zip_with_its_groups_and_commands(
    code_builds: tuple[Path, Path], tmp_path: Path
) -> None:
    zip_path = code_builds[0] / "features.zip"
    probe = (
        "import json, features, features.cli, features.registry; "
        "print(json.dumps([features.__file__, sorted(features.registry.all_groups()), sorted(features.cli.commands())]))"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8", "PYTHONPATH": str(zip_path)}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    where, groups, commands = json.loads(done.stdout.splitlines()[-1])
    assert where == f"{zip_path}/features/__init__.py"
    assert groups == ["customer_activity", "customer_orders", "customer_profile"]
    assert commands == sorted(features.cli.commands())


def test_verify_names_the_file_that_changed(
    code_builds: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "dist"
    shutil.copytree(code_builds[0], copy)
    assert package.main(["verify", "--dist", str(copy)]) == 0
    assert capsys.readouterr().out == f"{copy}: every file matches manifest.json\n"

    with (copy / "jobs/build_features.py").open("a") as fh:
        fh.write("# edited after the build\n")
    (copy / "notes.txt").write_text("not built\n")
    assert package.main(["verify", "--dist", str(copy)]) == 1
    assert capsys.readouterr().err == (
        f"error: {copy}/jobs/build_features.py: sha256 or size differs from manifest.json; "
        "rebuild with make package (and 1 more)\n"
    )
    assert package.verify(copy)[1] == f"{copy}/notes.txt is not in manifest.json"


def test_the_archive_rewrite_is_byte_reproducible_and_names_no_build_path(tmp_path: Path) -> None:
    shas = []
    for run, hours_later in (("a", 0), ("b", 5)):
        venv = tmp_path / run / "environment"
        env = package.build_env(EPOCH)
        package.create_environment("python3.11", venv)
        package.install(venv, ["six"], find_links=tmp_path, constraints=ROOT / "constraints.txt", env=env)
        package.compile_bytecode(venv, env)
        later = time.time() + hours_later * 3600
        for path in [venv, *venv.rglob("*")]:
            os.utime(path, (later, later), follow_symlinks=False)
        out = tmp_path / run / "environment.tar.gz"
        package.pack_environment(venv, out, python_prefix="/usr", epoch=EPOCH)
        shas.append(package.file_entry(out)["sha256"])
    assert shas[0] == shas[1]

    with tarfile.open(out) as tar:
        members = {m.name: m for m in tar.getmembers()}
        site = "lib/python3.11/site-packages"
        assert f"{site}/six.py" in members and f"{site}/__pycache__/six.cpython-311.pyc" in members
        assert not [n for n in members if n.startswith((f"{site}/pip", f"{site}/setuptools"))]
        assert members["bin/python3.11"].linkname == "/usr/bin/python3.11"
        assert members["bin/python"].linkname == "python3.11"
        assert {(m.mtime, m.uid, m.gid, m.uname) for m in members.values()} == {(EPOCH, 0, 0, "")}
        cfg = tar.extractfile("pyvenv.cfg")
        assert cfg is not None
        lines = cfg.read().decode().splitlines()
        assert lines[0] == "home = /usr/bin" and "executable = /usr/bin/python3.11" in lines
        assert not [line for line in lines if line.startswith("command")]
        build_dirs = (str(tmp_path / "a").encode(), str(tmp_path / "b").encode())
        for member in members.values():
            data = tar.extractfile(member) if member.isfile() else None
            content = data.read() if data else b""
            assert not [d for d in build_dirs if d in content], member.name


def test_record_rehashes_the_scripts_venv_pack_rewrote() -> None:
    text = "../../../bin/tool,sha256=OLD,190\r\ntool/__init__.py,sha256=KEEP,12\r\ntool-1.0.dist-info/RECORD,,\r\n"
    name = "lib/python3.11/site-packages/tool-1.0.dist-info/RECORD"
    assert package.record(text, name, {"bin/tool": ("NEW", 158)}) == (
        "../../../bin/tool,sha256=NEW,158\r\ntool/__init__.py,sha256=KEEP,12\r\ntool-1.0.dist-info/RECORD,,\r\n"
    )
    assert package.record(text, name, {"bin/other": ("NEW", 1)}) == text


@pytest.mark.parametrize(
    ("tags", "outcome"),
    [
        (["cp311-cp311-manylinux_2_17_x86_64", "cp311-cp311-manylinux2014_x86_64"], (2, 17)),
        (["cp311-abi3-manylinux_2_34_x86_64", "cp311-abi3-manylinux_2_28_x86_64"], (2, 28)),
        (["py3-none-any"], (2, 5)),
        (["cp311-cp311-manylinux_2_39_x86_64"], "fast-1.0.dist-info needs glibc 2.39, Amazon Linux 2023 has 2.34"),
        (["cp311-cp311-linux_x86_64"], "fast-1.0.dist-info is a linux_x86_64 wheel, not manylinux"),
    ],
)
def test_wheels_must_run_on_amazon_linux_2023(tmp_path: Path, tags: list[str], outcome: object) -> None:
    info = tmp_path / "lib/python3.11/site-packages/fast-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "WHEEL").write_text("Wheel-Version: 1.0\n" + "".join(f"Tag: {t}\n" for t in tags))
    if isinstance(outcome, str):
        with pytest.raises(package.PackageError, match=re.escape(outcome)):
            package.required_glibc(tmp_path)
    else:
        assert package.required_glibc(tmp_path) == outcome


def test_another_python_is_refused_with_the_fix(tmp_path: Path) -> None:
    python312 = tmp_path / "python3.12"
    python312.write_text("#!/bin/sh\necho cpython 3.12.4 linux x86_64\n")
    python312.chmod(0o755)
    with pytest.raises(
        package.PackageError, match=re.escape("python3.12 is cpython 3.12.4; EMR runs CPython 3.11: pass --python")
    ):
        package.create_environment(str(python312), tmp_path / "venv")
    with pytest.raises(
        package.PackageError, match=re.escape("cannot run /nonexistent/python3.11: install Python 3.11")
    ):
        package.create_environment("/nonexistent/python3.11", tmp_path / "venv")


@pytest.mark.slow
def test_the_archive_holds_the_pinned_runtime_tree_without_pyspark(dist: Path) -> None:
    manifest = json.loads((dist / "manifest.json").read_text())
    assert package.verify(dist) == []
    assert sorted(manifest["files"]) == [
        WHEEL,
        "features.zip",
        "jobs/backfill.py",
        "jobs/build_features.py",
        "jobs/training_set.py",
        "pyspark_venv.tar.gz",
    ]
    archive = manifest["archive"]
    packages = archive["packages"]
    assert not NOT_IN_ARCHIVE & set(packages)
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().split() if "==" in line)
    pins = {package.canonical(name): version for name, version in pins.items()}
    assert {name: pins.get(name) for name in packages if name != "emr-feature-pipeline"} == {
        name: version for name, version in packages.items() if name != "emr-feature-pipeline"
    }
    assert packages["emr-feature-pipeline"] == "0.1.0"
    assert (packages["delta-spark"], packages["great-expectations"], packages["boto3"]) == ("4.0.0", "1.24.1", "1.44.8")
    assert (archive["python_prefix"], archive["provided_by_emr"]) == ("/usr", ["py4j", "pyspark"])
    assert tuple(int(p) for p in archive["glibc_required"].split(".")) <= (2, 34)
    with tarfile.open(dist / "pyspark_venv.tar.gz") as tar:
        names = tar.getnames()
    site = "lib/python3.11/site-packages"
    assert f"{site}/features/pipeline.py" in names and f"{site}/great_expectations/__init__.py" in names
    assert not [n for n in names if n.startswith((f"{site}/pyspark/", f"{site}/py4j/", f"{site}/featurestore_local/"))]


@pytest.mark.slow
def test_the_archive_runs_the_build_job_as_emr_serverless_does(dist: Path, sample: Path, tmp_path: Path) -> None:
    # EMR Serverless unpacks spark.archives=...#environment into the job's working directory and runs
    # ./environment/bin/python for the driver and the executors; spark-submit adds only its own
    # pyspark and py4j to the Python path. (Local mode unpacks --archives elsewhere, so it is done here.)
    work = tmp_path / "job"
    (work / "environment").mkdir(parents=True)
    with tarfile.open(dist / "pyspark_venv.tar.gz") as tar:
        tar.extractall(work / "environment", filter="tar")
    (tmp_path / "home").mkdir()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "LANG": "C.UTF-8",
        "SPARK_HOME": str(Path(pyspark.__file__).parent),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": "./environment/bin/python",
        "PYSPARK_DRIVER_PYTHON": "./environment/bin/python",
    }
    if "JAVA_HOME" in os.environ:
        env["JAVA_HOME"] = os.environ["JAVA_HOME"]
    out = tmp_path / "out"
    # The local Feature Store runtime is not in the archive: the executors push to one started here,
    # as on EMR Serverless they push to SageMaker Feature Store itself.
    with LocalFeatureStore(db_path=str(tmp_path / "fs.sqlite"), port=0) as store:
        cmd = [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[1]"]
        cmd += [str(dist / "jobs/build_features.py"), "--conf", str(ROOT / "conf/local.yaml")]
        cmd += ["--group", "customer_profile", "--as-of", AS_OF, *overrides(sample, out)]
        cmd += ["--set", f"online_store.endpoint_url={store.endpoint_url}"]
        done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        record = get_record(store.endpoint_url, "us-east-1", "customer_profile", "C000001")

    (report_file,) = (out / "reports" / "build_features").glob("*.json")
    report = json.loads(report_file.read_text())
    assert report["status"] == "succeeded"
    (group,) = report["groups"]
    assert (group["group"], group["entities"], group["online"]["written"]) == ("customer_profile", 150, 150)
    assert record is not None
    assert (record["customer_id"], record["age"], record["country"]) == ("C000001", "57", "FR")
