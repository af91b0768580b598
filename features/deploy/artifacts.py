"""One artifacts prefix on S3: the fixed layout ``deploy upload`` writes and every request reads.

``make package`` leaves its files in ``dist/`` with ``dist/manifest.json`` (sha256 of each). The
upload copies them to keys named by role, not by build, so a step, a job run, a schedule or a
CloudFormation stack needs nothing but the prefix::

    <prefix>/emr_feature_pipeline-<v>-py3-none-any.whl   the wheel (the EMR bootstrap action installs it)
    <prefix>/environment.tar.gz                          the venv-pack archive (spark.archives=...#environment)
    <prefix>/features.zip                                the --py-files zip
    <prefix>/jobs/build_features.py                      the spark-submit entry points
    <prefix>/conf.tar.gz                                 conf/emr.yaml, conf/serverless.yaml (...#conf)
    <prefix>/bootstrap/emr-bootstrap.sh                  the EMR bootstrap action
    <prefix>/constraints.txt                             the pins the archive was built with
    <prefix>/manifest.json                               dist/manifest.json as built
    <prefix>/deploy.json                                 the record below, written last

``deploy.json`` lists every key with its sha256 and the ``${NAME}`` variables each conf file
reads. It is written only after every other object was read back and matched, so a prefix with a
``deploy.json`` is complete; rolling back is pointing a command at an older prefix
(docs/deploy.md#rolling-back).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from features.config import _ENV_REF

RECORD = "deploy.json"
DIST_MANIFEST = "manifest.json"
ENVIRONMENT = "environment.tar.gz"
PY_FILES = "features.zip"
CONF_ARCHIVE = "conf.tar.gz"
BOOTSTRAP = "bootstrap/emr-bootstrap.sh"
CONSTRAINTS = "constraints.txt"
#: Where the conf archive is unpacked in the driver's working directory (``...#conf``), so the
#: job reads ``--conf conf/emr.yaml`` exactly as in a clone of the repository.
CONF_DIR = "conf"
RECORD_FORMAT = 1

_BUCKET = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
_S3_URI = re.compile(rf"^s3://(?P<bucket>{_BUCKET})(?:/(?P<key>.*))?$")


class DeployError(RuntimeError):
    """A deploy command cannot start: nothing was changed, and the message says what to do."""


class DeployFailedError(DeployError):
    """A deploy command failed after it changed something (an upload, a submitted run)."""


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    #: Without leading or trailing slashes; empty for the bucket itself.
    key: str = ""

    @classmethod
    def parse(cls, text: str, option: str = "--artifacts") -> S3Uri:
        match = _S3_URI.match(text.strip())
        if not match:
            raise DeployError(
                f"{option} {text!r} is not an s3:// URI; use e.g. s3://my-artifacts/feature-pipeline/0.1.0"
            )
        return cls(match["bucket"], (match["key"] or "").strip("/"))

    def child(self, relative: str) -> S3Uri:
        return S3Uri(self.bucket, f"{self.key}/{relative}" if self.key else relative)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}" if self.key else f"s3://{self.bucket}"


@dataclass(frozen=True, kw_only=True)
class Artifacts:
    """What ``<prefix>/deploy.json`` says the prefix holds."""

    prefix: S3Uri
    version: str
    #: Every key under the prefix (``deploy.json`` aside) -> its sha256.
    objects: Mapping[str, str]
    #: Conf file name inside ``conf.tar.gz`` -> the ``${NAME}`` variables it reads.
    conf_env: Mapping[str, tuple[str, ...]]
    #: The venv-pack archive's packages and versions as ``make package`` recorded them.
    versions: Mapping[str, str] = field(default_factory=dict)

    @property
    def wheel(self) -> str | None:
        return next((key for key in self.objects if key.endswith(".whl")), None)

    def uri(self, key: str, what: str) -> str:
        """The s3:// URI of ``key``; a DeployError naming the fix when the prefix lacks it."""
        if key not in self.objects:
            raise DeployError(
                f"{self.prefix} holds no {key} ({what}); build it with `make package` and run "
                f"`feature-pipeline deploy upload --artifacts {self.prefix}`"
            )
        return str(self.prefix.child(key))

    def entry_point(self, job: str) -> str:
        return self.uri(f"jobs/{job}.py", f"the {job} entry point")

    def conf_path(self, name: str) -> str:
        """``conf/<name>`` as the job sees it once ``conf.tar.gz#conf`` is unpacked."""
        if name not in self.conf_env:
            known = ", ".join(sorted(self.conf_env)) or "none"
            raise DeployError(
                f"{self.prefix}/{CONF_ARCHIVE} has no {name} (it has: {known}); upload it with --conf-file"
            )
        return f"{CONF_DIR}/{name}"

    def to_json(self) -> str:
        record = {
            "format": RECORD_FORMAT,
            "version": self.version,
            "objects": dict(sorted(self.objects.items())),
            "conf_env": {name: list(names) for name, names in sorted(self.conf_env.items())},
            "versions": dict(sorted(self.versions.items())),
        }
        return json.dumps(record, indent=2) + "\n"

    @classmethod
    def from_json(cls, prefix: S3Uri, text: str) -> Artifacts:
        try:
            record = json.loads(text)
            if record.get("format") != RECORD_FORMAT:
                raise DeployError(
                    f"{prefix}/{RECORD} has format {record.get('format')!r}, this version reads {RECORD_FORMAT}; "
                    "upload again with this version"
                )
            return cls(
                prefix=prefix,
                version=str(record["version"]),
                objects={str(k): str(v) for k, v in record["objects"].items()},
                conf_env={str(k): tuple(v) for k, v in record["conf_env"].items()},
                versions={str(k): str(v) for k, v in record.get("versions", {}).items()},
            )
        except (ValueError, KeyError, AttributeError, TypeError) as exc:
            raise DeployError(f"{prefix}/{RECORD} is not a deploy record ({exc}); upload again") from None


