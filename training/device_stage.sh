#!/usr/bin/env bash
# The last `run` call of a training stage on a lent GPU machine (docs/models.md, "On a lent
# GPU"; `python -m training device-pack` prints the calls). Run from the repository root
# there. $1: this call's pack folder (the last part of the SmolLM2 GGUF, its sha256, the
# wheels); $2: where the earlier calls left their parts. What comes back goes under $OUT:
# the stage's log, its adapter and exports along the way (training/device_return.py).
# RECIPE (default training/recipe_device.json) and SITE (where the wheels go) can be set.
set -euo pipefail
pack=$1
parts=$2
out=${OUT:?OUT: the folder whose files come back}
recipe=${RECIPE:-training/recipe_device.json}
site=${SITE:-/tmp/needle-site}
work=${WORK:-/tmp/needle-work}
mkdir -p "$parts" "$work"
# This call's part, and any the earlier calls left in the repository copy (its ignored
# folders stay between calls while the machine is warm, as /tmp does).
cp "$pack"/../*/base.part* "$parts"/
base=$work/base.gguf
# shellcheck disable=SC2046  # the part names hold no spaces
cat $(ls "$parts"/base.part* | sort -V) >"$base"
if ! echo "$(cat "$pack"/base.sha256)  $base" | sha256sum -c -; then
  # A part is missing when an earlier call ran on another machine (this one was not warm):
  # make all the calls again, one right after the other.
  echo "the joined base is not the SmolLM2 GGUF; parts found:" >&2
  ls -l "$parts" >&2
  exit 3
fi
bash training/device_wheels.sh "$pack"/whl "$site"
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
# Should the call be stopped at its limit, the newest export along the way still comes back.
(
  while sleep 15; do python3 -m training.device_return --latest "$out" "$work" || true; done
) &
copier=$!
status=0
python3 -m training reproduce --recipe "$recipe" --base "$base" "$work" 2>&1 \
  | tee "$out/stage.log" || status=$?
kill "$copier" 2>/dev/null || true
wait "$copier" 2>/dev/null || true
# The adapter and exports along the way, spread over the run, the last first, as many as
# come back (8 files of 16 MiB, 64 MiB in all; bigger files in pieces: training/device_return.py).
python3 -m training.device_return "$out" "$work"
ls -l "$out"
exit "$status"
