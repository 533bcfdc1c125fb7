#!/usr/bin/env bash
# Install the wheels a lent GPU machine lacks (`python -m training device-pack` packs them:
# gguf and what it needs) into a folder of their own, offline; put it on PYTHONPATH after.
# $1: the folder of wheels; $2: where they go. Used by device-pack's first call and by
# device_stage.sh.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target "$2" "$1"/*.whl
