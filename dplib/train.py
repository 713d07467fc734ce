"""One small fit loop for Benchmarks 2-4: Adam, validation at a fixed step interval keeping
the best model, NaN and collapse detection, checkpoint/resume, optional mixed precision, a
progress bar, and a clean stop on SIGTERM.

    record = fit(model, loss_fn, dataset, validate, iterations=200_000, batch_size=4,
                 checkpoint="runs/x/checkpoint.pt")

`loss_fn(model, batch) -> scalar loss`; `validate(model) -> float` (higher is better unless
mode="min") or a dict {"score": float, "collapsed": bool}. After fit the model holds the
best validated weights. The data order (and the data workers' random seeds) are seeded
per epoch, so a run resumed from its checkpoint continues where it stopped; with
num_workers=0, random augmentation in the dataset uses the main process's generators,
which a resume does not restore.

SIGTERM (Slurm's preemption, cancel or time limit; `kill`) during fit saves a checkpoint at
the current step and raises RunInterrupted: the next run of the same folder resumes there.
"""

import contextlib
import copy
import math
import pickle
import signal
import threading
import time
import zipfile
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from .progress import tqdm

from .atomic import atomic_write
from .device import autocast, autocast_dtype
from .metrics_log import METRICS, MetricsLog
from .errors import InputError, UserError


class RunInterrupted(RuntimeError):
    """Training stopped on SIGTERM after saving a checkpoint; rerunning resumes from it."""


def adam(parameters, lr=1e-3):
    """Adam with the fused kernel: one pass over each parameter tensor per step instead of about
    ten. It matters where the parameters are many and the FLOPs few, as in Benchmark 4's
    feature decoder (20M parameters): there the optimizer step took a third of the step."""
    parameters = [p for p in parameters if p.requires_grad]
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in parameters)
    return torch.optim.Adam(parameters, lr=lr, fused=fused)


@contextlib.contextmanager
def sigterm_event():
    """An Event set when SIGTERM arrives while the block runs (signals reach only the main
    thread: elsewhere the event is never set and the default handling stays)."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: event.set())
    try:
        yield event
    finally:
        signal.signal(signal.SIGTERM, previous)


def _save_checkpoint(path, model, optimizer, state):
    with atomic_write(path, "wb") as f:
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": state}, f)


class UnsafeCheckpoint(UserError, RuntimeError):
    """A checkpoint holds more than tensors, numbers, strings, lists and dicts (a pickled callable
    would run as it loads): refused, not loaded."""


def _load_checkpoint(path):
    """The saved training state, loaded with weights_only=True: a checkpoint in a run folder others
    can write (a shared cluster filesystem) cannot run code. None for one cut short by a kill."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # a whole archive (torch.save's zip) whose pickle names a global: refused; bytes that are
        # no archive at all are a checkpoint cut short
        if zipfile.is_zipfile(path) and "Unsupported global" in str(error):
            raise UnsafeCheckpoint(f"{path} holds objects other than tensors, numbers and containers (it could run "
                                   "code as it loads), so it was not loaded; delete it to start the run over") from None
        return None  # a checkpoint cut short by a kill: start over rather than crash
    except (OSError, RuntimeError, EOFError):
        return None


def _resume(checkpoint, model, optimizer, state):
    """Load model, optimizer and training state from `checkpoint` when there is a readable one."""
    saved = _load_checkpoint(checkpoint) if checkpoint and Path(checkpoint).is_file() else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        state.update(saved["state"])
        state["resumed_from"] = state["step"]


def _patience_spent(state, patience):
    """True when the last `patience` validations brought no new best (never when patience is off)."""
    if not patience or state["best_step"] is None:
        return False
    return sum(h["step"] > state["best_step"] for h in state["history"]) >= patience


def _validate(model, validate, state, better):
    """Run validation; keep the model (on the CPU) when its score is the best and not collapsed."""
    model.eval()
    with torch.no_grad():
        result = validate(model)
    model.train()
    score, collapsed = (result["score"], bool(result.get("collapsed"))) if isinstance(result, dict) else (result, False)
    state["history"].append({"step": state["step"], "loss": state["running_loss"], "score": float(score),
                             "collapsed": collapsed})
    if collapsed:
        state["collapsed_steps"].append(state["step"])
    elif math.isfinite(score) and (state["best_score"] is None or better(score, state["best_score"])):
        state["best_score"], state["best_step"] = float(score), state["step"]
        state["best_model"] = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    return score


def _step(model, loss_fn, batch, optimizer, scaler, device, dtype):
    """One optimizer step; returns the loss, or None (nothing updated) when it is not finite."""
    with autocast(device, dtype):
        loss = loss_fn(model, batch)
    if not torch.isfinite(loss):
        return None
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:  # float16 gradients need loss scaling
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    return loss.item()


def _samples(batch):
    """How many samples a batch holds (a tensor, or a tuple, list or dict of them)."""
    if torch.is_tensor(batch):
        return len(batch)
    items = batch.values() if isinstance(batch, dict) else batch
    return next((len(x) for x in items if torch.is_tensor(x)), 0)


