"""Helpers shared by the bench scripts: timings measured side by side, and what a lower
precision changes in a benchmark's scores."""

import statistics
import time

import torch


def interleaved(fns, repeat=None, warmup=1, budget_s=None, min_rounds=3):
    """Median seconds of each callable in `fns` ({name: fn}), runs interleaved so that machine
    noise hits all of them alike. Rounds (one call of each) go on until `repeat` rounds when it
    is given, else until the rounds, the untimed warm-up included, have taken `budget_s` seconds,
    as timeit's autorange sizes its loops by time: at least one round, and `min_rounds` when they
    fit the budget. A slow machine then measures fewer rounds, not for longer."""
    start = time.perf_counter()
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    warm = time.perf_counter() - start  # the warm-up spends the budget too
    times = {name: [] for name in fns}
    timed = 0.0
    while True:
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
            timed += times[name][-1]
        rounds = len(times[next(iter(fns))])
        if repeat is not None and rounds >= repeat:
            break
        per_round, budget = timed / rounds, budget_s or 0
        if repeat is None and (warm + timed + per_round > budget or rounds >= 100) and rounds >= min(
                min_rounds, max(1, int((budget - warm) / per_round))):
            break
    return {name: statistics.median(t) for name, t in times.items()}


def add_rounds_arguments(parser, budget_s):
    """--budget, seconds for all of a script's timed rounds together (the default: the script
    stays near its stated time on any CPU, a slow one measuring fewer rounds), and --repeat, a
    fixed count of rounds per measurement instead."""
    parser.add_argument("--budget", type=float, default=budget_s,
                        help=f"seconds for all the timed rounds together (default {budget_s:.0f})")
    parser.add_argument("--repeat", type=int, help="rounds per measurement instead of the budget")


def rounds(args, parts):
    """interleaved's keywords for one of a script's `parts` measurements: --repeat's fixed rounds,
    or its share of --budget."""
    return {"repeat": args.repeat} if args.repeat else {"budget_s": args.budget / max(1, parts)}


def rounds_line(args):
    """What the script's timed rounds are, for its first printed line."""
    return (f"timed rounds: {args.repeat} per measurement" if args.repeat
            else f"timed rounds: a budget of {args.budget:.0f} s in all")


def native_only(precisions, device):
    """Those of `precisions` that `device` computes natively (dplib.device.native_precisions),
    each skipped one printed with the reason: emulated, a reduced precision runs at a fraction
    of float32's speed, takes most of a script's time and measures only the emulation."""
    from dplib.device import NATIVE_CPU_FLAGS, native_precisions

    native = native_precisions(device)
    for precision in precisions:
        if precision not in native:
            why = (f"this CPU has no {' or '.join(NATIVE_CPU_FLAGS[precision])} instructions"
                   if torch.device(device).type == "cpu" else "this GPU does not support it")
            print(f"skipping {precision}: {device} would only emulate it ({why})")
    return tuple(p for p in precisions if p in native)


def precision_changes(scores_after_training, precisions=("bfloat16",), device="cpu"):
    """Train the same seed in float32 and in each lower precision that `device` computes
    natively (`scores_after_training(amp)` returns {score name: value}); print every score and
    its change; return the largest absolute change per precision ({} when none is native)."""
    precisions = native_only(precisions, device)
    if not precisions:
        return {}
    reference = scores_after_training(False)
    results = {p: scores_after_training(p) for p in precisions}
    print(f"  {'score':28s} {'float32':>10s}" + "".join(f" {p:>10s} {'change':>9s}" for p in precisions))
    for name, value in reference.items():
        print(f"  {name:28s} {value:10.4f}" + "".join(
            f" {results[p][name]:10.4f} {results[p][name] - value:+9.4f}" for p in precisions))
    largest = {p: max(abs(results[p][n] - v) for n, v in reference.items()) for p in precisions}
    print("  largest change: " + ", ".join(f"{p} {c:.4g}" for p, c in largest.items()))
    return largest


def compiled_vs_eager(model, loss_fn, batch, timing):
    """One training step (forward, `loss_fn(model, batch)`, backward, Adam) eager and through
    torch.compile (what fit(compile=True) does), measured side by side on two copies of
    `model` for `timing` (interleaved's keywords: rounds(args, parts)); returns (eager s/step,
    compiled s/step, compile seconds: the first compiled step minus a compiled step)."""
    import copy

    from dplib.train import adam

    torch._dynamo.reset()  # every configuration compiles afresh, as a new run would
    compiled_loss = torch.compile(loss_fn)
    models = {"eager": model, "compiled": copy.deepcopy(model)}
    optimizers = {kind: adam(m.parameters(), lr=1e-3) for kind, m in models.items()}

    def step(kind, fn):
        loss = fn(models[kind], batch)
        optimizers[kind].zero_grad(set_to_none=True)
        loss.backward()
        optimizers[kind].step()

    start = time.perf_counter()
    step("compiled", compiled_loss)
    first = time.perf_counter() - start
    t = interleaved({"eager": lambda: step("eager", loss_fn), "compiled": lambda: step("compiled", compiled_loss)},
                    **timing)
    return t["eager"], t["compiled"], first - t["compiled"]


def print_compiled_steps(what, configs, build_model, make_loss, batch, device, timing):
    """compiled_vs_eager for each (arch, point) of `configs`, printed: `build_model(network)`
    and `make_loss(network)` give the model and loss_fn for that loss network; `timing`: each
    one's rounds (interleaved's keywords)."""
    from dplib.lossnets import LossNetwork

    print(f"\ncompiled training steps (fit(compile=True): {what} through torch.compile), side by side")
    for arch, point in configs:
        network = LossNetwork(arch, point, weights=None).to(device)
        eager, compiled, compile_seconds = compiled_vs_eager(build_model(network).to(device), make_loss(network), batch,
                                                             timing)
        payback = (f"paid back after {compile_seconds / (eager - compiled):,.0f} steps" if compiled < eager
                   else "never paid back")
        print(f"{arch + ' ' + point:22s} eager {eager * 1e3:8.1f} ms/step, compiled {compiled * 1e3:8.1f} ms/step: "
              f"{eager / compiled:.2f}x; compiling took {compile_seconds:.0f} s once ({payback})")


def notebook_defaults(stem):
    """The defaults of notebooks/<stem>.ipynb's parameters cell: the protocol a bench script
    times is the notebook's, never a copy of it."""
    from pathlib import Path

    from dplib.run.plan import notebook_defaults as read

    return read(Path(__file__).parents[1] / "notebooks" / f"{stem}.ipynb")


def grid_lengths(*names):
    """({step key: optimizer steps (B1: batches) per run}, {step key: runs}) of the benchmarks'
    full grids: each run's steps are its benchmark's `steps(parameters)` (the notebooks' defaults
    and the params files' values); B4's keys are per dataset (b4_svhn, b4_stl10)."""
    from pathlib import Path

    from dplib.benchmarks import benchmark
    from dplib.run import plan

    root = Path(__file__).parents[1]
    steps, runs = {}, {}
    for name in names:
        spec = plan.load_spec(root / benchmark(name).params)
        spec["notebook"] = str(root / spec["notebook"])
        record = benchmark(name)
        for run in plan.expand(spec):
            key = record.call("step_key", run.parameters)
            steps[key] = record.call("steps", run.parameters)
            runs[key] = runs.get(key, 0) + 1
    return steps, runs
