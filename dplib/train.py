"""One small fit loop for Benchmarks 2-4: Adam, validation at a fixed step interval keeping
the best model, NaN and collapse detection, checkpoint/resume, optional mixed precision, a
progress bar, and a clean stop on SIGTERM.

    summary = fit(model, loss_fn, dataset, validate, iterations=200_000, batch_size=4,
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
import operator
import pickle
import signal
import threading
import time
import zipfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np
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


@dataclass
class TrainingState:
    """Where a training run stands: what a checkpoint saves (as a dict of numbers, lists and
    tensors, which torch.load reads with weights_only=True) and what fit's summary reports."""

    step: int = 0
    best_score: float = None
    best_step: int = None
    best_model: dict = None     # {name: CPU tensor} of the best validated model
    history: list = field(default_factory=list)   # one entry per validation
    nan_step: int = None
    collapsed_steps: list = field(default_factory=list)
    seconds: float = 0.0
    resumed_from: int = None
    running_loss: float = float("nan")  # 10-step running mean, for the progress bar and the history

    def as_dict(self):
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def summary(self):
        """fit's summary: the state less the model and the running mean."""
        return {k: v for k, v in self.as_dict().items() if k not in ("best_model", "running_loss")}

    def patience_spent(self, patience):
        """True when the last `patience` validations brought no new best (never when patience is off)."""
        if not patience or self.best_step is None:
            return False
        return sum(h["step"] > self.best_step for h in self.history) >= patience


def _resume(checkpoint, model, optimizer, state):
    """Load model, optimizer and training state from `checkpoint` when there is a readable one."""
    saved = _load_checkpoint(checkpoint) if checkpoint and Path(checkpoint).is_file() else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        for name, value in saved["state"].items():
            setattr(state, name, value)
        state.resumed_from = state.step


def better_than(mode):
    """better(a, b) -> a is strictly better than b, for scores to maximise ("max") or minimise
    ("min"): ties keep the first best."""
    return operator.gt if mode == "max" else operator.lt


def validate_and_keep_best(model, validate, state, better):
    """Run validation; keep the model (on the CPU) when its score is the best and not collapsed.
    `validate(model)` -> a score, or {"score", "collapsed" (optional), any other values the
    history keeps beside them}; `better(a, b)` -> a is better than b (strictly: ties keep the first).
    fit validates through it, and so do B4's predictors."""
    model.eval()
    with torch.no_grad():
        result = validate(model)
    model.train()
    result = dict(result) if isinstance(result, dict) else {"score": result}
    score, collapsed = result.pop("score"), bool(result.pop("collapsed", False))
    state.history.append({"step": state.step, "loss": state.running_loss, "score": float(score),
                          "collapsed": collapsed, **result})
    if collapsed:
        state.collapsed_steps.append(state.step)
    elif math.isfinite(score) and (state.best_score is None or better(score, state.best_score)):
        state.best_score, state.best_step = float(score), state.step
        state.best_model = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    return score


def _step(model, loss_fn, batch, optimizer, scaler, device, dtype, hooks=None):
    """One optimizer step; returns the loss, or None (nothing updated) when it is not finite.
    hooks.before_update runs between the forward and the backward (the released calibration's clamp)."""
    with autocast(device, dtype):
        loss = loss_fn(model, batch)
    if not torch.isfinite(loss):
        return None
    if hooks is not None and hooks.before_update:
        hooks.before_update()
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:  # float16 gradients need loss scaling
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    if hooks is not None and hooks.after_step:
        hooks.after_step()
    return loss.item()


@dataclass
class Hooks:
    """What a training adds to fit's loop, each optional: schedule(epoch) -> the learning rate's
    factor for that epoch (set at its start); before_update() between a step's forward and its
    update; after_step() after the optimizer's step; epoch_end(epoch, mean loss, lr) after each
    epoch. dplib.calibration trains through them."""

    schedule: Callable = None
    before_update: Callable = None
    after_step: Callable = None
    epoch_end: Callable = None


@dataclass
class _Loop:
    """What fit sets up once and its epochs read."""

    model: torch.nn.Module
    step_loss: Callable
    loader: DataLoader
    optimizer: torch.optim.Optimizer
    scaler: object
    device: object
    dtype: object
    total: int
    validate: Callable
    validate_every: int
    better: Callable
    checkpoint: object
    log: MetricsLog
    patience: int
    hooks: Hooks
    bar: object = None
    terminated: object = None
    started: float = 0.0


