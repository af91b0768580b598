"""``make package``: build the deployable artifacts into ``dist/`` with a manifest of them.

What each artifact is for, and how to check a build, is in docs/packaging.md. In short:

- the project wheel, built from a copy of the files git tracks (or would track) under SOURCES,
  so stale ``build/`` output and untracked clutter never ship;
- ``pyspark_venv.tar.gz``: a venv-pack archive for EMR Serverless (``spark.archives=...#environment``)
  with the pinned runtime dependencies and the wheel, but not pyspark/py4j: the EMR runtime puts
  its own on the Python path, and a second, different copy in the archive would shadow it;
- ``features.zip``: the ``features`` package for ``--py-files`` on EMR on EC2;
- ``jobs/*.py``: the ``spark-submit`` entry points;
- ``manifest.json``: sha256 and size of each file, the version, the commit, the archive's packages.

Two builds of one commit give the same manifest except ``built_at``: zip and wheel entries carry
SOURCE_DATE_EPOCH (the commit time), bytecode is hash-based, and the archive is rewritten with
sorted members, fixed owners and mtimes and no build paths.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import csv
import gzip
import hashlib
import io
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "emr-feature-pipeline"
ARCHIVE = "pyspark_venv.tar.gz"
PY_FILES = "features.zip"
MANIFEST = "manifest.json"
#: What the artifacts are built from (setup.py reads README.md and constraints.txt pins the build).
SOURCES = ("setup.py", "README.md", "constraints.txt", "features", "jobs")
#: The EMR runtime's own pyspark and py4j match its JVM; the archive must not carry a second copy.
PROVIDED_BY_EMR = ("pyspark", "py4j")
#: pyspark is published as an sdist only; it is installed (to resolve the tree) and removed again.
SDIST_ONLY = ("pyspark",)
#: EMR and EMR Serverless run Python 3.11 on Amazon Linux 2023, whose glibc is 2.34.
TARGET_PYTHON = "3.11"
MAX_GLIBC = (2, 34)
#: Where EMR images keep python3.11: the archive's bin/python3.11 links to PREFIX/bin/python3.11.
DEFAULT_PYTHON_PREFIX = "/usr"
#: Zip entries cannot be dated before 1980.
ZIP_MIN_EPOCH = 315532800
#: The older manylinux names and the glibc each stands for (PEP 600).
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


class PackageError(Exception):
    """A build step failed; the message is the one line printed after ``error:``."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bootstrap/package.py",
        description="Build or check the EMR artifacts in dist/ (docs/packaging.md).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    build_p = sub.add_parser(
        "build",
        help="build the wheel, the EMR Serverless archive, the --py-files zip, the jobs and manifest.json",
        description="Build every artifact into a new directory, then put it in place of DIR.",
    )
    build_p.add_argument(
        "--dist", type=Path, default=ROOT / "dist", metavar="DIR", help="output directory (default: dist/)"
    )
    build_p.add_argument(
        "--python",
        default=f"python{TARGET_PYTHON}",
        metavar="PYTHON",
        help=f"the Python {TARGET_PYTHON} that creates the archive's venv (default: python{TARGET_PYTHON})",
    )
    build_p.add_argument(
        "--python-prefix",
        default=DEFAULT_PYTHON_PREFIX,
        metavar="PREFIX",
        help=f"where the cluster's python{TARGET_PYTHON} lives: the archive's interpreter links to "
        f"PREFIX/bin/python{TARGET_PYTHON} (default: {DEFAULT_PYTHON_PREFIX}, as on EMR images)",
    )
    build_p.add_argument(
        "--constraints",
        type=Path,
        default=ROOT / "constraints.txt",
        metavar="FILE",
        help="the pinned tree the archive holds (default: constraints.txt, the EMR 8 line)",
    )
    build_p.add_argument(
        "--without-archive",
        action="store_true",
        help="skip the EMR Serverless archive (EMR on EC2 needs only the wheel, the zip and the jobs)",
    )
    verify_p = sub.add_parser("verify", help="check that the files in DIR are the ones its manifest.json lists")
    verify_p.add_argument(
        "--dist", type=Path, default=ROOT / "dist", metavar="DIR", help="directory to check (default: dist/)"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            manifest = build(
                args.dist.resolve(),
                python=args.python,
                python_prefix=None if args.without_archive else args.python_prefix,
                constraints=args.constraints.resolve(),
            )
            for name, entry in manifest["files"].items():
                print(f"  {name:<48} {_size(entry['size']):>11}")
            print(f"{args.dist}/{MANIFEST}: version {manifest['version']}, commit {manifest['git_commit'][:12]}")
            return 0
        problems = verify(args.dist)
    except PackageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        print(f"error: {problems[0]}{more}", file=sys.stderr)
        return 1
    print(f"{args.dist}: every file matches {MANIFEST}")
    return 0


def build(dist: Path, *, python: str, python_prefix: str | None, constraints: Path) -> dict[str, Any]:
    """Build into a new directory beside ``dist`` and swap it in, so a failed build keeps the old one.

    ``python_prefix`` None skips the archive; ``constraints`` pins what the archive holds.
    """
    if not constraints.is_file():
        raise PackageError(f"constraints file {constraints} not found")
    commit = git_commit()
    inputs = [*SOURCES, "bootstrap/package.py"]
    if constraints.is_relative_to(ROOT):
        inputs.append(constraints.relative_to(ROOT).as_posix())
    dirty = git_dirty(inputs)
    if dirty:
        print(f"warning: uncommitted changes: the artifacts are not exactly commit {commit[:12]}", file=sys.stderr)
    epoch = source_date_epoch()
    env = build_env(epoch)
    dist.parent.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix=f".{dist.name}-", dir=dist.parent))
    try:
        with tempfile.TemporaryDirectory(prefix="package-") as scratch:
            src = Path(scratch) / "src"
            files = source_files()
            for name in files:
                (src / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, src / name)
            with _timed("wheel"):
                wheel = build_wheel(src, out, env)
            with _timed(PY_FILES):
                build_py_files(src, files, out / PY_FILES, epoch)
            with _timed("jobs/"):
                copy_jobs(src, files, out / "jobs")
            archive: dict[str, Any] | None = None
            if python_prefix is not None:
                with _timed(ARCHIVE):
                    venv = Path(scratch) / "environment"
                    archive = fill_environment(python, venv, wheel=wheel, constraints=constraints, env=env)
                    archive["python_prefix"] = python_prefix
                    pack_environment(venv, out / ARCHIVE, python_prefix=python_prefix, epoch=epoch)
        manifest = {
            "project": PROJECT,
            "version": wheel_version(wheel),
            "git_commit": commit,
            "git_dirty": dirty,
            "source_date_epoch": epoch,
            "built_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "artifacts": {
                "wheel": wheel.name,
                "archive": ARCHIVE if archive is not None else None,
                "py_files": PY_FILES,
                "jobs": [f"jobs/{name}" for name in sorted(os.listdir(out / "jobs"))],
            },
            "archive": archive,
            "files": {name: file_entry(out / name) for name in _relative_files(out)},
        }
        (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        out.chmod(0o755)
        if dist.exists():
            shutil.rmtree(dist)
        out.rename(dist)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return manifest


def verify(dist: Path) -> list[str]:
    """How ``dist`` differs from its manifest: missing, changed or unlisted files."""
    manifest_path = dist / MANIFEST
    if not manifest_path.is_file():
        return [f"{manifest_path} not found; build it with make package"]
    listed: dict[str, dict[str, Any]] = json.loads(manifest_path.read_text(encoding="utf-8"))["files"]
    problems = []
    for name, expected in sorted(listed.items()):
        path = dist / name
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif file_entry(path) != expected:
            problems.append(f"{path}: sha256 or size differs from {MANIFEST}; rebuild with make package")
    problems += [f"{dist / name} is not in {MANIFEST}" for name in _relative_files(dist) if name not in listed]
    return problems


# --- the source -------------------------------------------------------------------------------


def git_commit() -> str:
    try:
        return _run(["git", "rev-parse", "HEAD"], cwd=ROOT).strip()
    except PackageError as exc:
        raise PackageError(f"{ROOT} is not a git clone with a commit; the manifest records the commit") from exc


def git_dirty(paths: Sequence[str]) -> bool:
    """Whether ``paths`` differ from HEAD in the work tree (ignored files aside)."""
    return bool(_run(["git", "status", "--porcelain", "--", *paths], cwd=ROOT).strip())


def source_date_epoch() -> int:
    """SOURCE_DATE_EPOCH if set (reproducible-builds.org), else HEAD's commit time."""
    if value := os.environ.get("SOURCE_DATE_EPOCH"):
        if not value.isdigit():
            raise PackageError(f"SOURCE_DATE_EPOCH={value!r} is not a number of seconds; unset it or fix it")
        return int(value)
    return int(_run(["git", "log", "-1", "--format=%ct"], cwd=ROOT).strip())


def source_files() -> list[str]:
    """The files under SOURCES a commit of the work tree would hold: tracked, or untracked and not ignored."""
    listed = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *SOURCES], cwd=ROOT)
    return sorted({name for name in listed.split("\0") if name and (ROOT / name).is_file()})