@dataclass(frozen=True, kw_only=True)
class Upload:
    """One object to put under the prefix: a local file or bytes built here."""

    key: str
    sha256: str
    size: int
    #: What it is, for messages (``dist/jobs/build_features.py``, ``conf/emr.yaml + ...``).
    source: str
    path: Path | None = None
    body: bytes | None = None


@dataclass(frozen=True, kw_only=True)
class Plan:
    uploads: list[Upload]
    version: str
    conf_env: dict[str, tuple[str, ...]]
    versions: dict[str, str]

    def record(self, prefix: S3Uri) -> Artifacts:
        objects = {item.key: item.sha256 for item in self.uploads}
        return Artifacts(
            prefix=prefix, version=self.version, objects=objects, conf_env=self.conf_env, versions=self.versions
        )


def plan_upload(dist: Path, conf_files: Sequence[Path], bootstrap: Path) -> Plan:
    """What ``deploy upload`` puts under a prefix, every file checked against ``dist/manifest.json``.

    The manifest (bootstrap/package.py, docs/packaging.md) lists each file's sha256 and which file
    is the wheel, the venv-pack archive and the ``--py-files`` zip; they get the fixed keys above,
    the rest (``jobs/*.py``) keep their paths. The constraints file the archive was built with is
    uploaded as ``constraints.txt``, so the bootstrap action can pin the same versions.
    """
    manifest_path = dist / DIST_MANIFEST
    manifest = _read_manifest(manifest_path)
    roles = manifest.get("artifacts") or {}
    named = (
        (roles.get("wheel"), roles.get("wheel")),
        (roles.get("archive"), ENVIRONMENT),
        (roles.get("py_files"), PY_FILES),
    )
    keys = {name: key for name, key in named if name}
    uploads: dict[str, Upload] = {}
    for relative, expected in _manifest_files(manifest, manifest_path):
        key = keys.get(relative) or relative
        uploads[key] = _file(key, dist / relative, expected)
    for key, what in ((roles.get("wheel"), "the wheel"), ("jobs/build_features.py", "the job entry point")):
        if key not in uploads:
            raise DeployError(f"{manifest_path} lists no {what}; run `make package` again")
    archive = manifest.get("archive") or {}
    constraints = archive.get("constraints")
    if constraints:
        uploads[CONSTRAINTS] = _file(
            CONSTRAINTS,
            Path(constraints["file"]),
            constraints["sha256"],
            fix="run from the clone's root, after `make package` with that constraints file",
        )
    uploads[DIST_MANIFEST] = _bytes(DIST_MANIFEST, manifest_path.read_bytes(), str(manifest_path))
    uploads[CONF_ARCHIVE] = _bytes(CONF_ARCHIVE, conf_archive(conf_files), " + ".join(map(str, conf_files)))
    uploads[BOOTSTRAP] = _file(BOOTSTRAP, bootstrap, fix="run from the clone's root, or pass --bootstrap PATH")
    return Plan(
        uploads=sorted(uploads.values(), key=lambda item: item.key),
        version=str(manifest.get("version", "")),
        conf_env={path.name: conf_variables(path) for path in conf_files},
        versions={str(k): str(v) for k, v in (archive.get("packages") or {}).items()},
    )


