"""dplib.benchmarks.b4_procedures: companion paper 004's six procedures train, and the loss
network's features of the training images are cached on disk when they fit, cost one pass per
step (none for feature prediction) and train to the same weights as recomputed ones. Moved from
test_b4.py when b4.py was split by paper."""

import numpy as np
import pytest
import torch

from dplib.benchmarks import b4, b4_procedures
from dplib.cache import size_gb
from dplib.data import embeddings
from dplib.lossnets import LossNetwork

from conftest import b4_autoencoder, svhn_batch


@pytest.fixture(scope="module")
def network():
    return LossNetwork("alexnet", "semi_early", weights=None)


class Counting(torch.nn.Module):
    """A loss network wrapper that counts its forward passes."""

    def __init__(self, network):
        super().__init__()
        self.network, self.points, self.calls = network, network.points, 0

    def forward(self, x, **kwargs):
        self.calls += 1
        return self.network(x, **kwargs)


@pytest.mark.parametrize("procedure", list(b4_procedures.PROCEDURES))
@pytest.mark.parametrize("variational", [False, True])
def test_every_procedure_trains(procedure, variational, svhn, network, tmp_path):
    images, _ = svhn
    shape = b4_procedures.feature_shape(network, "svhn")
    cache = b4_procedures.FeatureCache(network, "svhn", images, tmp_path / "f.f32", "cpu", "reflect", progress=False)
    model = b4_autoencoder(procedure, int(np.prod(shape)), variational)
    loss = b4.make_loss(procedure, "svhn", network, "cpu", "sum", 1.0, False, cache)(model, svhn_batch(images))
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(loss) and loss > 0
    assert all(p.grad is not None for p in model.parameters())
    assert all(p.grad is None for p in network.parameters())
    embedding = b4.embed(model, procedure, "svhn", images[:5], network, "cpu", False, "reflect")
    assert embedding.shape == (5, 16)
    x = embeddings.to_model_input("svhn", images[:5], "reflect")
    with torch.no_grad():
        inputs = x if procedure.startswith("I") else network(x)["semi_early"]
        mean = model.encoder(inputs)[0]  # a VAE embeds by its mean, not a sample
    torch.testing.assert_close(embedding, mean)


def test_cached_features_cost_one_loss_network_pass_per_step_and_none_for_prediction(svhn, network, tmp_path):
    images, _ = svhn
    counting = Counting(network)
    cache = b4_procedures.FeatureCache(counting, "svhn", images, tmp_path / "f.f32", "cpu", "reflect", batch_size=32,
                            progress=False)
    counting.calls = 0
    feature_size = int(np.prod(b4_procedures.feature_shape(network, "svhn")))
    batch = svhn_batch(images)
    for procedure, with_cache, without_cache in (("I-I-PS", 1, 2), ("I-F-FP", 0, 1), ("F-F-FP", 0, 1),
                                                 ("I-I-PW", 0, 0)):
        model = b4_autoencoder(procedure, feature_size)
        for cached, expected in ((cache, with_cache), (None, without_cache)):
            counting.calls = 0
            b4.make_loss(procedure, "svhn", counting, "cpu", "sum", 1.0, False, cached)(model, batch)
            assert counting.calls == expected, (procedure, cached is not None)


def test_feature_cache_holds_the_features_and_is_reused(svhn, network, tmp_path):
    images, _ = svhn
    path = tmp_path / "f.f32"
    cache = b4_procedures.FeatureCache(network, "svhn", images, path, "cpu", "reflect", batch_size=7, progress=False)
    with torch.no_grad():
        direct = network(embeddings.to_model_input("svhn", images[[3, 20]], "reflect"))["semi_early"]
    assert cache[[3, 20]].dtype == torch.float32 and torch.equal(cache[[3, 20]], direct)  # the features, as computed
    stamp = path.stat().st_mtime_ns
    b4_procedures.FeatureCache(network, "svhn", images, path, "cpu", "reflect", progress=False)
    assert path.stat().st_mtime_ns == stamp
    assert size_gb((531_131, 64, 64, 64), b4_procedures.CACHE_DTYPE) > 200  # why early points of big datasets are not cached


@pytest.mark.exercises(cache_limit_gb=0)
def test_target_features_are_cached_only_when_they_fit(svhn, network, tmp_path):
    images, _ = svhn
    cache, size = b4_procedures.target_features(network, "svhn", images, "cpu", tmp_path / "f.f32", 1.0, "reflect",
                                     progress=False)
    assert isinstance(cache, b4_procedures.FeatureCache) and size == int(np.prod(b4_procedures.feature_shape(network, "svhn")))
    none, same_size = b4_procedures.target_features(network, "svhn", images, "cpu", tmp_path / "g.f32", 0, "reflect")
    assert none is None and same_size == size and not (tmp_path / "g.f32").exists()  # cache_limit_gb 0: never


def test_a_cached_run_trains_to_the_same_weights_as_an_uncached_one(svhn, network, tmp_path):
    """The cache holds the features in float32, as the loss network gives them: whether they fit
    cache_limit_gb no longer changes the numbers a run trains on."""
    from dplib.train import fit

    images, _ = svhn
    data = embeddings.Images("svhn", images, torch.zeros(len(images), dtype=torch.long), "reflect")
    weights = []
    for limit in (1.0, 0.0):  # fits, does not fit
        cache, size = b4_procedures.target_features(network, "svhn", images, "cpu", tmp_path / f"{limit}.f32", limit, "reflect",
                                         progress=False)
        torch.manual_seed(0)
        model = b4_autoencoder("I-I-PS", size)
        loss_fn = b4.make_loss("I-I-PS", "svhn", network, "cpu", "sum", 1.0, False, cache)
        fit(model, loss_fn, data, lambda m: 0.0, iterations=3, batch_size=8, mode="min", progress=False)
        weights.append(model.state_dict())
        assert (cache is None) == (limit == 0.0)
    for name in weights[0]:
        torch.testing.assert_close(weights[0][name], weights[1][name], rtol=0, atol=1e-6)
