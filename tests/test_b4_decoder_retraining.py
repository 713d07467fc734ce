"""dplib.benchmarks.b4_decoder_retraining: companion paper 003's decoder retraining (Table
VIII). Moved from test_b4.py when b4.py was split by paper."""

import pytest
import torch

from dplib.benchmarks import b4_decoder_retraining
from dplib.data import embeddings

from conftest import b4_autoencoder


def test_retrained_decoder_leaves_the_encoder_as_it_was(svhn, tmp_path):
    images, labels = svhn
    torch.manual_seed(0)
    model = b4_autoencoder("I-I-PS", 0, variational=True)
    encoder_state = {k: v.clone() for k, v in model.encoder.state_dict().items()}  # incl. batch-norm statistics
    data = embeddings.Images("svhn", images, labels, "reflect")
    retrained, record = b4_decoder_retraining.retrain_decoder(model, "I-I-PS", "svhn", torch.utils.data.Subset(data, range(24)),
                                           torch.utils.data.Subset(data, range(24, 32)), epochs=2, batch_size=8,
                                           lr=1e-3, device="cpu", seed=0, reduction="sum", autoencoder="released",
                                           patience=0, progress=False)
    assert record["step"] == 6 and record["best_score"] > 0
    assert all(torch.equal(v, encoder_state[k]) for k, v in retrained.encoder.state_dict().items())
    assert retrained.decoder is not model.decoder
    # the L1 measure by hand: mean over images of the summed absolute differences
    x = embeddings.to_model_input("svhn", images[:5], "reflect")
    with torch.no_grad():
        expected = (retrained.eval()(x)[0] - x).abs().sum(dim=(1, 2, 3)).mean().item()
    assert b4_decoder_retraining.reconstruction_l1(retrained, "svhn", images[:5], "cpu", "reflect", batch_size=2) == pytest.approx(
        expected, rel=1e-5)
    with pytest.raises(ValueError, match="image encoder"):
        b4_decoder_retraining.retrain_decoder(model, "F-F-FP", "svhn", data, data, epochs=1, batch_size=8, lr=1e-3, device="cpu", seed=0,
                           reduction="sum", autoencoder="released", patience=0)
