"""The package's engine reproduces the engine it replaced (examples/train.py before the move).

``engine_reference.json`` holds the final metrics and per-epoch records of four tiny
SyntheticFaces runs made by ``examples/train.py`` at commit d35c931, covering the baseline, the
spatial head with pre-drawn maps and the full transformations, the paper's linear head with maps
drawn from the augmented landmarks, and bfloat16 autocast with channels-last and a multistep
schedule. Same seed, same data: the same numbers. Floating-point kernels differ between CPU
kinds (AVX2 and AVX-512 oneDNN paths), so the numbers are compared exactly on the CPU that made
the file and to 4 decimals (the digits the logs print) on others.
"""

import json
import math
from pathlib import Path

import pytest
import torch

from mtl_heads.train import parse_args, train
from mtl_heads.train.precision import cpu_flags

REFERENCE = json.loads((Path(__file__).parent / "engine_reference.json").read_text())
TIMING = ("epoch_time", "samples_per_s", "train_time_s", "eval_time_s")
NEW_KEYS = ("precision", "native_bf16")  # what the engine records since the move


def strip(obj):
    if isinstance(obj, dict):
        return {k: strip(v) for k, v in obj.items() if k not in TIMING + NEW_KEYS}
    if isinstance(obj, list):
        return [strip(v) for v in obj]
    return obj


def same_cpu() -> bool:
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                  if line.startswith("model name")), None)
    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16"})
    return model == REFERENCE["cpu"] and flags == REFERENCE["cpu_flags"]


def rounded(obj, digits: int):
    if isinstance(obj, float) and math.isfinite(obj):
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, list):
        return [rounded(v, digits) for v in obj]
    return obj


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REFERENCE["runs"]))
def test_engine_reproduces_the_old_engine(tmp_path, name):
    run = REFERENCE["runs"][name]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the reference was made
    try:
        final = train(parse_args([*REFERENCE["common"], *run["argv"], "--output", str(tmp_path)]))
    finally:
        torch.set_num_threads(threads)
    history = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    got = {"final": strip(final), "epochs": strip(history)}
    want = {"final": run["final"], "epochs": run["epochs"]}
    if same_cpu():
        assert got == want
    else:
        assert rounded(got, 4) == rounded(want, 4)
    assert final["precision"] == ("bfloat16" if "--amp" in run["argv"] else "float32")
