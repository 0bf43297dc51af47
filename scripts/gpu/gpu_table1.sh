#!/usr/bin/env bash
# Table I's protocol in one call on a lent GPU (see scripts/gpu/gpu_table1.py for the choices).
#   OUT=/where/summaries/go bash scripts/gpu/gpu_table1.sh fer2013_packed.npz [gpu_table1.py options]
# Environment: PYTHON (default python), DEVICE (cuda), JOBS (16), DEADLINE (540 s),
# TRAIN_OPTS (extra mtl-heads train options; default "--precision bfloat16 --channels-last").
set -euo pipefail
packed=${1:?usage: OUT=folder bash scripts/gpu/gpu_table1.sh PACKED.npz [options]}
shift
: "${OUT:?set OUT to the folder for the summaries}"
cd "$(dirname "$0")/../.."
# the lent machine gets the checkout, not an installed package: the package and the packing
# script (unpack) come from the checkout
export PYTHONPATH="$PWD:$PWD/scripts/gpu${PYTHONPATH:+:$PYTHONPATH}"
# shellcheck disable=SC2086
exec "${PYTHON:-python}" scripts/gpu/gpu_table1.py --packed "$packed" --out "$OUT" \
    --jobs "${JOBS:-16}" --deadline "${DEADLINE:-540}" "$@" \
    -- --device "${DEVICE:-cuda}" ${TRAIN_OPTS---precision bfloat16 --channels-last}
