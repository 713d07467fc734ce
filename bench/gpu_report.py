"""The device report of `make gpu-check`: each benchmark's step at the paper's sizes for the
cheapest and the heaviest network of each family (by whole-network MFLOPs, Table II's 14),
in float32 and under autocast, with peak memory; the float32 vs autocast speed-up; the full
grid's device-hours from the measured step times; the peak memory of every network recorded
by tests/test_gpu.py; and the output of every bench/*.py run with --device. One JSON file per
device: results/gpu/<device name>.json.

    python bench/gpu_report.py [--device cuda] [--out results/gpu] [--memory-record runs/gpu/memory.jsonl]
                               [--bench-timeout 3600] [--budget 600] [--smoke]

The steps measured share --budget seconds (bench/common.interleaved: rounds sized by time;
--repeat fixes them). --smoke (for the tests on a CPU): small sizes, two small networks, one
round each, no bench scripts.
"""

import argparse
import datetime
import json
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import add_rounds_arguments, grid_lengths, interleaved, notebook_defaults, rounds, rounds_line  # noqa: E402

from dplib.benchmarks import b2, b3, b4, benchmark as benchmark_record  # noqa: E402
from dplib.data import bapps, embeddings  # noqa: E402
from dplib.attributes import attributes_table  # noqa: E402
from dplib.lossnets import LossNetwork  # noqa: E402
from dplib.train import adam  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = {name: notebook_defaults(Path(benchmark_record(name).notebook).stem) for name in ("b1", "b2", "b3", "b4")}


# (batch, side) of each benchmark's step at the paper's sizes: the notebooks' batch sizes and
# image sides (B1: BAPPS's 64 px patches; B4: each dataset's model input)
PAPER = {"b1": (DEFAULTS["b1"]["batch_size"], bapps.PATCH), "b2": (DEFAULTS["b2"]["batch_size"], DEFAULTS["b2"]["crop"]),
         "b3": (DEFAULTS["b3"]["batch_size"], DEFAULTS["b3"]["size"]),
         **{f"b4_{d}": (DEFAULTS["b4"]["batch_size"], embeddings.SIZE[d]) for d in ("svhn", "stl10")}}
SMOKE = {"b1": (4, 64), "b2": (2, 64), "b3": (2, 64), "b4_svhn": (4, 64), "b4_stl10": (4, 96)}


def families(smoke):
    """{family: (cheapest, heaviest)} by whole-network MFLOPs at 224 px (--smoke: two small
    networks, without measuring the attributes)."""
    if smoke:
        return {"smoke": ("squeezenet1_1", "alexnet")}
    table = attributes_table(224).drop_duplicates("arch")
    return {family: (group.sort_values("mflops").arch.iloc[0], group.sort_values("mflops").arch.iloc[-1])
            for family, group in table.groupby("family", sort=False)}


def step_function(benchmark, arch, batch, side, device):
    """A callable doing one step of `benchmark` with `arch`: B1's shared pass over all four
    points, the training benchmarks' step with the middle point ("mid")."""
    if benchmark == "b1":  # no training: the shared 4-point pass over 3 x batch patches
        network = LossNetwork(arch, weights=None).to(device)
        patches = torch.rand(3 * batch, 3, side, side, device=device)
        return lambda: network(patches)
    network = LossNetwork(arch, "mid", weights=None).to(device)
    if benchmark == "b2":
        d = DEFAULTS["b2"]
        model = b2.build_model({**d, "scale": 4})
        loss_fn, data = b2.make_loss(network, 4, device), torch.rand(batch, 3, side, side)
    elif benchmark == "b3":
        d = DEFAULTS["b3"]
        model = b3.build_model(d)
        loss_fn = b3.make_loss(network, d["mu"], device, weights=d["iteration_weights"])
        data = (torch.rand(batch, 3, side, side), (torch.rand(batch, 1, side, side) > 0.9).float())
    else:
        d, dataset = DEFAULTS["b4"], benchmark.split("_")[1]
        model = b4.build_autoencoder("I-I-PS", dataset, 0, d["embedding_size"], d["variational"], d["autoencoder"],
                                     d["feature_decoder_sigmoid"])
        loss_fn = b4.make_loss("I-I-PS", dataset, network, device, d["loss_reduction"], d["kl_weight"], d["feature_sigmoid"])
        data = (torch.rand(batch, 3, side, side), torch.zeros(batch), torch.arange(batch))
    model = model.to(device)
    optimizer = adam(model.parameters(), lr=1e-3)

    def step():
        loss = loss_fn(model, data)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def measure(benchmark, arch, precision, sizes, device, timing):
    """Seconds per step and peak memory (GiB, CUDA only) of one benchmark step, its rounds
    `timing` (interleaved's keywords)."""
    batch, side = sizes[benchmark]
    dtype = {"float32": None, "float16": torch.float16, "bfloat16": torch.bfloat16}[precision]
    step = step_function(benchmark, arch, batch, side, device)

    def run():
        with torch.autocast(torch.device(device).type, dtype=dtype or torch.float32, enabled=dtype is not None):
            if benchmark == "b1":
                with torch.no_grad():
                    step()
            else:
                step()

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    seconds = interleaved({"step": run}, **timing)["step"]
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    return {"benchmark": benchmark, "arch": arch, "precision": precision, "batch": batch, "side": side,
            "seconds_per_step": seconds, "steps_per_second": 1 / seconds, "peak_memory_gib": peak}


