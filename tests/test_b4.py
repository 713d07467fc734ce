"""dplib.benchmarks.b4: the autoencoders, their losses and validation, the run's checks. The
procedures and their feature cache are tested in test_b4_procedures.py, the predictors in
test_b4_predictors.py, 003's decoder retraining in test_b4_decoder_retraining.py (moved there
from this module when b4.py was split by paper)."""

import pytest
import torch

from dplib.benchmarks import b4, b4_procedures
from dplib.data import embeddings
from dplib.models.autoencoder import Autoencoder, ImageDecoder, ImageEncoder, kl_divergence, mlp

from conftest import b4_autoencoder, svhn_batch


def test_models_shapes():
    for size in (64, 96):
        model = Autoencoder(ImageEncoder(size, 64, variational=True), ImageDecoder(size, 64)).eval()
        out, mean, log_variance = model(torch.rand(2, 3, size, size))
        assert out.shape == (2, 3, size, size) and mean.shape == log_variance.shape == (2, 64)
        assert 0 <= out.min() and out.max() <= 1
    assert len([m for m in ImageEncoder(64).modules() if isinstance(m, torch.nn.Conv2d)]) == 4
    assert kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0
    assert kl_divergence(torch.ones(1, 2), torch.zeros(1, 2)).item() == pytest.approx(1.0)
    assert len([m for m in mlp(64, (64, 32)) if isinstance(m, torch.nn.Linear)]) == 3
    with pytest.raises(ValueError, match="procedure"):
        b4_procedures.check_procedure("I-I-XX")


@pytest.mark.parametrize("autoencoder", ["released", "simple"])
def test_both_autoencoders_reconstruct_both_datasets(autoencoder):
    for dataset, size in (("svhn", 64), ("stl10", 96)):
        model = b4.build_autoencoder("I-I-PS", dataset, 0, 16, True, autoencoder, False).eval()
        out, mean, _ = model(torch.rand(2, 3, size, size))
        assert out.shape == (2, 3, size, size) and mean.shape == (2, 16)
    with pytest.raises(ValueError, match="choose one of released, simple"):
        b4.build_autoencoder("I-I-PS", "svhn", 0, 16, False, "tiny", False)


def test_the_released_mean_loss_and_kl_weight(svhn):
    """reduction="mean", kl_weight=0.02 is the released FourLayerCVAE.loss with gamma 0.01:
    F.mse_loss(x', x) + 0.01 * -mean(1 + logvar - mu^2 - exp(logvar)) (twice the KL per element)."""
    images, _ = svhn
    torch.manual_seed(0)
    model = b4_autoencoder("I-I-PW", 0, variational=True).eval()  # eval: z = mean, no sampling
    batch = svhn_batch(images)
    x = batch[0]
    reconstruction, mu, logvar = model(x)
    released = (torch.nn.MSELoss()(reconstruction, x)
                + 0.01 * -torch.mean(1 + logvar - mu.pow(2) - logvar.exp()))
    ours = b4.make_loss("I-I-PW", "svhn", None, "cpu", "mean", 0.02, False)(model, batch)
    assert ours.item() == pytest.approx(released.item(), rel=1e-5)
    # the default: squared error summed per image, KL summed over z, both averaged over the batch
    by_hand = ((reconstruction - x) ** 2).sum(dim=(1, 2, 3)).mean() + kl_divergence(mu, logvar)
    assert b4.make_loss("I-I-PW", "svhn", None, "cpu", "sum", 1.0, False)(model, batch).item() == pytest.approx(
        by_hand.item(), rel=1e-5)
    with pytest.raises(ValueError, match="loss reduction"):
        b4.make_loss("I-I-PW", "svhn", None, "cpu", "median", 1.0, False)


RELEASED_CHOICES = dict(procedure="I-I-PS", dataset="svhn", predictor="mlp", loss_reduction="sum", retrain_decoder=False,
                        predictor_selection="loss_then_accuracy", split="random", stl10_orientation="upright",
                        vae_validation="sample")


@pytest.mark.parametrize("change, message", [
    (dict(procedure="I-I-XX"), "unknown procedure"),
    (dict(dataset="cifar10"), "unknown dataset 'cifar10'"),
    (dict(predictor="svm"), "unknown predictor 'svm'"),
    (dict(loss_reduction="median"), "unknown loss reduction 'median'"),
    (dict(procedure="F-F-FP", retrain_decoder=True), "needs an image encoder"),
    (dict(predictor_selection="f1"), "unknown predictor selection 'f1'"),
    (dict(split="stratified"), "unknown split 'stratified'"),
    (dict(stl10_orientation="flipped"), "unknown STL-10 orientation 'flipped'"),
    (dict(vae_validation="median"), "unknown VAE validation 'median'"),
])
def test_a_b4_run_with_a_bad_choice_is_refused_in_one_line(change, message):
    with pytest.raises(ValueError, match=message):
        b4.check_run(**dict(RELEASED_CHOICES, **change))
    b4.check_run(**dict(RELEASED_CHOICES, procedure="I-F-FP", dataset="stl10", predictor="search", loss_reduction="mean",
                        retrain_decoder=True, predictor_selection="loss", split="ordered"))  # 003's choices pass


def test_the_feature_decoder_ends_in_a_plain_linear_as_released():
    """The released FeaturePredictorCVAE / FeatureAutoencoder decoders (perceptual_embedder.py):
    Linear(z, hidden), ReLU, Linear(hidden, P), no sigmoid; feature_decoder_sigmoid adds one."""
    layers = [type(m).__name__ for m in b4_autoencoder("I-F-FP", 600).decoder.body]
    assert layers == ["Linear", "ReLU", "Linear"]
    with_sigmoid = b4.build_autoencoder("I-F-FP", "svhn", 600, 16, False, "released", True)
    assert type(with_sigmoid.decoder.body[-1]).__name__ == "Sigmoid"


def test_a_vae_samples_z_when_validating_as_released_and_the_sample_is_seeded(svhn):
    """The released forward sampled z whenever the model was variational, validation included;
    here the sample comes from a generator seeded anew at every validation, so a model's
    validation loss is repeatable; vae_validation "mean" validates on the mean."""
    images, _ = svhn
    data = embeddings.Images("svhn", images, torch.zeros(len(images), dtype=torch.long), "reflect")
    loss_fn = b4.make_loss("I-I-PW", "svhn", None, "cpu", "sum", 1.0, False)
    torch.manual_seed(0)
    sampling = b4.build_autoencoder("I-I-PW", "svhn", 0, 16, True, "released", False, validation_sample=True).eval()
    mean_only = b4.build_autoencoder("I-I-PW", "svhn", 0, 16, True, "released", False).eval()
    mean_only.load_state_dict(sampling.state_dict())
    validate = b4.make_validation(loss_fn, data, seed=3)
    first, second, on_mean = validate(sampling), validate(sampling), validate(mean_only)
    assert first == second and first != on_mean
    assert sampling.sampling is None  # outside validation the mean again (embeddings, figures)
    with torch.no_grad():
        x = data[0][0][None]
        torch.testing.assert_close(sampling(x)[0], mean_only(x)[0])
