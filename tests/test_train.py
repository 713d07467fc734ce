"""dplib.train.fit: best model kept, NaN and collapse recorded, exact resume from a checkpoint."""

import pytest
import torch
from torch import nn

from dplib.train import adam, fit


def problem(seed=0):
    """The same data every time; the model initialised with `seed`."""
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    dataset = torch.utils.data.TensorDataset(x, y)
    torch.manual_seed(seed)
    model = nn.Linear(3, 1)
    loss_fn = lambda m, batch: nn.functional.mse_loss(m(batch[0]), batch[1])  # noqa: E731
    validate = lambda m: -nn.functional.mse_loss(m(x), y).item()  # noqa: E731
    return model, loss_fn, dataset, validate


def test_fit_learns_and_keeps_the_best_validated_model():
    model, loss_fn, dataset, validate = problem()
    scores = iter([0.1, 0.9, 0.3, 0.2])  # best at the second validation

    def scripted(m):
        score = next(scores)
        if score == 0.9:
            scripted.best = {k: v.clone() for k, v in m.state_dict().items()}
        return score

    record = fit(model, loss_fn, dataset, scripted, iterations=8, batch_size=16, validate_every=2, progress=False)
    assert record["best_step"] == 4 and record["best_score"] == 0.9 and record["step"] == 8
    assert all(torch.equal(v, scripted.best[k]) for k, v in model.state_dict().items())
    model, loss_fn, dataset, validate = problem()
    before = validate(model)
    record = fit(model, loss_fn, dataset, validate, epochs=20, batch_size=16, lr=0.05, progress=False)
    assert record["best_score"] > before and record["steps_per_epoch"] == 4 and record["step"] == 80


@pytest.mark.parametrize("items, batch, steps", [(1108, 8, 139), (64, 16, 4), (65, 16, 4), (66, 16, 5), (10, 16, 1)])
def test_an_epoch_trains_on_the_last_partial_batch_as_the_released_loaders_did(items, batch, steps):
    """PyTorch's DataLoader default, which the released code kept: ceil(N / batch) steps (B3:
    1108 tiles in batches of 8 are 139 steps), except a last batch of one sample (65 = 4 x 16 +
    1), which batch norm cannot normalise in train mode."""
    x = torch.randn(items, 3)
    dataset = torch.utils.data.TensorDataset(x, x[:, :1])
    seen = []
    loss_fn = lambda m, b: (seen.append(len(b[0])), nn.functional.mse_loss(m(b[0]), b[1]))[1]  # noqa: E731
    record = fit(nn.Linear(3, 1), loss_fn, dataset, lambda m: 0.0, epochs=1, batch_size=batch, progress=False)
    assert record["steps_per_epoch"] == steps and len(seen) == steps and 1 not in seen[:-1]
    assert sum(seen) == items - (items % batch == 1 and items > batch)


def test_patience_stops_after_that_many_validations_without_a_new_best():
    """The released companion code's EarlyStopper: stop when `patience` validations in a row
    bring no new best (min mode: a lower loss)."""
    model, loss_fn, dataset, _ = problem()
    losses = iter([5.0, 4.0, 4.5, 3.0, 3.5, 3.2, 3.1, 1.0, 0.5])  # best 3.0 at validation 4, then 3 worse
    record = fit(model, loss_fn, dataset, lambda m: next(losses), iterations=18, batch_size=16, validate_every=2,
                 mode="min", patience=3, progress=False)
    assert record["best_score"] == 3.0 and record["best_step"] == 8
    assert record["step"] == 14 and record["stopped_early"] and len(record["history"]) == 7
    model, loss_fn, dataset, _ = problem()
    losses = iter([5.0, 4.0, 4.5, 3.0, 3.5, 3.2, 3.1, 1.0, 0.5])
    record = fit(model, loss_fn, dataset, lambda m: next(losses), iterations=18, batch_size=16, validate_every=2,
                 mode="min", progress=False)  # no patience: to the end
    assert record["step"] == 18 and record["best_score"] == 0.5 and not record["stopped_early"]


