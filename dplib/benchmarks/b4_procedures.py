"""Companion paper 004's six ways to train an image encoder, and the loss network's features
they read (the main paper's benchmark is one of them, I-I-PS):

    I-I-PW  image -> image, pixel-wise loss          I-I-PS  image -> image, Eq. 6 (the benchmark)
    F-I-PW  features -> image, pixel-wise loss       F-I-PS  features -> image, Eq. 6
    I-F-FP  image -> features, feature prediction    F-F-FP  features -> features, feature prediction

"features" are the loss network's features at the run's point. They never change for a
training image, so they are computed once into a float32 memory-mapped file when they fit
`cache_limit_gb` (FeatureCache): Eq. 6 then needs one loss-network pass per step, and the FP
procedures none. dplib.benchmarks.b4 trains and scores every procedure.
"""

import math

import numpy as np
import torch

from ..cache import ArrayCache, size_gb
from ..data.embeddings import SIZE, to_model_input
from ..errors import InputError

PROCEDURES = {  # name: (encoder input, decoder output, loss), in companion paper 004's order
    "I-I-PW": ("image", "image", "pixel"), "I-I-PS": ("image", "image", "perceptual"),
    "I-F-FP": ("image", "feature", "prediction"), "F-I-PW": ("feature", "image", "pixel"),
    "F-I-PS": ("feature", "image", "perceptual"), "F-F-FP": ("feature", "feature", "prediction"),
}


def check_procedure(procedure):
    if procedure not in PROCEDURES:
        raise InputError(f"unknown procedure {procedure!r}; choose one of {', '.join(PROCEDURES)}")
    return PROCEDURES[procedure]


def needs_loss_network(procedure):
    encoder, decoder, loss = check_procedure(procedure)
    return "feature" in (encoder, decoder) or loss == "perceptual"


def feature_shape(loss_network, dataset):
    """(C, h, w) of the loss network's features for this dataset's images."""
    point = loss_network.points[0]
    with torch.no_grad():
        probe = torch.zeros(1, 3, SIZE[dataset], SIZE[dataset], device=next(loss_network.buffers()).device)
        return tuple(loss_network(probe)[point].shape[1:])


CACHE_DTYPE = np.float32  # the features as the loss network gives them: a cached run trains as an uncached one


class FeatureCache:
    """The loss network's features of every image of `images`, float32, in a memory-mapped
    file (N, C, h, w), computed once and reused by every epoch (and by reruns)."""

    def __init__(self, loss_network, dataset, images, path, device, padding, batch_size=256, progress=True):
        point = loss_network.points[0]

        @torch.no_grad()
        def features(start, stop):
            x = to_model_input(dataset, images[start:stop], padding).to(device)
            return loss_network(x)[point].float().cpu().numpy()

        shape = (len(images),) + feature_shape(loss_network, dataset)
        self.cache = ArrayCache(path, shape, CACHE_DTYPE, features, batch=batch_size, description="target features",
                                progress=progress)

    def __getitem__(self, indices):
        return torch.from_numpy(np.array(self.cache.array[np.asarray(indices)]))

    def remove(self):
        """Delete the cache file: once the run is complete nothing reads it again."""
        self.cache.remove()


def target_features(loss_network, dataset, images, device, path, cache_limit_gb, padding, progress=True):
    """(FeatureCache or None, feature count): the training images' features cached on disk when
    they fit `cache_limit_gb`, else None (they are then computed every step)."""
    shape = feature_shape(loss_network, dataset)
    if size_gb((len(images),) + shape, CACHE_DTYPE) > cache_limit_gb:
        return None, math.prod(shape)
    return (FeatureCache(loss_network, dataset, images, path, device, padding, progress=progress),
            math.prod(shape))
