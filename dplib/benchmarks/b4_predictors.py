"""The predictors that judge an autoencoder's embeddings in Benchmark 4: the main paper's
seven MLPs (or the linear one of them), trained as the authors' code did by default (mean
squared error against one-hot targets, LeakyReLU(0.01) between layers), or companion paper
003's search (36 MLPs, and its 2 linear regressors apart). Each is trained on embeddings
already on its device through dplib.train's parts (its state, its validation keeping the best
epoch, its patience rule), with whole-tensor batches for the step.
"""

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..models.autoencoder import MLP_SHAPES, mlp, search_shapes_003
from ..progress import tqdm
from ..train import TrainingState, adam, better_than, validate_and_keep_best

PREDICTOR_LOSSES = ("mse_onehot", "cross_entropy")


def predictor_loss(outputs, labels, kind="mse_onehot"):
    """The predictors' training loss: MSE against one-hot targets (the authors') or cross-entropy."""
    if kind == "mse_onehot":
        return F.mse_loss(outputs, F.one_hot(labels, outputs.shape[1]).to(outputs.dtype))
    if kind == "cross_entropy":
        return F.cross_entropy(outputs, labels)
    raise InputError(f"unknown predictor loss {kind!r}; choose one of {', '.join(PREDICTOR_LOSSES)}")


PREDICTORS = ("mlp", "linear", "search")


def predictor_specs(family="mlp", activation="leaky_relu"):
    """[(hidden sizes, activation, output)] of a predictor family:
    "mlp": the main paper's seven shapes with `activation` between layers, raw outputs;
    "linear": the no-hidden-layer one of those;
    "search": 003's MLP search, 1-2 hidden layers of 32/64/128 (none wider than the one
        before) x ReLU or sigmoid x raw or softmax outputs (36 MLPs);
    "search_linear": 003's linear regressors, raw or softmax outputs (2)."""
    if family == "mlp":
        return [(shape, activation, None) for shape in MLP_SHAPES]
    if family == "linear":
        return [((), activation, None)]
    if family == "search":
        return [(shape, act, out) for shape in search_shapes_003() for act in ("relu", "sigmoid")
                for out in (None, "softmax")]
    if family == "search_linear":
        return [((), activation, out) for out in (None, "softmax")]
    raise InputError(f"unknown predictor family {family!r}; choose mlp, linear, search or search_linear")


# Which epoch of each predictor is kept, and which predictor is tested: (epoch by, predictor by)
PREDICTOR_SELECTIONS = {"loss_then_accuracy": ("loss", "accuracy"), "accuracy": ("accuracy", "accuracy"),
                        "loss": ("loss", "loss")}


def patience(value, epochs):
    """Early-stopping patience: the released max(10, epochs / 20) when `value` is None, else `value`
    (0: none)."""
    return max(10, epochs / 20) if value is None else value


def predictor_inputs(train, validation, test, standardize):
    """The embeddings the predictors read: the encoder's raw mean, as the released encode_data
    passes it (standardize=False), or each dimension standardised with the training split's
    mean and standard deviation. Each argument and result: (embeddings (N, z), labels)."""
    if not standardize:
        return train, validation, test
    mean, std = train[0].mean(dim=0), train[0].std(dim=0).clamp_min(1e-6)
    return [((e - mean) / std, labels) for e, labels in (train, validation, test)]


