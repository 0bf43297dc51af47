#!/usr/bin/env bash
# Table I's protocol in one call on a lent GPU (see scripts/gpu_table1.py for the choices).
#   OUT=/where/summaries/go bash scripts/gpu_table1.sh fer2013_packed.npz [gpu_table1.py options]
# Environment: PYTHON (default python), DEVICE (cuda), JOBS (16), DEADLINE (540 s),
# TRAIN_OPTS (extra examples/train.py options; default "--amp --channels-last").
set -euo pipefail
packed=${1:?usage: OUT=folder bash scripts/gpu_table1.sh PACKED.npz [options]}
shift
: "${OUT:?set OUT to the folder for the summaries}"
cd "$(dirname "$0")/.."
# the lent machine gets the checkout, not an installed package: the package and the packing
# script (unpack) come from the checkout
export PYTHONPATH="$PWD:$PWD/scripts${PYTHONPATH:+:$PYTHONPATH}"
# shellcheck disable=SC2086
exec "${PYTHON:-python}" scripts/gpu_table1.py --packed "$packed" --out "$OUT" \
    --jobs "${JOBS:-16}" --deadline "${DEADLINE:-540}" "$@" \
    -- --device "${DEVICE:-cuda}" ${TRAIN_OPTS---amp --channels-last}
