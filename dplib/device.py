"""Where and in what precision the benchmarks compute.

    device = resolve_device("auto")          # "cuda" when a GPU is visible, else "cpu"
    dtype = autocast_dtype("bfloat16")       # None (float32), torch.float16 or torch.bfloat16
    with autocast(device, dtype): ...        # a no-op for float32

Float32 is every benchmark's default (the paper's). float16 suits GPUs (tensor cores),
bfloat16 CPUs with AMX or AVX512-BF16; the bench scripts measure how much each changes the
scores (bench/README.md).
"""

import contextlib
from pathlib import Path

import torch
from .errors import InputError, Unavailable

PRECISIONS = (False, "float16", "bfloat16")
# CPU instruction-set flags (as Linux's /proc/cpuinfo names them) that compute a reduced
# precision natively; without one, torch emulates it at a fraction of float32's speed (an AVX2
# CPU ran bench/b1.py's bfloat16 variants for most of 17 minutes).
NATIVE_CPU_FLAGS = {"float16": ("avx512_fp16", "amx_fp16"), "bfloat16": ("avx512_bf16", "amx_bf16")}


def resolve_device(device="auto"):
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'; anything else as given."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise Unavailable(f"device {device!r} asked for, but no CUDA GPU is visible; use device='cpu' or 'auto'")
    return device


def autocast_dtype(precision, name="autocast"):
    """The autocast dtype for a precision parameter: False/None (float32), "float16" or "bfloat16"."""
    if precision is False or precision is None:
        return None
    if precision in ("float16", "bfloat16"):
        return getattr(torch, precision)
    raise InputError(f"{name} must be False, 'float16' or 'bfloat16', got {precision!r}: float16 on a GPU, "
                     "bfloat16 on a CPU with AMX or AVX512-BF16 (faster there, less precise); the bench scripts "
                     "measure both and how much they change the scores")


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The CPU's instruction-set flags; empty where the system does not list them (not Linux)."""
    try:
        lines = Path(cpuinfo).read_text().splitlines()
    except OSError:
        return frozenset()
    return next((frozenset(line.split(":", 1)[1].split()) for line in lines if line.startswith("flags")), frozenset())


def native_precisions(device, flags=None):
    """The reduced precisions `device` computes natively, in PRECISIONS' order: on a CUDA GPU
    float16, and bfloat16 where the GPU supports it; on a CPU those whose instructions it has
    (NATIVE_CPU_FLAGS; `flags` defaults to this CPU's). Anything else runs emulated, slowly."""
    if torch.device(device).type == "cuda":
        return ("float16",) + (("bfloat16",) if torch.cuda.is_bf16_supported() else ())
    flags = cpu_flags() if flags is None else flags
    return tuple(p for p, needed in NATIVE_CPU_FLAGS.items() if set(needed) & set(flags))


def autocast(device, dtype):
    """torch.autocast on `device` in `dtype`, or nothing for dtype None (float32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)
