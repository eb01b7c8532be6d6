#!/usr/bin/env bash
# Download, here, the wheels that scripts/gpu/check.sh installs on the device machine (which
# reaches no package registry). Writes .whl/ in the repository root (git-ignored, ~39 MB; the
# device tool carries at most 64 MiB with the working tree).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
mkdir -p "${WHEELS:-.whl}"
# GPU_WHEELS=notebooks adds the notebook runner (check.sh's 'notebooks' stage; ~6 MB more)
LISTS=(scripts/gpu/wheels.txt)
[ "${GPU_WHEELS:-}" = notebooks ] && LISTS+=(scripts/gpu/wheels-notebooks.txt)
cat "${LISTS[@]}" | grep -v '^\s*#' | grep -v '^\s*$' | xargs "$PY" -m pip download --quiet --no-deps \
  --only-binary=:all: --python-version "${PYVER:-3.12}" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "${WHEELS:-.whl}"
ls "${WHEELS:-.whl}"
du -sh "${WHEELS:-.whl}"