def device_hours(rows, steps_per_run, runs):
    """The full grid's device-hours per benchmark: the mean measured step time (float32) of
    the networks measured, times the steps per run, times the runs."""
    hours = {}
    for benchmark in steps_per_run:
        times = [r["seconds_per_step"] for r in rows if r["benchmark"] == benchmark and r["precision"] == "float32"]
        if times:
            hours[benchmark] = sum(times) / len(times) * steps_per_run[benchmark] * runs[benchmark] / 3600
    return hours


def speedups(rows, amp):
    """float32 seconds / autocast seconds for each benchmark and network."""
    by_key = {(r["benchmark"], r["arch"], r["precision"]): r["seconds_per_step"] for r in rows}
    return [{"benchmark": b, "arch": a, "speedup": by_key[(b, a, "float32")] / by_key[(b, a, amp)]}
            for (b, a, p) in by_key if p == "float32" and (b, a, amp) in by_key]


def run_bench_scripts(device, timeout):
    """Each bench/*.py with --device, its output kept; a script past `timeout` is recorded as such."""
    outputs = {}
    for script in sorted(Path(__file__).parent.glob("b[0-9]*.py")):
        start = time.perf_counter()
        try:
            done = subprocess.run([sys.executable, str(script), "--device", device], capture_output=True, text=True,
                                  timeout=timeout)
            outputs[script.name] = {"returncode": done.returncode, "stdout": done.stdout,
                                    "stderr_tail": done.stderr[-4000:]}
        except subprocess.TimeoutExpired as expired:
            outputs[script.name] = {"returncode": None, "timed_out_after_s": timeout,
                                    "stdout": (expired.stdout or b"").decode(errors="replace")
                                    if isinstance(expired.stdout, bytes) else (expired.stdout or "")}
        outputs[script.name]["seconds"] = time.perf_counter() - start
    return outputs


def device_name(device):
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return platform.processor() or platform.machine() or "cpu"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", default="results/gpu")
    parser.add_argument("--memory-record", default="runs/gpu/memory.jsonl",
                        help="the peak memory rows tests/test_gpu.py wrote ($DPLIB_GPU_RECORD)")
    parser.add_argument("--junit", default="runs/gpu/junit.xml", help="the gpu tests' JUnit XML (outcomes)")
    parser.add_argument("--bench-timeout", type=int, default=3600, help="seconds per bench script")
    add_rounds_arguments(parser, budget_s=600)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("gpu_report: --device cuda but torch sees no CUDA GPU; run it on a machine with an NVIDIA GPU")
    sizes = SMOKE if args.smoke else PAPER
    amp = "float16" if device.startswith("cuda") else "bfloat16"
    name = device_name(device)
    networks_of = families(args.smoke)
    measured = sum(len(dict.fromkeys(networks)) for networks in networks_of.values()) * len(sizes) * 2
    timing = {"repeat": 1} if args.smoke else rounds(args, measured)
    print(f"torch {torch.__version__}, {name}; {'one round each' if args.smoke else rounds_line(args)}", flush=True)
    steps_per_run, runs = grid_lengths("b1", "b2", "b3", "b4")
    rows = []
    for family, networks in networks_of.items():
        for arch in dict.fromkeys(networks):  # a one-network family once
            for benchmark in sizes:
                for precision in ("float32", amp):
                    rows.append(measure(benchmark, arch, precision, sizes, device, timing) | {"family": family})
                    r = rows[-1]
                    print(f"{benchmark:9s} {arch:18s} {precision:9s} {r['steps_per_second']:8.2f} steps/s"
                          + (f"  peak {r['peak_memory_gib']:.2f} GiB" if r["peak_memory_gib"] is not None else ""),
                          flush=True)
    report = {
        "device": name, "device_argument": device, "torch": torch.__version__,
        "cuda": torch.version.cuda, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "smoke": args.smoke, "sizes": {b: {"batch": n, "side": s} for b, (n, s) in sizes.items()},
        "autocast": amp, "steps": rows, "speedup_autocast_over_float32": speedups(rows, amp),
        "grid_device_hours": device_hours(rows, steps_per_run, runs),
        "steps_per_run": steps_per_run, "runs": runs,
    }
    memory = Path(args.memory_record)
    if memory.is_file():
        report["network_peak_memory"] = [json.loads(line) for line in memory.read_text().splitlines() if line]
    junit = Path(args.junit)
    if junit.is_file():
        counts = re.search(r'<testsuite [^>]*', junit.read_text())
        report["gpu_tests"] = dict(re.findall(r'(tests|failures|errors|skipped)="(\d+)"', counts.group(0))) \
            if counts else None
    if not args.smoke:
        report["bench_scripts"] = run_bench_scripts(device, args.bench_timeout)
    out = Path(args.out) / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', name)}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nfull grid, {device}-hours from the float32 steps above: " +
          ", ".join(f"{b} {h:,.0f}" for b, h in report["grid_device_hours"].items()) + f"\nwrote {out}")


if __name__ == "__main__":
    main()