def _samples(batch):
    """How many samples a batch holds (a tensor, or a tuple, list or dict of them)."""
    if torch.is_tensor(batch):
        return len(batch)
    items = batch.values() if isinstance(batch, dict) else batch
    return next((len(x) for x in items if torch.is_tensor(x)), 0)


def _should_stop(loop, state):
    """The stop rules in one place: the steps done, a loss that was not finite, SIGTERM, patience."""
    return (state.step >= loop.total or state.nan_step is not None or loop.terminated.is_set()
            or state.patience_spent(loop.patience))


def _one_epoch(loop, state, epoch, skip):
    """The steps of one epoch (after `skip` batches a resume has done): each step, its validation
    when due, its metrics line, the checkpoint after a validation. Returns the epoch's losses."""
    losses = []
    for i, batch in enumerate(loop.loader):
        if i < skip:
            continue
        loss = _step(loop.model, loop.step_loss, batch, loop.optimizer, loop.scaler, loop.device, loop.dtype,
                     loop.hooks)
        if loss is None:
            state.nan_step = state.step
            break
        losses.append(loss)
        state.step += 1
        previous = state.running_loss
        state.running_loss = loss if previous != previous else 0.9 * previous + 0.1 * loss
        loop.bar.update(1)
        score = _validation(loop, state) if loop.validate is not None and (
            state.step % loop.validate_every == 0 or state.step == loop.total) else None
        # the line before the checkpoint: a resume never repeats a step it keeps
        loop.log.step(state.step, epoch + 1, loss, _samples(batch), loop.optimizer.param_groups[0]["lr"],
                      validation=None if score is None else float(score),
                      force=state.step >= loop.total or loop.terminated.is_set())
        if score is not None and loop.checkpoint:
            _save_checkpoint(loop.checkpoint, loop.model, loop.optimizer, state.as_dict())
        if _should_stop(loop, state):
            break
    return losses


def _validation(loop, state):
    state.seconds = time.perf_counter() - loop.started
    score = validate_and_keep_best(loop.model, loop.validate, state, loop.better)
    loop.bar.set_postfix(loss=f"{state.running_loss:.4g}", val=f"{score:.4g}",
                         best=f"{state.best_score:.4g}" if state.best_score is not None else "-")
    return score


def _setup(model, loss_fn, dataset, validate, iterations, epochs, batch_size, lr, validate_every, checkpoint,
           device, amp, mode, num_workers, collate_fn, optimizer, compile, patience, metrics, log_every, hooks,
           metrics_key=None):
    """fit's loop and the state it starts from (a checkpoint's, when there is one)."""
    if (iterations is None) == (epochs is None):
        raise InputError("give exactly one of iterations or epochs")
    if len(dataset) == 0:
        raise InputError("the training set is empty (0 items)")
    dtype = autocast_dtype(amp, "amp")
    # The last partial batch is trained on, as the released code's loaders did (PyTorch's default),
    # except a last batch of a single sample, which batch norm cannot normalise in train mode.
    single_last = len(dataset) > batch_size and len(dataset) % batch_size == 1
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=single_last,
                        generator=torch.Generator(), num_workers=num_workers, collate_fn=collate_fn,
                        pin_memory=str(device).startswith("cuda"))
    # Workers are started anew each epoch on purpose: their random seeds are then drawn from the
    # reseeded generator, so crops and order of an epoch are the same after a resume.
    total = iterations if iterations is not None else epochs * len(loader)
    optimizer = optimizer or adam(model.parameters(), lr=lr)
    state = TrainingState()
    _resume(checkpoint, model, optimizer, state)
    if metrics is None and checkpoint:
        metrics = Path(checkpoint).parent / METRICS
    # each training of a run its own lines ("phase": B4's autoencoder "train", its decoder retraining
    # "decoder_checkpoint"), so that one resuming never drops another's
    phase = "train" if not checkpoint or Path(checkpoint).stem == "checkpoint" else Path(checkpoint).stem
    loop = _Loop(model, torch.compile(loss_fn) if compile else loss_fn, loader, optimizer,
                 torch.amp.GradScaler(torch.device(device).type) if dtype == torch.float16 else None, device, dtype,
                 total, validate, validate_every or len(loader),
                 better_than(mode), checkpoint,
                 MetricsLog(metrics or None, every=log_every, resume_step=state.step, key=metrics_key or {"phase": phase}),
                 patience, hooks or Hooks())
    return loop, state


