"""dplib.metrics_log: a run's metrics.jsonl, one line per interval, read while it is written, each
step once across a resume."""

import json

import pytest

from dplib.metrics_log import METRICS, MetricsLog, read


def test_a_line_per_interval_with_its_mean_loss_and_at_each_validation(tmp_path):
    log = MetricsLog(tmp_path / METRICS, every=3, key={"phase": "train"})
    for step, loss in enumerate([1.0, 2.0, 3.0, 4.0, 6.0], start=1):
        log.step(step, 1, loss, samples=4, lr=0.001, validation=0.5 if step == 4 else None)
    lines = read(tmp_path / METRICS)  # read while the log is open: every line is on disk already
    assert [(line["step"], line["loss"]) for line in lines] == [(3, 2.0), (4, 4.0)]  # (1 + 2 + 3) / 3; then 4
    assert lines[1]["validation"] == 0.5 and "validation" not in lines[0]
    assert all(line["lr"] == 0.001 and line["phase"] == "train" and line["samples_per_second"] > 0 for line in lines)
    log.close()  # the steps since the last line: written at close (a SIGTERM between intervals)
    assert [(line["step"], line["loss"]) for line in read(tmp_path / METRICS)][-1] == (5, 6.0)


def test_a_resume_drops_the_lines_past_its_checkpoint_and_only_its_own(tmp_path):
    path = tmp_path / METRICS
    lines = [{"phase": "train", "step": s, "loss": 1.0} for s in (10, 20, 30)] + \
        [{"phase": "decoder_checkpoint", "step": s, "loss": 2.0} for s in (10, 20)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"phase": "train", "st')  # cut by a kill
    MetricsLog(path, every=10, resume_step=20, key={"phase": "train"})
    kept = read(path)
    assert [(line["phase"], line["step"]) for line in kept] == [("train", 10), ("train", 20),
                                                                ("decoder_checkpoint", 10), ("decoder_checkpoint", 20)]
    assert path.read_text().endswith("\n")


def test_no_path_logs_nothing(tmp_path):
    log = MetricsLog(None)
    log.step(1, 1, 1.0, 1, 0.1, force=True)
    log.close()
    assert not list(tmp_path.iterdir())


def test_fit_writes_beside_its_checkpoint_and_a_resume_logs_each_step_once(tmp_path):
    """fit's log: a line every log_every steps and at validations; killed in step 9's validation
    (the checkpoint at step 6, line 8 written), the resumed run drops line 8 and logs 7 onwards once."""
    import torch

    from dplib.train import fit

    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    data = torch.utils.data.TensorDataset(x, x.sum(dim=1, keepdim=True))
    loss_fn = lambda m, batch: torch.nn.functional.mse_loss(m(batch[0]), batch[1])  # noqa: E731
    checkpoint = tmp_path / "checkpoint.pt"
    calls = {"n": 0}

    def validate(model):
        calls["n"] += 1
        if calls["n"] == 3:  # the third validation (step 9): the process dies before it returns
            raise KeyboardInterrupt
        return 0.0

    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        fit(torch.nn.Linear(3, 1), loss_fn, data, validate, iterations=12, batch_size=8, validate_every=3,
            checkpoint=checkpoint, log_every=2, progress=False)
    before = [line["step"] for line in read(tmp_path / METRICS)]
    assert before == [2, 3, 4, 6, 8]  # step 9 died in its validation, before its loss was logged
    calls["n"] = 10
    fit(torch.nn.Linear(3, 1), loss_fn, data, validate, iterations=12, batch_size=8, validate_every=3,
        checkpoint=checkpoint, log_every=2, progress=False)
    steps = [line["step"] for line in read(tmp_path / METRICS)]
    assert steps == [2, 3, 4, 6, 8, 9, 10, 12]  # the checkpoint was at step 6: steps 7 and 8 trained again
    assert len(steps) == len(set(steps))