def build_env(epoch: int) -> dict[str, str]:
    """The build steps' environment: a fixed date and hash seed, nothing from the caller's Python path."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    return env | {"SOURCE_DATE_EPOCH": str(epoch), "PYTHONHASHSEED": "0"}


# --- wheel, zip, jobs ---------------------------------------------------------------------------


def build_wheel(src: Path, out: Path, env: dict[str, str]) -> Path:
    """``pip wheel`` of the staged tree; constraints.txt pins setuptools in the isolated build too."""
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    constraints = str(src / "constraints.txt")
    _run([*pip, "wheel", "--quiet", "--no-deps", "--build-constraint", constraints, "-w", str(out), str(src)], env=env)
    wheels = [p.name for p in out.glob("*.whl")]
    if len(wheels) != 1 or not wheels[0].startswith(f"{PROJECT.replace('-', '_')}-"):
        raise PackageError(f"pip wheel made {wheels}, not one {PROJECT} wheel")
    return out / wheels[0]


def wheel_version(wheel: Path) -> str:
    return wheel.name.split("-")[1]


def build_py_files(src: Path, files: Sequence[str], out: Path, epoch: int) -> None:
    """The ``features`` package as a zip for ``--py-files``: sorted entries, one date, fixed modes.

    ``features`` reads no data files through ``__file__`` and pkgutil finds its groups and commands
    inside a zip, so it imports from the zip as from a directory (tests/test_package.py checks).
    """
    stamp = time.gmtime(max(epoch, ZIP_MIN_EPOCH))[:6]
    with zipfile.ZipFile(out, "w") as zf:
        for name in files:
            if name.startswith("features/"):
                info = zipfile.ZipInfo(name, date_time=stamp)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, (src / name).read_bytes())


def copy_jobs(src: Path, files: Sequence[str], out: Path) -> None:
    out.mkdir()
    for name in files:
        if re.fullmatch(r"jobs/[^/]+\.py", name):
            shutil.copyfile(src / name, out / Path(name).name)


# --- the EMR Serverless archive ---------------------------------------------------------------


def fill_environment(python: str, venv: Path, *, wheel: Path, constraints: Path, env: dict[str, str]) -> dict[str, Any]:
    """Create the venv that becomes the archive and install the wheel's tree; returns what the manifest records."""
    built_with = create_environment(python, venv)
    install(venv, [f"{PROJECT}=={wheel_version(wheel)}"], find_links=wheel.parent, constraints=constraints, env=env)
    compile_bytecode(venv, env)
    return {
        "constraints": {"file": constraints.name} | file_entry(constraints),
        "built_with_python": built_with,
        "glibc_required": ".".join(map(str, required_glibc(venv))),
        "packages": installed_packages(venv),
        "provided_by_emr": sorted(PROVIDED_BY_EMR),
    }