def _train_predictor(model, train, validation, epochs, batch_size, lr, seed, loss, epoch_by, patience):
    """One predictor trained on embeddings already on its device (whole-tensor batches: 7 x 100
    epochs of small steps, where a DataLoader's per-sample collation would cost more than the
    step), its epoch kept by validation `epoch_by` ("accuracy", else loss), early stopping after
    `patience` epochs without a new best. The model ends with the kept epoch's weights; returns
    its summary (best validation accuracy and loss, best epoch, epochs, the two curves)."""
    (x, y), (xv, yv) = train, validation
    optimizer = adam(model.parameters(), lr=lr)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    # fit's state and validation, one validation per epoch (its "step" is the epoch): higher
    # accuracy, or lower loss, is better, and the first epoch that reaches it is kept
    state = TrainingState()
    better = better_than("max" if epoch_by == "accuracy" else "min")

    def validate(model):
        outputs = model(xv)
        accuracy = (outputs.argmax(dim=1) == yv).float().mean().item()
        validation_loss = predictor_loss(outputs, yv, loss).item()
        return {"score": accuracy if epoch_by == "accuracy" else validation_loss, "accuracy": accuracy,
                "validation_loss": validation_loss}

    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator).to(x.device)
        for start in range(0, len(x), batch_size):
            batch = order[start:start + batch_size]
            value = predictor_loss(model(x[batch]), y[batch], loss)
            optimizer.zero_grad(set_to_none=True)
            value.backward()  # no sync with the device per step, unlike fit's step (its NaN check)
            optimizer.step()
        state.step = epoch
        validate_and_keep_best(model, validate, state, better)
        if state.patience_spent(patience):
            break
    if state.best_model is not None:  # None: no epoch's score was finite; the last epoch stays
        model.load_state_dict(state.best_model)
    history = state.history
    best = history[state.best_step] if state.best_step is not None else history[-1]
    return dict(best_validation_accuracy=best["accuracy"], best_validation_loss=best["validation_loss"],
                best_epoch=best["step"], epochs=len(history), curve=[h["accuracy"] for h in history],
                loss_curve=[h["validation_loss"] for h in history])


def train_predictors(train, validation, test, *, epochs, batch_size, lr, seed, device, loss, select, patience,
                     standardize, specs, progress=True):
    """Train one predictor per spec of `specs` (predictor_specs) on embeddings, early stopping
    after `patience` epochs without a new best (0: all epochs), and test one (`select`, a key
    of PREDICTOR_SELECTIONS):
      "loss_then_accuracy": each predictor's epoch with the lowest validation loss (the
          released main-paper code's checkpoint), then the predictor with the best validation
          accuracy (the main paper's text);
      "accuracy": the epoch and the predictor by validation accuracy;
      "loss": both by the lowest validation loss (the companion papers' text and code).
    Ties: the first epoch, the first (smaller) predictor. standardize: predictor_inputs.

    train / validation / test: (embeddings (N, z), labels (N,)). Returns (test accuracy,
    per-predictor summaries [{hidden, activation, output, best_validation_accuracy,
    best_validation_loss, best_epoch, epochs, curve (validation accuracy per epoch), loss_curve}],
    chosen index)."""
    predictor_loss(torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), loss)  # a bad name stops here
    if select not in PREDICTOR_SELECTIONS:
        raise InputError(f"unknown predictor selection {select!r}; choose one of {', '.join(PREDICTOR_SELECTIONS)}")
    epoch_by, predictor_by = PREDICTOR_SELECTIONS[select]
    train, validation, test = predictor_inputs(train, validation, test, standardize)
    (x, y), (xv, yv), (xt, yt) = [(e.to(device), l.to(device)) for e, l in (train, validation, test)]
    summaries, states = [], []
    for hidden, spec_activation, output in tqdm(specs, desc="predictors", leave=False, disable=not progress):
        torch.manual_seed(seed)
        model = mlp(x.shape[1], hidden, activation=spec_activation, output=output).to(device)
        summary = _train_predictor(model, (x, y), (xv, yv), epochs, batch_size, lr, seed, loss, epoch_by, patience)
        states.append(model)
        summaries.append(dict(hidden=list(hidden), activation=spec_activation, output=output, **summary))
    keys = [r["best_validation_accuracy"] if predictor_by == "accuracy" else -r["best_validation_loss"]
            for r in summaries]
    chosen = int(np.argmax(keys))  # ties: the first (the smaller network)
    with torch.no_grad():
        test_accuracy = (states[chosen](xt).argmax(dim=1) == yt).float().mean().item()
    return test_accuracy, summaries, chosen
