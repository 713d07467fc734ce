"""dplib.device: the device and precision helpers, against hand-written CPU descriptions."""

import pytest
import torch

from dplib.device import autocast, autocast_dtype, cpu_flags, native_precisions, resolve_device

# The flags line of /proc/cpuinfo on the two kinds of CPU the project ran on (trimmed): an AMD
# EPYC with AVX2 only (bench/b1.py's bfloat16 variants ran emulated there) and an Intel Xeon
# with AMX (Sapphire Rapids: amx_bf16 and avx512_bf16, amx_fp16 only from Granite Rapids on).
EPYC_AVX2 = "fpu vme de pse tsc msr sse sse2 ssse3 fma cx16 sse4_1 sse4_2 avx f16c avx2 bmi1 bmi2 sha_ni"
XEON_AMX = ("fpu vme sse sse2 avx f16c avx2 avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16 amx_bf16 "
            "amx_tile amx_int8")


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: {EPYC_AVX2}\nbogomips\t: 4890.85\n")
    assert cpu_flags(cpuinfo) == frozenset(EPYC_AVX2.split())
    assert cpu_flags(tmp_path / "absent") == frozenset()  # not Linux: nothing known, nothing assumed native


def test_a_cpu_without_the_instructions_has_no_native_reduced_precision():
    # f16c converts float16 but does not compute in it: not native
    assert native_precisions("cpu", flags=EPYC_AVX2.split()) == ()
    assert native_precisions("cpu", flags=XEON_AMX.split()) == ("bfloat16",)
    assert native_precisions("cpu", flags=["avx512_fp16", "avx512_bf16"]) == ("float16", "bfloat16")
    assert native_precisions("cpu", flags=[]) == ()


def test_precision_names_and_devices():
    assert autocast_dtype(False) is None and autocast_dtype("bfloat16") is torch.bfloat16
    with pytest.raises(ValueError, match="autocast must be False, 'float16' or 'bfloat16', got 'fp16'"):
        autocast_dtype("fp16")
    assert resolve_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        assert resolve_device("auto") == "cpu"
        with pytest.raises(RuntimeError, match="no CUDA GPU is visible"):
            resolve_device("cuda")
    with autocast("cpu", torch.bfloat16):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with autocast("cpu", None):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