def create_environment(python: str, venv: Path) -> str:
    """A pip-less venv of ``python``, checked to be CPython 3.11 on linux x86_64; returns its version."""
    probe = "import platform as p, sys; print(sys.implementation.name, p.python_version(), sys.platform, p.machine())"
    try:
        impl, version, system, machine = _run([python, "-c", probe]).split()
    except (PackageError, OSError) as exc:
        raise PackageError(f"cannot run {python}: install Python {TARGET_PYTHON} or pass --python") from exc
    if impl != "cpython" or not version.startswith(f"{TARGET_PYTHON}."):
        raise PackageError(f"{python} is {impl} {version}; EMR runs CPython {TARGET_PYTHON}: pass --python")
    if (system, machine) != ("linux", "x86_64"):
        raise PackageError(
            f"the archive is for EMR's linux x86_64 workers: build it on linux x86_64, not {system} {machine}"
        )
    _run([python, "-m", "venv", "--without-pip", str(venv)])
    return version


def install(
    venv: Path, requirements: Sequence[str], *, find_links: Path, constraints: Path, env: dict[str, str]
) -> None:
    """Install ``requirements`` with the pinned tree, then remove what the EMR runtime provides.

    pip runs from this interpreter (``pip --python``), so neither pip nor setuptools lands in the
    archive; wheels only (but pure-Python pyspark), so nothing is compiled here; bytecode comes after.
    """
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "--disable-pip-version-check"]
    no_binary = [f"--no-binary={name}" for name in SDIST_ONLY]
    options = ["--quiet", "--no-compile", "--only-binary=:all:", *no_binary, "-c", str(constraints)]
    _run([*pip, "install", *options, "--find-links", str(find_links), *requirements], env=env)
    _run([*pip, "uninstall", "--quiet", "--yes", *PROVIDED_BY_EMR], env=env)
    done = subprocess.run([*pip, "check"], capture_output=True, text=True, env=env, check=False)
    provided = "|".join(PROVIDED_BY_EMR)
    broken = [
        line
        for line in (done.stdout.splitlines() if done.returncode else [])
        if line.strip() and not re.fullmatch(rf"\S+ \S+ requires ({provided}), which is not installed\.", line)
    ]
    if broken:
        raise PackageError(f"inconsistent archive dependencies: {broken[0]}; fix the pins in {constraints.name}")