def fit(model, loss_fn, dataset, validate, *, iterations=None, epochs=None, batch_size=4, lr=1e-3,
        validate_every=None, checkpoint=None, device="cpu", amp=False, mode="max", seed=0, num_workers=0,
        description="train", progress=True, collate_fn=None, optimizer=None, compile=False, patience=None,
        metrics=None, log_every=50, hooks=None, metrics_key=None):
    """Train `model` on `dataset` with Adam; returns the training summary (a dict).

    Give `iterations` (optimizer steps) or `epochs`. Validation runs every
    `validate_every` steps (default: once per epoch) and at the end (validate None: never; the
    model is then the last one). With `checkpoint`, the state is saved atomically at every
    validation (and on SIGTERM) and a rerun resumes from it. amp: False (float32), "bfloat16"
    or "float16" autocast on any device. compile: run the step's forward and loss (the model and
    the loss network) through torch.compile; the first steps then take the compilation time
    (bench/b2.py..b4.py measure both). patience: stop after this many validations in a row
    without a new best (early stopping, as the companion papers' released code did); None or 0
    trains to the end. metrics: the metrics.jsonl to append to (dplib.metrics_log), by default
    beside the checkpoint (False: none); a line every `log_every` steps, at each validation and
    on SIGTERM; metrics_key: the fields its lines carry (default: the phase, from the checkpoint's
    name). optimizer: another than Adam(lr); hooks: Hooks (a schedule, clamps, per-epoch records).
    """
    loop, state = _setup(model, loss_fn, dataset, validate, iterations, epochs, batch_size, lr, validate_every,
                         checkpoint, device, amp, mode, num_workers, collate_fn, optimizer, compile, patience, metrics,
                         log_every, hooks, metrics_key)
    base_lrs = [group["lr"] for group in loop.optimizer.param_groups]
    model.train()
    loop.started = time.perf_counter() - state.seconds
    loop.bar = tqdm(total=loop.total, initial=state.step, desc=description, disable=not progress, dynamic_ncols=True)
    epoch, skip = divmod(state.step, len(loop.loader))
    with sigterm_event() as terminated:
        loop.terminated = terminated
        try:
            while not _should_stop(loop, state):
                loop.loader.generator.manual_seed(seed * 100_003 + epoch)  # the same order after a resume
                if loop.hooks.schedule:
                    for group, base in zip(loop.optimizer.param_groups, base_lrs):
                        group["lr"] = base * loop.hooks.schedule(epoch)
                losses = _one_epoch(loop, state, epoch, skip)
                if loop.hooks.epoch_end and losses:
                    loop.hooks.epoch_end(epoch, float(np.mean(losses)), loop.optimizer.param_groups[0]["lr"])
                epoch, skip = epoch + 1, 0
        except Exception:
            # Slurm signals every process of a job: data-loading workers die of the same SIGTERM
            if not terminated.wait(timeout=1.0):
                raise
        finally:
            loop.bar.close()
            loop.log.close()
        if terminated.is_set():
            _interrupted(loop, state)
    state.seconds = time.perf_counter() - loop.started
    if state.best_model is not None:
        model.load_state_dict(state.best_model)
    summary = state.summary()
    summary.update(steps_per_epoch=len(loop.loader), total_steps=loop.total, nan=state.nan_step is not None,
                  stopped_early=state.step < loop.total and state.nan_step is None,
                  collapsed=bool(state.collapsed_steps), kept_best=state.best_model is not None)
    return copy.deepcopy(summary)


def _interrupted(loop, state):
    """SIGTERM: the state saved where it stands, and RunInterrupted raised."""
    state.seconds = time.perf_counter() - loop.started
    if loop.checkpoint:
        _save_checkpoint(loop.checkpoint, loop.model, loop.optimizer, state.as_dict())
    raise RunInterrupted(f"SIGTERM at step {state.step} of {loop.total}: "
                         + (f"checkpoint saved to {loop.checkpoint}; run again to resume" if loop.checkpoint
                            else "no checkpoint path was given, so the progress is lost"))
