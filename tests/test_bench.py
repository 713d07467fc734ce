"""bench/gpu_report.py, the report `make gpu-check` writes, run on a CPU with --smoke: its
JSON holds every step measured, the speed-ups and the grid's device-hours from the paper's
run lengths (hand-computed here from the measured step times)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.exercises(autocast="bfloat16", amp="bfloat16")  # B1-B4's steps under bfloat16 autocast, measured
def test_gpu_report_smoke_on_cpu(tmp_path):
    memory = tmp_path / "memory.jsonl"
    memory.write_text(json.dumps({"arch": "alexnet", "benchmark": "b1", "peak_memory_gib": 0.5}) + "\n")
    done = subprocess.run([sys.executable, "bench/gpu_report.py", "--device", "cpu", "--smoke", "--out",
                           str(tmp_path / "gpu"), "--memory-record", str(memory), "--junit", str(tmp_path / "none")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    [path] = (tmp_path / "gpu").glob("*.json")
    report = json.loads(path.read_text())
    steps = report["steps"]
    benchmarks = ["b1", "b2", "b3", "b4_svhn", "b4_stl10"]
    assert {(r["benchmark"], r["arch"], r["precision"]) for r in steps} == {
        (b, a, p) for b in benchmarks for a in ("squeezenet1_1", "alexnet") for p in ("float32", "bfloat16")}
    assert all(r["seconds_per_step"] > 0 and r["peak_memory_gib"] is None for r in steps)

    def mean_seconds(benchmark):
        times = [r["seconds_per_step"] for r in steps if r["benchmark"] == benchmark and r["precision"] == "float32"]
        return sum(times) / 2

    # the paper's lengths: B2 112 runs x 200,000 steps; B3 56 runs x 100 epochs x 139 steps of 8 tiles
    assert report["grid_device_hours"]["b2"] == pytest.approx(mean_seconds("b2") * 200_000 * 112 / 3600)
    assert report["grid_device_hours"]["b3"] == pytest.approx(mean_seconds("b3") * 100 * 139 * 56 / 3600)
    speedup = {(s["benchmark"], s["arch"]): s["speedup"] for s in report["speedup_autocast_over_float32"]}
    assert len(speedup) == 10 and all(v > 0 for v in speedup.values())
    assert report["network_peak_memory"] == [{"arch": "alexnet", "benchmark": "b1", "peak_memory_gib": 0.5}]


def test_gpu_report_refuses_cuda_without_a_gpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = subprocess.run([sys.executable, "bench/gpu_report.py", "--device", "cuda", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "no CUDA GPU" in done.stderr and not list(tmp_path.iterdir())


def test_calibration_bench_records_both_paths_and_the_whole_runs_from_them(tmp_path):
    done = subprocess.run([sys.executable, "bench/calibration.py", "--arch", "squeezenet1_1", "--repeat", "1",
                           "--batch", "32", "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((tmp_path / "calibration_cpu.json").read_text())
    net = record["networks"]["squeezenet1_1"]
    assert record["triplets"] == 151_300 and record["epochs"] == 10  # BAPPS 2AFC train; the recipe's 5 + 5
    assert record["batch"] == 32 and record["forward_passes"] == "separate"  # the B1 notebook's default
    exact, cached = net["exact_step_s_per_triplet"], net["cached_step_s_per_triplet"]
    assert set(exact) == set(cached) == {"early", "semi_early", "mid", "late"}
    # one network's calibration, by hand: each point 10 epochs of 151.3K triplets; cached adds one shared pass
    assert net["exact_hours"] == pytest.approx(sum(exact.values()) * 10 * 151_300 / 3600)
    assert net["cached_hours"] == pytest.approx((net["caching_pass_s_per_triplet"] + sum(cached.values()) * 10)
                                                * 151_300 / 3600)
    assert net["speedup"] == pytest.approx(net["exact_hours"] / net["cached_hours"]) and net["speedup"] > 1


def test_the_readme_states_the_committed_calibration_measurement():
    # the numbers in README's calibration section and bench/README.md are the committed record's
    record = json.loads((ROOT / "results" / "bench" / "calibration_cpu.json").read_text())
    readme = (ROOT / "README.md").read_text().split("## A calibrated metric from any network", 1)[1].split("\n## ")[0]
    bench = (ROOT / "bench" / "README.md").read_text()
    for arch, net in record["networks"].items():
        for text in (readme, bench):
            stated = f"{net['exact_hours']:.1f} h exact, {net['cached_hours']:.2f} h cached ({net['speedup']:.0f}x)"
            assert stated in " ".join(text.split()), (arch, stated)


def test_the_bench_scripts_timed_rounds_are_sized_by_their_budget(monkeypatch):
    # bench/common.interleaved on a fake clock: each callable advances it by its cost
    import argparse

    sys.path.insert(0, str(ROOT / "bench"))
    import common

    clock, calls = [0.0], {"a": 0, "b": 0}
    monkeypatch.setattr(common.time, "perf_counter", lambda: clock[0])

    def costing(name, seconds):
        def call():
            calls[name] += 1
            clock[0] += seconds
        return call

    # a round (one call of each) costs 4 s: after the warm-up round (4 s, not timed but spent),
    # rounds go on while the next one fits 20 s in all, so 4
    timed = common.interleaved({"a": costing("a", 1.0), "b": costing("b", 3.0)}, budget_s=20)
    assert timed == {"a": 1.0, "b": 3.0} and calls == {"a": 5, "b": 5}
    calls.update(a=0)
    # a round over the whole budget: one round, not the three a fast machine would measure
    assert common.interleaved({"a": costing("a", 100.0)}, budget_s=20) == {"a": 100.0} and calls["a"] == 2
    # a script's measurements share its --budget; --repeat fixes the rounds instead
    parser = argparse.ArgumentParser()
    common.add_rounds_arguments(parser, budget_s=60)
    assert common.rounds(parser.parse_args([]), 5) == {"budget_s": 12.0}
    assert common.rounds(parser.parse_args(["--repeat", "2"]), 5) == {"repeat": 2}


def test_b1_sizes_its_score_check_fixture_by_its_budget():
    # the score check's share of the budget, at the slowest measured speed, over BAPPS's 6 2AFC and
    # 2 JND subsets for each precision compared: by hand, 30 s x 10 triplets/s / (8 subsets x 2) = 18
    import argparse

    sys.path.insert(0, str(ROOT / "bench"))
    import b1 as bench_b1

    args = argparse.Namespace(repeat=None, fixture_triplets=200, timing={"budget_s": 30.0})
    # rates of float32 and bfloat16, each in both layouts: two precisions
    assert bench_b1.fixture_size(args, [40.0, 10.0, 25.0, 30.0]) == 18
    assert bench_b1.fixture_size(argparse.Namespace(**{**vars(args), "timing": {"budget_s": 3000.0}}),
                                 [40.0, 10.0, 25.0, 30.0]) == 200  # never more than --fixture-triplets
    assert bench_b1.fixture_size(argparse.Namespace(**{**vars(args), "timing": {"budget_s": 0.1}}),
                                 [40.0, 10.0]) == 8  # at least 8
    assert bench_b1.fixture_size(argparse.Namespace(**{**vars(args), "repeat": 2}), [1.0]) == 200  # fixed rounds


def test_b1_with_a_tiny_budget_finishes_in_minutes():
    # everything bench/b1.py does beyond its timed rounds is bounded too (its score check's fixture
    # is sized by the budget), so a tiny budget ends it within a few minutes even on a busy 2-core
    # CI machine; the default budget (180 s) then keeps the whole script under 5 minutes on any CPU
    done = subprocess.run([sys.executable, "bench/b1.py", "--budget", "4", "--triplets", "10", "--batch-size", "10"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "timed rounds: a budget of 4 s in all" in done.stdout and "the whole script:" in done.stdout
    for line in done.stdout.splitlines():
        if "vs float32 on the fixture" in line:  # where a reduced precision is native: a fixture the budget
            # shrank from 200 per subset (0.7 s at 1,000 triplets/s, a CPU's best for alexnet, runs 80)
            assert int(line.split("fixture (")[1].split(" per subset")[0]) < 200, line
