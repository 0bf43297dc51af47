"""The run's numeric precision: float32, or bfloat16 autocast where the device computes it.

``torch.autocast(device, dtype=torch.bfloat16)`` runs convolutions and matrix products in
bfloat16 through oneDNN (CPU) or cuDNN/cuBLAS (CUDA); losses and metrics stay float32. On a CPU it
is fast only with native bfloat16 instructions (``avx512_bf16`` or ``amx_bf16``); elsewhere
oneDNN emulates them, slower than float32 (``benchmarks/precision.py``).
"""

import contextlib
from pathlib import Path

import torch

__all__ = ["autocast", "cpu_flags", "native_bf16", "resolve_precision"]

_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The instruction-set flags of the first CPU in ``cpuinfo`` (empty where it is unreadable)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def native_bf16(device: torch.device | str = "cpu", cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether ``device`` computes bfloat16 natively (CUDA with bf16, a CPU with avx512_bf16 or
    amx_bf16 in ``cpuinfo``)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return any(f in cpu_flags(cpuinfo) for f in _BF16_FLAGS)


def resolve_precision(requested: str, device: torch.device | str,
                      cpuinfo: str | Path = "/proc/cpuinfo") -> tuple[str, str | None]:
    """The precision a run uses for ``--precision requested``, and a note when ``auto`` falls back.

    Examples:
        >>> resolve_precision("float32", "cpu")
        ('float32', None)
        >>> resolve_precision("auto", "cpu", cpuinfo="/nonexistent")[0]
        'float32'
    """
    if requested not in ("float32", "bfloat16", "auto"):
        raise ValueError(f"--precision must be float32, bfloat16 or auto, got {requested!r}")
    if requested != "auto":
        return requested, None
    if native_bf16(device, cpuinfo):
        return "bfloat16", None
    device = torch.device(device)
    what = ("this GPU" if device.type == "cuda"
            else f"this CPU ({' or '.join(_BF16_FLAGS)} not in {cpuinfo})")
    return "float32", f"--precision auto: float32, {what} has no native bfloat16"


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on ``device`` for ``precision == "bfloat16"``, else a no-op context."""
    if precision != "bfloat16":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
