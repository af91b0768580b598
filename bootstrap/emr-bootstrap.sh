#!/usr/bin/env bash
# EMR bootstrap action: install the emr-feature-pipeline wheel into the cluster's Python 3.11.
#
# EMR runs bootstrap actions on every node before Spark starts, so pyspark and delta-spark are
# not installed from PyPI here: the cluster provides them (/usr/lib/spark, /usr/share/aws/delta).
# The wheel's other requirements (boto3, great-expectations, pydantic, pyyaml) are installed
# with pip, pinned by --constraints when given. Steps then run with
# spark.yarn.appMasterEnv.PYSPARK_PYTHON / spark.executorEnv.PYSPARK_PYTHON = that interpreter
# (`feature-pipeline deploy emr-step --python bootstrap`, the default).
#
# Idempotent: a node that already has this version with this sha256 in this interpreter is left
# alone (a rerun, or a node replaced by the same bootstrap action). Details: docs/deploy.md.
#
#   emr-bootstrap.sh [--python PATH] [--constraints S3_URI] [--sha256 HEX] [--state-dir DIR] WHEEL_S3_URI
set -euo pipefail

readonly PACKAGE=emr-feature-pipeline
# Provided by the cluster; never replaced from PyPI.
readonly CLUSTER_PROVIDED="pyspark delta-spark"

usage() {
    cat <<'EOF'
usage: emr-bootstrap.sh [--python PATH] [--constraints S3_URI] [--sha256 HEX] [--state-dir DIR] WHEEL_S3_URI

Install the emr-feature-pipeline wheel at WHEEL_S3_URI into PATH (default /usr/bin/python3.11).
  --python PATH         the interpreter steps use (installed with dnf when missing, on Amazon Linux)
  --constraints S3_URI  a pip constraints file pinning the wheel's requirements (e.g. constraints.txt)
  --sha256 HEX          refuse a downloaded wheel with another sha256 (deploy.json lists it)
  --state-dir DIR       where the installed version is recorded (default /var/lib/emr-feature-pipeline)
EOF
}

log() { printf '%s emr-bootstrap: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}
# EMR runs bootstrap actions as the hadoop user, with passwordless sudo.
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

python=/usr/bin/python3.11
constraints=""
expected_sha=""
state_dir=/var/lib/emr-feature-pipeline
while [[ $# -gt 0 ]]; do
    case $1 in
    --python | --constraints | --sha256 | --state-dir)
        [[ $# -ge 2 ]] || die "$1 needs a value; see --help"
        case $1 in
        --python) python=$2 ;;
        --constraints) constraints=$2 ;;
        --sha256) expected_sha=$2 ;;
        --state-dir) state_dir=$2 ;;
        esac
        shift 2
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    -*) die "unknown option $1; see --help" ;;
    *) break ;;
    esac
done
[[ $# -eq 1 ]] || die "expected one wheel URI, got $#; see --help"
wheel_uri=$1
wheel=${wheel_uri##*/}
[[ $wheel_uri == s3://* && $wheel == emr_feature_pipeline-*-py3-none-any.whl ]] ||
    die "$wheel_uri is not an s3:// URI of an emr_feature_pipeline-<version>-py3-none-any.whl"
version=${wheel#emr_feature_pipeline-}
version=${version%%-*}

if [[ ! -x $python ]]; then
    command -v dnf >/dev/null || die "$python does not exist; pass --python with the cluster's Python 3.11"
    log "$python is missing: installing ${python##*/} with dnf"
    as_root dnf install -y -q "${python##*/}" "${python##*/}-pip"
fi

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
aws s3 cp --only-show-errors "$wheel_uri" "$workdir/$wheel"
sha=$(sha256sum "$workdir/$wheel" | cut -d' ' -f1)
[[ -z $expected_sha || $sha == "$expected_sha" ]] || die "$wheel_uri has sha256 $sha, expected $expected_sha"

marker=$state_dir/installed
wanted="$PACKAGE $version sha256:$sha $python"
installed=$("$python" -m pip show "$PACKAGE" 2>/dev/null | sed -n 's/^Version: //p' || true)
if [[ -f $marker && $(<"$marker") == "$wanted" && $installed == "$version" ]]; then
    log "$PACKAGE $version (sha256 $sha) is already installed in $python; nothing to do"
    exit 0
fi

# The wheel's requirements without its extras and without what the cluster provides.
"$python" - "$workdir/$wheel" "$CLUSTER_PROVIDED" >"$workdir/requirements.txt" <<'EOF'
import re
import sys
import zipfile
from email.parser import Parser

wheel, provided = sys.argv[1], set(sys.argv[2].split())
with zipfile.ZipFile(wheel) as archive:
    (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
    message = Parser().parsestr(archive.read(metadata).decode("utf-8"))
for requirement in message.get_all("Requires-Dist") or []:
    name = re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0]
    if "extra ==" not in requirement and name.lower().replace("_", "-") not in provided:
        print(requirement)
EOF

pip_args=(--disable-pip-version-check --no-input --quiet)
if [[ -n $constraints ]]; then
    aws s3 cp --only-show-errors "$constraints" "$workdir/constraints.txt"
    pip_args+=(--constraint "$workdir/constraints.txt")
fi
if [[ -s $workdir/requirements.txt ]]; then
    log "installing the requirements of $wheel: $(paste -sd' ' "$workdir/requirements.txt")"
    as_root "$python" -m pip install "${pip_args[@]}" --requirement "$workdir/requirements.txt"
fi
as_root "$python" -m pip install "${pip_args[@]}" --no-deps --force-reinstall "$workdir/$wheel"

as_root mkdir -p "$state_dir"
printf '%s\n' "$wanted" | as_root tee "$marker" >/dev/null
log "installed $PACKAGE $version (sha256 $sha) into $python ($("$python" --version 2>&1)) from $wheel_uri"