def test_nan_stops_training_and_is_recorded():
    model, loss_fn, dataset, validate = problem()
    calls = []

    def exploding(m, batch):
        calls.append(1)
        return loss_fn(m, batch) * (float("nan") if len(calls) > 5 else 1.0)

    record = fit(model, exploding, dataset, validate, iterations=20, batch_size=16, validate_every=2, progress=False)
    assert record["nan"] and record["nan_step"] == 5 and record["step"] == 5 and record["kept_best"]
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_collapse_is_recorded_and_never_kept_as_best():
    model, loss_fn, dataset, validate = problem()
    results = iter([{"score": 5.0, "collapsed": False}, {"score": 99.0, "collapsed": True}])
    record = fit(model, loss_fn, dataset, lambda m: next(results), iterations=4, batch_size=16, validate_every=2,
                 progress=False)
    assert record["collapsed"] and record["collapsed_steps"] == [4]
    assert record["best_score"] == 5.0 and record["best_step"] == 2


def test_a_killed_run_resumes_from_its_checkpoint_exactly(tmp_path):
    model, loss_fn, dataset, validate = problem()
    calls = []

    def killed(m, batch):
        calls.append(1)
        if len(calls) == 8:
            raise KeyboardInterrupt  # the process dies between checkpoints (at steps 3 and 6)
        return loss_fn(m, batch)

    checkpoint = tmp_path / "checkpoint.pt"
    with pytest.raises(KeyboardInterrupt):
        fit(model, killed, dataset, validate, iterations=12, batch_size=16, validate_every=3, checkpoint=checkpoint,
            progress=False, seed=3)
    model, loss_fn, dataset, validate = problem(seed=99)  # a fresh process: other initial weights
    record = fit(model, loss_fn, dataset, validate, iterations=12, batch_size=16, validate_every=3,
                 checkpoint=checkpoint, progress=False, seed=3)
    assert record["resumed_from"] == 6 and record["step"] == 12
    # the last checkpoint holds the final weights: the same as a run never interrupted
    final = torch.load(checkpoint, weights_only=False)["model"]
    reference = _final_of_uninterrupted(tmp_path)
    for key, value in final.items():
        torch.testing.assert_close(value, reference[key], rtol=0, atol=0)


def _final_of_uninterrupted(tmp_path):
    model, loss_fn, dataset, validate = problem()
    path = tmp_path / "reference.pt"
    fit(model, loss_fn, dataset, validate, iterations=12, batch_size=16, validate_every=3, checkpoint=path,
        progress=False, seed=3)
    return torch.load(path, weights_only=False)["model"]


def test_corrupt_checkpoint_starts_over(tmp_path):
    model, loss_fn, dataset, validate = problem()
    checkpoint = tmp_path / "checkpoint.pt"
    checkpoint.write_bytes(b"cut short")
    record = fit(model, loss_fn, dataset, validate, iterations=4, batch_size=16, checkpoint=checkpoint,
                 progress=False)
    assert record["resumed_from"] is None and record["step"] == 4


def test_bad_arguments():
    model, loss_fn, dataset, validate = problem()
    with pytest.raises(ValueError, match="exactly one"):
        fit(model, loss_fn, dataset, validate, progress=False)
    with pytest.raises(ValueError, match="empty"):
        fit(model, loss_fn, torch.utils.data.TensorDataset(torch.zeros(0, 3)), validate, iterations=1, progress=False)