def compile_bytecode(venv: Path, env: dict[str, str]) -> None:
    """Hash-checked .pyc, valid whatever mtimes the unpacked files get, with paths relative to the venv."""
    site = venv / "lib" / f"python{TARGET_PYTHON}" / "site-packages"
    compileall = [str(venv / "bin" / "python"), "-I", "-m", "compileall", "-q", "-q"]
    # compileall exits 1 when a shipped file is not valid 3.11 source (a template, a fixture): such
    # files stay uncompiled, as pip leaves them.
    subprocess.run(
        [*compileall, "--invalidation-mode", "checked-hash", "-s", str(venv), str(site)],
        env=env,
        check=False,
        stdout=subprocess.DEVNULL,
    )


def installed_packages(venv: Path) -> dict[str, str]:
    """Every distribution in the venv and its version, as the venv's own interpreter sees them."""
    probe = "import importlib.metadata as m, json; print(json.dumps({d.name: d.version for d in m.distributions()}))"
    found: dict[str, str] = json.loads(_run([str(venv / "bin" / "python"), "-I", "-c", probe]))
    return dict(sorted((canonical(name), version) for name, version in found.items()))


def required_glibc(venv: Path) -> tuple[int, int]:
    """The newest glibc an installed wheel needs; fails above MAX_GLIBC (Amazon Linux 2023)."""
    needed = (2, 5)
    for wheel_file in sorted((venv / "lib" / f"python{TARGET_PYTHON}" / "site-packages").glob("*.dist-info/WHEEL")):
        dist = wheel_file.parent.name
        platforms = [line.rsplit("-", 1)[-1] for line in wheel_file.read_text().splitlines() if line.startswith("Tag:")]
        if not platforms or "any" in platforms:
            continue
        versions = [glibc(p) for p in platforms]
        if None in versions:
            raise PackageError(f"{dist} is a {platforms[0]} wheel, not manylinux: pin a version with manylinux wheels")
        least = min(v for v in versions if v is not None)
        if least > MAX_GLIBC:
            raise PackageError(
                f"{dist} needs glibc {least[0]}.{least[1]}, Amazon Linux 2023 has {MAX_GLIBC[0]}.{MAX_GLIBC[1]}: "
                "pin an older version in the constraints file"
            )
        needed = max(needed, least)
    return needed


def glibc(platform_tag: str) -> tuple[int, int] | None:
    """The glibc a manylinux x86_64 platform tag needs; None for any other platform."""
    if match := re.fullmatch(r"manylinux_(\d+)_(\d+)_x86_64", platform_tag):
        return int(match[1]), int(match[2])
    name, _, arch = platform_tag.partition("_")
    return LEGACY_MANYLINUX.get(name) if arch == "x86_64" else None


