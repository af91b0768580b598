"""bootstrap/emr-bootstrap.sh: shellcheck-clean, and run as EMR would on a node.

The node is a throwaway venv; ``aws s3 cp`` is a stand-in reading a local directory; the wheel
is a tiny fake whose requirements are the cluster's own (pyspark, delta-spark: skipped), an
extra (skipped) and pip (already there), so nothing is fetched from PyPI.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bootstrap" / "emr-bootstrap.sh"
WHEEL = "emr_feature_pipeline-9.9.9-py3-none-any.whl"

FAKE_AWS = """#!/usr/bin/env bash
# aws s3 cp [--only-show-errors] s3://BUCKET/KEY DEST, served from $FAKE_S3/BUCKET/KEY
set -euo pipefail
[[ $1 == s3 && $2 == cp ]] || { echo "fake aws: only 's3 cp'" >&2; exit 2; }
shift 2
paths=()
for arg in "$@"; do [[ $arg == --* ]] || paths+=("$arg"); done
cp "$FAKE_S3/${paths[0]#s3://}" "${paths[1]}"
"""


def test_shellcheck_is_clean() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed: apt-get install -y shellcheck (make services installs it)")
    result = subprocess.run(["shellcheck", str(SCRIPT)], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A node's Python: a venv seeing the base interpreter's pip (no copy of pip: fast)."""
    venv = tmp_path_factory.mktemp("node") / "python"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True, timeout=60
    )
    python = venv / "bin" / "python"
    if subprocess.run([python, "-m", "pip", "--version"], check=False, capture_output=True, timeout=60).returncode != 0:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=300)
    return python


def fake_wheel(path: Path, marker: str) -> str:
    """A wheel of one module ``emr_feature_pipeline_probe`` holding ``marker``; returns its sha256."""
    info = "emr_feature_pipeline-9.9.9.dist-info"
    metadata = "\n".join(
        [
            "Metadata-Version: 2.1",
            "Name: emr-feature-pipeline",
            "Version: 9.9.9",
            "Requires-Dist: pyspark<4.1,>=3.5.6",
            "Requires-Dist: delta-spark<4.1,>=3.3.2",
            "Requires-Dist: pip>=20",
            'Requires-Dist: moto[server]>=5.2; extra == "test"',
            "",
        ]
    )
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("emr_feature_pipeline_probe.py", f"MARKER = {marker!r}\n")
        wheel.writestr(f"{info}/METADATA", metadata)
        wheel.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        wheel.writestr(f"{info}/RECORD", "")
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def cluster(tmp_path: Path) -> dict[str, str]:
    """The environment of a bootstrap action: PATH with the stand-in aws (and sudo), the fake S3."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(FAKE_AWS)
    (bin_dir / "sudo").write_text('#!/usr/bin/env bash\nexec "$@"\n')
    for tool in ("aws", "sudo"):
        (bin_dir / tool).chmod(0o755)
    (tmp_path / "s3" / "artifacts").mkdir(parents=True)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_S3": str(tmp_path / "s3"), "HOME": str(tmp_path)}


def bootstrap(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], check=False, capture_output=True, text=True, env=env, timeout=300
    )


def probe_marker(python: Path) -> str:
    code = "import emr_feature_pipeline_probe as p; print(p.MARKER)"
    return subprocess.run([python, "-c", code], check=True, capture_output=True, text=True, timeout=60).stdout.strip()


def test_installs_once_per_version_and_sha(node: Path, cluster: dict[str, str], tmp_path: Path) -> None:
    s3 = Path(cluster["FAKE_S3"]) / "artifacts"
    sha = fake_wheel(s3 / WHEEL, "first")
    (s3 / "constraints.txt").write_text("pip>=20\n")
    state = tmp_path / "state"
    args = ["--python", str(node), "--state-dir", str(state), "--constraints", "s3://artifacts/constraints.txt"]

    first = bootstrap(cluster, *args, "--sha256", sha, f"s3://artifacts/{WHEEL}")
    assert first.returncode == 0, first.stderr
    assert "installing the requirements of emr_feature_pipeline-9.9.9-py3-none-any.whl: pip>=20" in first.stderr
    assert f"installed emr-feature-pipeline 9.9.9 (sha256 {sha}) into {node} (Python 3.11" in first.stderr
    assert (state / "installed").read_text() == f"emr-feature-pipeline 9.9.9 sha256:{sha} {node}\n"
    assert probe_marker(node) == "first"

    again = bootstrap(cluster, *args, f"s3://artifacts/{WHEEL}")
    assert again.returncode == 0, again.stderr
    assert f"emr-feature-pipeline 9.9.9 (sha256 {sha}) is already installed in {node}; nothing to do" in again.stderr
    assert "installed emr-feature-pipeline" not in again.stderr

    rebuilt = fake_wheel(s3 / WHEEL, "rebuilt")  # same version, other bytes: installed again
    third = bootstrap(cluster, *args, f"s3://artifacts/{WHEEL}")
    assert third.returncode == 0, third.stderr
    assert f"installed emr-feature-pipeline 9.9.9 (sha256 {rebuilt})" in third.stderr
    assert probe_marker(node) == "rebuilt"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sha256", "0" * 64, f"s3://artifacts/{WHEEL}"], f"has sha256 {{sha}}, expected {'0' * 64}"),
        ([f"/tmp/{WHEEL}"], "is not an s3:// URI of an emr_feature_pipeline-<version>-py3-none-any.whl"),
        (["s3://artifacts/other-1.0-py3-none-any.whl"], "is not an s3:// URI of an emr_feature_pipeline"),
        ([], "expected one wheel URI, got 0"),
        (["--python"], "--python needs a value"),
        (["--pyhton", "x", f"s3://artifacts/{WHEEL}"], "unknown option --pyhton"),
    ],
)
def test_refuses_with_one_line(node: Path, cluster: dict[str, str], args: list[str], message: str) -> None:
    sha = fake_wheel(Path(cluster["FAKE_S3"]) / "artifacts" / WHEEL, "x")
    result = bootstrap(cluster, "--python", str(node), *args)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "emr-bootstrap: error: " in line and message.format(sha=sha) in line


def test_help(cluster: dict[str, str]) -> None:
    result = bootstrap(cluster, "--help")
    assert result.returncode == 0
    assert "usage: emr-bootstrap.sh [--python PATH] [--constraints S3_URI]" in result.stdout
