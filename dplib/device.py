"""Where and in what precision the benchmarks compute.

    device = resolve_device("auto")          # "cuda" when a GPU is visible, else "cpu"
    dtype = autocast_dtype("bfloat16")       # None (float32), torch.float16 or torch.bfloat16
    with autocast(device, dtype): ...        # a no-op for float32

Float32 is every benchmark's default (the paper's). float16 suits GPUs (tensor cores),
bfloat16 CPUs with AMX or AVX512-BF16; the bench scripts measure how much each changes the
scores (README, Performance).
"""

import contextlib

import torch

PRECISIONS = (False, "float16", "bfloat16")


def resolve_device(device="auto"):
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'; anything else as given."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} asked for, but no CUDA GPU is visible; use device='cpu' or 'auto'")
    return device


def autocast_dtype(precision, name="autocast"):
    """The autocast dtype for a precision parameter: False/None (float32), "float16" or "bfloat16"."""
    if precision is False or precision is None:
        return None
    if precision in ("float16", "bfloat16"):
        return getattr(torch, precision)
    raise ValueError(f"{name} must be False, 'float16' or 'bfloat16', got {precision!r}: float16 on a GPU, "
                     "bfloat16 on a CPU with AMX or AVX512-BF16 (faster there, less precise); the bench scripts "
                     "measure both and how much they change the scores")


def autocast(device, dtype):
    """torch.autocast on `device` in `dtype`, or nothing for dtype None (float32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)