def pack_environment(venv: Path, out: Path, *, python_prefix: str, epoch: int) -> None:
    """venv-pack the venv (relocatable scripts and activate), then rewrite it reproducibly.

    The rewrite links the interpreter to ``python_prefix``/bin/python3.11 and writes pyvenv.cfg for
    it (venv-pack 0.2.0's own --python-prefix turns python3.11 into .../python3.113.11), sorts the
    members, gives them ``epoch``, root ownership and 644/755 modes, and writes the gzip header with
    mtime 0: the archive's sha256 then depends on its contents only.
    """
    import venv_pack

    interpreter = f"{python_prefix.rstrip('/')}/bin/python{TARGET_PYTHON}"
    raw = out.with_name(f"{out.name}.raw.tar")
    try:
        venv_pack.pack(prefix=str(venv), output=str(raw), format="tar", force=True)
        with (
            tarfile.open(raw) as src,
            out.open("wb") as fh,
            gzip.GzipFile(filename="", mode="wb", fileobj=fh, compresslevel=6, mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as dst,
        ):
            # venv-pack 0.2.0 adds pyvenv.cfg twice; the last copy is the one extraction keeps.
            members = {member.name: member for member in src.getmembers()}
            scripts = {name: _digest(src, m) for name, m in members.items() if name.startswith("bin/") and m.isfile()}
            for name in sorted(members):
                member = members[name]
                data = src.extractfile(member) if member.isfile() else None
                text = None
                if name == "pyvenv.cfg" and data is not None:
                    text = pyvenv_cfg(data.read().decode("utf-8"), interpreter)
                elif name.endswith(".dist-info/RECORD") and data is not None:
                    text = record(data.read().decode("utf-8"), name, scripts)
                elif member.issym() and member.linkname.startswith("/"):
                    if not name.startswith("bin/python"):
                        raise PackageError(f"{name} in the venv links to {member.linkname}, outside it")
                    member.linkname = interpreter
                if text is not None:
                    encoded = text.encode("utf-8")
                    member.size, data = len(encoded), io.BytesIO(encoded)
                member.mtime = epoch
                member.uid = member.gid = 0
                member.uname = member.gname = ""
                member.pax_headers = {}
                if not member.issym():
                    member.mode = 0o755 if member.isdir() or member.mode & 0o111 else 0o644
                dst.addfile(member, data)
    finally:
        raw.unlink(missing_ok=True)


def pyvenv_cfg(text: str, interpreter: str) -> str:
    """pyvenv.cfg for the cluster's interpreter, without ``command`` (it names the build directory)."""
    values = {
        key.strip(): value.strip() for key, value in (line.split("=", 1) for line in text.splitlines() if "=" in line)
    }
    values |= {"home": interpreter.rpartition("/")[0], "executable": interpreter}
    values.pop("command", None)
    return "".join(f"{key} = {value}\n" for key, value in values.items())


def record(text: str, name: str, scripts: dict[str, tuple[str, int]]) -> str:
    """A wheel's RECORD with the hashes of its console scripts as venv-pack rewrote them.

    pip hashed each script with the build venv's path in its shebang; venv-pack then rewrote the
    shebang to ``#!/usr/bin/env python3.11``, so the recorded hashes named the build directory.
    """
    site = posixpath.dirname(posixpath.dirname(name))
    rows = list(csv.reader(io.StringIO(text)))
    changed = False
    for row in rows:
        target = posixpath.normpath(posixpath.join(site, row[0])) if row else ""
        if target in scripts:
            row[1:] = [f"sha256={scripts[target][0]}", str(scripts[target][1])]
            changed = True
    if not changed:
        return text
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n" if "\r\n" in text else "\n").writerows(rows)
    return out.getvalue()


def _digest(archive: tarfile.TarFile, member: tarfile.TarInfo) -> tuple[str, int]:
    """A member's hash and size as RECORD writes them (PEP 376: urlsafe base64, no padding)."""
    data = archive.extractfile(member)
    content = data.read() if data is not None else b""
    digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode("ascii")
    return digest, len(content)


# --- helpers ----------------------------------------------------------------------------------


def file_entry(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return {"sha256": digest.hexdigest(), "size": path.stat().st_size}


def canonical(name: str) -> str:
    """A distribution name as PEP 503 normalises it (``PyYAML`` -> ``pyyaml``, ``ruamel.yaml`` -> ``ruamel-yaml``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _relative_files(directory: Path) -> list[str]:
    found = (p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())
    return sorted(name for name in found if name != MANIFEST)


def _size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.1f} kB"


@contextlib.contextmanager
def _timed(label: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    print(f"  {label:<48} {time.monotonic() - started:9.1f} s", flush=True)


def _run(cmd: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run ``cmd`` and return its output; on failure raise with the last line it printed."""
    done = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit code {done.returncode}"
        words = [Path(word).name if "/" in word else word for word in cmd[:5]]
        raise PackageError(f"{' '.join(words)} ... failed: {last}")
    return done.stdout


if __name__ == "__main__":
    sys.exit(main())