def test_adam_is_fused_and_follows_torch_default_adam():
    torch.manual_seed(0)
    models = [nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1)) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    frozen = nn.Parameter(torch.ones(3), requires_grad=False)
    fused = adam(list(models[0].parameters()) + [frozen], lr=1e-2)
    reference = torch.optim.Adam(models[1].parameters(), lr=1e-2)  # torch's default (foreach) kernel
    assert fused.defaults["fused"] and not reference.defaults["fused"]
    assert sum(len(g["params"]) for g in fused.param_groups) == 4  # the frozen tensor is left out
    x, y = torch.randn(32, 8), torch.randn(32, 1)
    for _ in range(20):
        for model, optimizer in zip(models, (fused, reference)):
            optimizer.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_compiled_steps_equal_eager_steps(tmp_path):
    """compile=True trains B2's transformation network through torch.compile (model + loss
    network); three plain SGD steps update the weights as eager steps do.

    The tolerance is derived, not tuned. Compiled kernels sum in another order, and a sum of n
    terms in another order may differ by n * eps times the sum of the terms' sizes, which
    cancellation can make far larger than the result: in float32 that noise reached 0.4% of the
    largest update here (4096-term sums), enough to make a fixed tolerance flaky. The test
    therefore runs in float64, where eps is 2**29 times smaller: the noise falls to about 1e-11 of
    the largest update, and a tolerance of 1e-6 of it leaves five orders of margin while a 1%
    change to the compiled step (or no step) still fails."""
    from torch._dynamo.utils import counters
    from torch.utils.data import default_collate

    from dplib.benchmarks import b2
    from dplib.data import superres
    from dplib.lossnets import LossNetwork
    from dplib.models import TransformerNet

    root = superres.write_fixture(tmp_path / "sr")
    pairs = superres.CocoPairs(root, "train", count=8, scale=4, crop=32, crop_mode="resize_center", degradation="pil",
                               seed=0)
    loss_network = LossNetwork("squeezenet1_1", "early", weights=None, normalize_input=False).double()
    models = {}
    torch._dynamo.reset()
    for compile in (False, True):
        torch.manual_seed(0)
        model = TransformerNet(4).double()
        start = {name: value.clone() for name, value in model.named_parameters()}
        fit(model, b2.make_loss(loss_network, 4, "cpu"), pairs, lambda m: 0.0, iterations=3, batch_size=4,
            validate_every=3, progress=False, optimizer=torch.optim.SGD(model.parameters(), lr=1e-2),
            compile=compile, collate_fn=lambda items: [x.double() for x in default_collate(items)])
        models[compile] = {name: value.detach() - start[name] for name, value in model.named_parameters()}
        if not compile:
            assert counters["stats"]["unique_graphs"] == 0
    assert counters["stats"]["unique_graphs"] >= 1  # the compiled run did compile
    largest_update = max(update.abs().max().item() for update in models[False].values())
    assert largest_update > 1e-5  # the steps did move the weights
    for name, update in models[False].items():
        torch.testing.assert_close(models[True][name], update, rtol=0, atol=1e-6 * largest_update,
                                   msg=lambda detail, name=name: f"{name}: {detail}")


class _Planted:
    """What a hostile checkpoint carries: unpickling it calls Path.touch (any callable would run)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        from pathlib import Path

        return (Path.touch, (Path(self.marker),))


def test_a_checkpoint_carrying_a_pickled_callable_is_refused_not_run(tmp_path):
    from dplib.errors import UserError
    from dplib.train import UnsafeCheckpoint

    model, loss_fn, dataset, validate = problem()
    checkpoint, marker = tmp_path / "checkpoint.pt", tmp_path / "ran"
    fit(model, loss_fn, dataset, validate, iterations=2, batch_size=16, checkpoint=checkpoint, progress=False)
    saved = torch.load(checkpoint, weights_only=True)  # what fit writes loads without pickle's code paths
    saved["state"]["planted"] = _Planted(marker)
    torch.save(saved, checkpoint)
    with pytest.raises(UnsafeCheckpoint) as refused:
        fit(model, loss_fn, dataset, validate, iterations=4, batch_size=16, checkpoint=checkpoint, progress=False)
    assert not marker.exists()  # refused, not executed
    assert isinstance(refused.value, UserError) and "\n" not in str(refused.value)
    assert "could run code as it loads" in str(refused.value) and str(checkpoint) in str(refused.value)
    torch.load(checkpoint, weights_only=False)  # the same file with pickle's full powers runs the callable
    assert marker.exists()


@pytest.mark.exercises(val_every=0)  # the notebooks pass validate_every=val_every or None
def test_without_an_interval_validation_runs_once_per_epoch():
    model, loss_fn, dataset, validate = problem()
    record = fit(model, loss_fn, dataset, validate, iterations=12, batch_size=16, validate_every=0 or None,
                 progress=False)
    assert record["steps_per_epoch"] == 4 and [h["step"] for h in record["history"]] == [4, 8, 12]