def fit(model, loss_fn, dataset, validate, *, iterations=None, epochs=None, batch_size=4, lr=1e-3,
        validate_every=None, checkpoint=None, device="cpu", amp=False, mode="max", seed=0, num_workers=0,
        description="train", progress=True, collate_fn=None, optimizer=None, compile=False, patience=None,
        metrics=None, log_every=50):
    """Train `model` on `dataset` with Adam; returns the training record (a dict).

    Give `iterations` (optimizer steps) or `epochs`. Validation runs every
    `validate_every` steps (default: once per epoch) and at the end. With `checkpoint`, the
    state is saved atomically at every validation (and on SIGTERM) and a rerun resumes from
    it. amp: False (float32), "bfloat16" or "float16" autocast on any device. compile: run the
    step's forward and loss (the model and the loss network) through torch.compile; the first
    steps then take the compilation time (bench/b2.py..b4.py measure both). patience: stop
    after this many validations in a row without a new best (early stopping, as the companion
    papers' released code did); None or 0 trains to the end. metrics: the metrics.jsonl to append
    to (dplib.metrics_log), by default beside the checkpoint (False: none); a line every
    `log_every` steps, at each validation and on SIGTERM.
    """
    if (iterations is None) == (epochs is None):
        raise InputError("give exactly one of iterations or epochs")
    if len(dataset) == 0:
        raise InputError("the training set is empty (0 items)")
    dtype = autocast_dtype(amp, "amp")
    generator = torch.Generator()
    # The last partial batch is trained on, as the released code's loaders did (PyTorch's default),
    # except a last batch of a single sample, which batch norm cannot normalise in train mode.
    single_last = len(dataset) > batch_size and len(dataset) % batch_size == 1
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=single_last, generator=generator,
                        num_workers=num_workers, collate_fn=collate_fn, pin_memory=str(device).startswith("cuda"))
    # Workers are started anew each epoch on purpose: their random seeds are then drawn from the
    # reseeded generator, so crops and order of an epoch are the same after a resume.
    steps_per_epoch = len(loader)
    total = iterations if iterations is not None else epochs * steps_per_epoch
    validate_every = validate_every or steps_per_epoch
    optimizer = optimizer or adam(model.parameters(), lr=lr)
    scaler = torch.amp.GradScaler(torch.device(device).type) if dtype == torch.float16 else None
    better = (lambda a, b: a > b) if mode == "max" else (lambda a, b: a < b)
    step_loss = torch.compile(loss_fn) if compile else loss_fn
    state = {"step": 0, "best_score": None, "best_step": None, "best_model": None, "history": [], "nan_step": None,
             "collapsed_steps": [], "seconds": 0.0, "resumed_from": None, "running_loss": float("nan")}
    _resume(checkpoint, model, optimizer, state)
    if metrics is None and checkpoint:
        metrics = Path(checkpoint).parent / METRICS
    # each training of a run its own lines ("phase": B4's autoencoder "train", its decoder retraining
    # "decoder_checkpoint"), so that one resuming never drops another's
    phase = "train" if not checkpoint or Path(checkpoint).stem == "checkpoint" else Path(checkpoint).stem
    log = MetricsLog(metrics or None, every=log_every, resume_step=state["step"], key={"phase": phase})

    model.train()
    started = time.perf_counter() - state["seconds"]
    bar = tqdm(total=total, initial=state["step"], desc=description, disable=not progress, dynamic_ncols=True)
    epoch, skip = divmod(state["step"], steps_per_epoch)
    with sigterm_event() as terminated:
        try:
            while (state["step"] < total and state["nan_step"] is None and not terminated.is_set()
                   and not _patience_spent(state, patience)):
                generator.manual_seed(seed * 100_003 + epoch)  # the same order after a resume
                for i, batch in enumerate(loader):
                    if i < skip:
                        continue
                    loss = _step(model, step_loss, batch, optimizer, scaler, device, dtype)
                    if loss is None:
                        state["nan_step"] = state["step"]
                        break
                    state["step"] += 1
                    previous = state["running_loss"]
                    state["running_loss"] = loss if previous != previous else 0.9 * previous + 0.1 * loss
                    bar.update(1)
                    score = None
                    if state["step"] % validate_every == 0 or state["step"] == total:
                        state["seconds"] = time.perf_counter() - started
                        score = _validate(model, validate, state, better)
                        bar.set_postfix(loss=f"{state['running_loss']:.4g}", val=f"{score:.4g}",
                                        best=f"{state['best_score']:.4g}" if state["best_score"] is not None else "-")
                    # the line before the checkpoint: a resume never repeats a step it keeps
                    log.step(state["step"], epoch + 1, loss, _samples(batch), optimizer.param_groups[0]["lr"],
                             validation=None if score is None else float(score),
                             force=state["step"] >= total or terminated.is_set())
                    if score is not None and checkpoint:
                        _save_checkpoint(checkpoint, model, optimizer, state)
                    if state["step"] >= total or terminated.is_set() or _patience_spent(state, patience):
                        break
                epoch, skip = epoch + 1, 0
        except Exception:
            # Slurm signals every process of a job: data-loading workers die of the same SIGTERM
            if not terminated.wait(timeout=1.0):
                raise
        finally:
            bar.close()
            log.close()
        if terminated.is_set():
            state["seconds"] = time.perf_counter() - started
            if checkpoint:
                _save_checkpoint(checkpoint, model, optimizer, state)
            raise RunInterrupted(f"SIGTERM at step {state['step']} of {total}: "
                                 + (f"checkpoint saved to {checkpoint}; run again to resume" if checkpoint
                                    else "no checkpoint path was given, so the progress is lost"))
    state["seconds"] = time.perf_counter() - started
    if state["best_model"] is not None:
        model.load_state_dict(state["best_model"])
    record = {k: v for k, v in state.items() if k not in ("best_model", "running_loss")}
    record.update(steps_per_epoch=steps_per_epoch, total_steps=total, nan=state["nan_step"] is not None,
                  stopped_early=state["step"] < total and state["nan_step"] is None,
                  collapsed=bool(state["collapsed_steps"]), kept_best=state["best_model"] is not None)
    return copy.deepcopy(record)
