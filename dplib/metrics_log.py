"""A training run you can watch while it runs: `metrics.jsonl` in its folder, one JSON line per
logging interval, appended and flushed as it trains, so that another process (`dplib grid
status`, a notebook, `tail -f`) reads it while the run goes on:

    {"step": 200, "epoch": 1, "loss": 0.0412, "lr": 0.001, "samples_per_second": 31.7, "time": ...}
    {"step": 250, "epoch": 1, "loss": 0.0398, "lr": 0.001, "samples_per_second": 30.9, "time": ...,
     "validation": 24.81}

"loss" is the mean training loss over the interval's steps; a line at a validation step carries
its score. A run resumed from its checkpoint at step S first drops the lines past S (written
after that checkpoint, by the process that was killed), so every step is logged once. With the
environment variable DPLIB_TENSORBOARD=1 and the tensorboard package installed, the same scalars
also go to a TensorBoard log in the run folder (`tensorboard/`); off by default, not a dependency.
"""

import json
import os
import time
from pathlib import Path

METRICS = "metrics.jsonl"  # its place in a run folder: dplib.run.folder lists it with the run's other files
TENSORBOARD = "tensorboard"


def read(path):
    """The lines of a metrics file as dicts (a line cut short by a kill is skipped); [] when absent."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = []
    for line in path.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


class MetricsLog:
    """Appends interval lines to `path` (None: logs nothing). `key`: fields every line of this log
    carries and by which a restart finds its own lines (a calibration's point)."""

    def __init__(self, path, every=50, resume_step=0, key=None):
        self.path, self.every, self.key = (Path(path) if path else None), max(1, int(every)), dict(key or {})
        self.losses, self.samples, self.started = [], 0, time.perf_counter()
        self.writer = None
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._keep_until(resume_step)
        if os.environ.get("DPLIB_TENSORBOARD") == "1":
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # the tensorboard package is optional: the JSON lines are the record
                SummaryWriter = None
            if SummaryWriter is not None:
                self.writer = SummaryWriter(str(self.path.parent / TENSORBOARD), purge_step=resume_step or None)

    def _keep_until(self, step):
        """Drop this log's lines past `step` (the last checkpoint's): they are trained again."""
        if not self.path.is_file():
            return
        lines = read(self.path)
        mine = [all(line.get(k) == v for k, v in self.key.items()) for line in lines]
        kept = [line for line, own in zip(lines, mine) if not own or line.get("step", 0) <= step]
        if len(kept) != len(lines) or self.path.read_text() and not self.path.read_text().endswith("\n"):
            from .atomic import atomic_write

            with atomic_write(self.path, "w") as f:
                f.writelines(json.dumps(line) + "\n" for line in kept)

    def step(self, step, epoch, loss, samples, lr, validation=None, force=False):
        """Record one optimizer step; write a line at the end of each interval, at a validation and
        when `force`d (the last step)."""
        if self.path is None:
            return
        self.losses.append(loss)
        self.samples += samples
        self.last = (step, epoch, lr)
        if step % self.every == 0 or validation is not None or force:
            self._write(step, epoch, lr, validation)

    def _write(self, step, epoch, lr, validation=None):
        seconds = time.perf_counter() - self.started
        line = {**self.key, "step": step, "epoch": epoch, "loss": sum(self.losses) / len(self.losses), "lr": lr,
                "samples_per_second": self.samples / seconds if seconds > 0 else None, "time": time.time()}
        if validation is not None:
            line["validation"] = validation
        with open(self.path, "a") as f:
            f.write(json.dumps(line) + "\n")
            f.flush()
        if self.writer is not None:
            for name in ("loss", "lr", "samples_per_second", "validation"):
                if line.get(name) is not None:
                    self.writer.add_scalar(name, line[name], step)
            self.writer.flush()
        self.losses, self.samples, self.started = [], 0, time.perf_counter()

    def close(self):
        """Write the steps since the last line (a SIGTERM between two intervals: the checkpoint it
        saves keeps them, so they are logged now or never), then close."""
        if self.path is not None and self.losses:
            self._write(*self.last)
        if self.writer is not None:
            self.writer.close()
