"""One small fit loop for Benchmarks 2-4: Adam, validation at a fixed step interval keeping
the best model, NaN and collapse detection, checkpoint/resume, mixed precision on GPU,
and a progress bar.

    record = fit(model, loss_fn, dataset, validate, iterations=200_000, batch_size=4,
                 checkpoint="runs/x/checkpoint.pt")

`loss_fn(model, batch) -> scalar loss`; `validate(model) -> float` (higher is better unless
mode="min") or a dict {"score": float, "collapsed": bool}. After fit the model holds the
best validated weights. The data order (and the data workers' random seeds) are seeded
per epoch, so a run resumed from its checkpoint continues where it stopped; with
num_workers=0, random augmentation in the dataset uses the main process's generators,
which a resume does not restore.
"""

import copy
import math
import os
import pickle
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm


def _atomic_save(state, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def _load_checkpoint(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):
        return None  # a checkpoint cut short by a kill: start over rather than crash


def adam(parameters, lr=1e-3):
    """Adam with the fused kernel: one pass over each parameter tensor per step instead of about
    ten. It matters where the parameters are many and the FLOPs few, as in Benchmark 4's
    feature decoder (20M parameters): there the optimizer step took a third of the step."""
    parameters = [p for p in parameters if p.requires_grad]
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in parameters)
    return torch.optim.Adam(parameters, lr=lr, fused=fused)


def _to_cpu_state(model):
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def fit(model, loss_fn, dataset, validate, *, iterations=None, epochs=None, batch_size=4, lr=1e-3,
        validate_every=None, checkpoint=None, device="cpu", amp=False, mode="max", seed=0, num_workers=0,
        description="train", progress=True, collate_fn=None, optimizer=None):
    """Train `model` on `dataset` with Adam; returns the training record (a dict).

    Give `iterations` (optimizer steps) or `epochs`. Validation runs every
    `validate_every` steps (default: once per epoch) and at the end. With `checkpoint`, the
    state is saved atomically at every validation and a rerun resumes from it.
    """
    if (iterations is None) == (epochs is None):
        raise ValueError("give exactly one of iterations or epochs")
    if len(dataset) == 0:
        raise ValueError("the training set is empty (0 items)")
    generator = torch.Generator()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=len(dataset) >= batch_size,
                        generator=generator, num_workers=num_workers, collate_fn=collate_fn,
                        pin_memory=str(device).startswith("cuda"))
    # Workers are started anew each epoch on purpose: their random seeds are then drawn from the
    # reseeded generator, so crops and order of an epoch are the same after a resume.
    steps_per_epoch = len(loader)
    total = iterations if iterations is not None else epochs * steps_per_epoch
    validate_every = validate_every or steps_per_epoch
    optimizer = optimizer or adam(model.parameters(), lr=lr)
    use_amp = amp and str(device).startswith("cuda")
    better = (lambda a, b: a > b) if mode == "max" else (lambda a, b: a < b)

    state = {"step": 0, "best_score": None, "best_step": None, "best_model": None, "history": [],
             "nan_step": None, "collapsed_steps": [], "seconds": 0.0, "resumed_from": None}
    saved = _load_checkpoint(checkpoint) if checkpoint and Path(checkpoint).is_file() else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        state.update(saved["state"])
        state["resumed_from"] = state["step"]

    def run_validation():
        model.eval()
        with torch.no_grad():
            result = validate(model)
        model.train()
        score, collapsed = (result["score"], bool(result.get("collapsed"))) if isinstance(result, dict) else (result, False)
        state["history"].append({"step": state["step"], "loss": running_loss, "score": float(score),
                                 "collapsed": collapsed})
        if collapsed:
            state["collapsed_steps"].append(state["step"])
        elif math.isfinite(score) and (state["best_score"] is None or better(score, state["best_score"])):
            state["best_score"], state["best_step"] = float(score), state["step"]
            state["best_model"] = _to_cpu_state(model)
        if checkpoint:
            _atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": state}, checkpoint)
        return score

    model.train()
    started = time.perf_counter() - state["seconds"]
    running_loss = float("nan")
    bar = tqdm(total=total, initial=state["step"], desc=description, disable=not progress, dynamic_ncols=True)
    epoch, skip = divmod(state["step"], steps_per_epoch)
    try:
        while state["step"] < total and state["nan_step"] is None:
            generator.manual_seed(seed * 100_003 + epoch)  # the same order after a resume
            for i, batch in enumerate(loader):
                if i < skip:
                    continue
                with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_amp):
                    loss = loss_fn(model, batch)
                if not torch.isfinite(loss):
                    state["nan_step"] = state["step"]
                    break
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                state["step"] += 1
                running_loss = loss.item() if running_loss != running_loss else 0.9 * running_loss + 0.1 * loss.item()
                bar.update(1)
                if state["step"] % validate_every == 0 or state["step"] == total:
                    state["seconds"] = time.perf_counter() - started
                    score = run_validation()
                    bar.set_postfix(loss=f"{running_loss:.4g}", val=f"{score:.4g}",
                                    best=f"{state['best_score']:.4g}" if state["best_score"] is not None else "-")
                if state["step"] >= total:
                    break
            epoch, skip = epoch + 1, 0
    finally:
        bar.close()
    state["seconds"] = time.perf_counter() - started
    if state["best_model"] is not None:
        model.load_state_dict(state["best_model"])
    record = {k: v for k, v in state.items() if k != "best_model"}
    record.update(steps_per_epoch=steps_per_epoch, total_steps=total, nan=state["nan_step"] is not None,
                  collapsed=bool(state["collapsed_steps"]), kept_best=state["best_model"] is not None)
    return copy.deepcopy(record)
