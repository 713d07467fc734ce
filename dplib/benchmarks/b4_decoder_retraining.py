"""Companion paper 003's Table VIII: the decoder of a trained autoencoder retrained with the
pixel-wise loss on its frozen encoder's embeddings, and the test images' mean L1
reconstruction error, which says how much of the image the embeddings keep.
"""

import torch

from ..data.embeddings import SIZE, to_model_input
from ..train import adam, fit
from .b4 import IMAGE_PARTS, check_retrainable, make_loss, make_validation

class DecoderOnFrozenEncoder(torch.nn.Module):
    """A new image decoder on a trained encoder that stays as it is (no gradients, batch norm in
    eval mode, the mean embedding of a VAE): forward -> (reconstruction, None, None)."""

    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder, self.decoder = encoder.requires_grad_(False), decoder

    def train(self, mode=True):
        super().train(mode)
        self.encoder.eval()
        return self

    def forward(self, x):
        with torch.no_grad():
            z = self.encoder(x)[0]  # (N, z)
        return self.decoder(z), None, None


def retrain_decoder(model, procedure, dataset, train_set, validation_set, *, epochs, batch_size, lr, device, seed,
                    reduction, autoencoder, patience, num_workers=0, checkpoint=None, amp=False, progress=True):
    """003's decoder retraining: a freshly initialised (seeded) image decoder trained with the
    pixel-wise loss on the frozen encoder's embeddings of the autoencoder's images, keeping its
    best epoch by validation loss. Returns (DecoderOnFrozenEncoder, fit's summary)."""
    check_retrainable(procedure)
    torch.manual_seed(seed)
    decoder = IMAGE_PARTS[autoencoder][1](SIZE[dataset], model.encoder.mean.out_features)
    retrained = DecoderOnFrozenEncoder(model.encoder, decoder).to(device)
    loss_fn = make_loss("I-I-PW", dataset, None, device, reduction, kl_weight=0.0, feature_sigmoid=False)
    summary = fit(retrained, loss_fn, train_set, make_validation(loss_fn, validation_set, seed), epochs=epochs,
                 batch_size=batch_size, lr=lr, mode="min", device=device, amp=amp, seed=seed, patience=patience,
                 num_workers=num_workers, checkpoint=checkpoint, optimizer=adam(decoder.parameters(), lr=lr),
                 description=f"retrain decoder {procedure} {dataset}", progress=progress)
    return retrained, summary


@torch.no_grad()
def reconstruction_l1(model, dataset, images, device, padding, batch_size=256):
    """Mean over images of the L1 norm of (reconstruction - image), summed over the 3 x s x s
    values in [0, 1] (003's Table VIII measure, the released torch.norm(x - y, 1, dim=1))."""
    model.eval()
    total = 0.0
    for start in range(0, len(images), batch_size):
        x = to_model_input(dataset, images[start:start + batch_size], padding).to(device)  # (N, 3, s, s)
        total += (model(x)[0].float() - x).abs().flatten(1).sum(dim=1).sum().item()
    return total / len(images)