def _file(key: str, path: Path, expected: str | None = None, fix: str = "run `make package` again") -> Upload:
    if not path.is_file():
        raise DeployError(f"{path} does not exist; {fix}")
    digest = sha256_file(path)
    if expected is not None and digest != expected:
        raise DeployError(
            f"{path} changed since `make package` (sha256 {digest[:12]}..., manifest {expected[:12]}...); {fix}"
        )
    return Upload(key=key, sha256=digest, size=path.stat().st_size, source=str(path), path=path)


def _bytes(key: str, body: bytes, source: str) -> Upload:
    return Upload(key=key, sha256=hashlib.sha256(body).hexdigest(), size=len(body), source=source, body=body)


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeployError(f"{path} does not exist; run `make package` (or pass --dist DIR)") from None
    except ValueError as exc:
        raise DeployError(f"{path} is not JSON ({exc}); run `make package` again") from None
    if not isinstance(manifest, dict):
        raise DeployError(f"{path} must hold a JSON object; run `make package` again")
    return manifest


def _manifest_files(manifest: Mapping[str, Any], where: Path) -> Iterator[tuple[str, str]]:
    """(path relative to dist/, sha256) of each file ``make package`` listed."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise DeployError(f"{where} lists no files; run `make package` again")
    for name, entry in sorted(files.items()):
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts or not isinstance(entry.get("sha256"), str):
            raise DeployError(f"{where}: {name!r} is not a file inside dist/ with a sha256; run `make package` again")
        yield str(relative), entry["sha256"].lower()


def conf_archive(files: Sequence[Path]) -> bytes:
    """A tar.gz of the conf files, byte-identical for identical files (no times, owners or order)."""
    names = [path.name for path in files]
    if len(set(names)) != len(names):
        raise DeployError(f"--conf-file names must differ: {', '.join(names)}")
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as gz,
        tarfile.open(fileobj=gz, mode="w") as tar,
    ):
        for path in sorted(files, key=lambda p: p.name):
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise DeployError(
                    f"cannot read conf file {path}: {exc.strerror}; run from the clone's root, or pass --conf-file"
                ) from None
            info = tarfile.TarInfo(path.name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def conf_variables(path: Path) -> tuple[str, ...]:
    """The ``${NAME}`` environment variables the conf file's values read, sorted."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DeployError(f"cannot read conf file {path}: {exc}") from None
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.update(_ENV_REF.findall(value))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(raw)
    return tuple(sorted(found))


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
