"""Reading a dataset's files: one image decoder and one error for data that is not there,
shared by the data modules (bapps, superres, roads)."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import InputError, MissingData


def missing(name, root, what):
    """The error for a dataset part not found under `root`: it names the command that fetches it."""
    return MissingData(f"{what} not found under {root}; run `dplib data download {name} --root {root}` "
                             f"(or `dplib data fixtures {name} --root {root}` for the tiny test version)")


def open_image(path, mode="RGB"):
    """An image file as a PIL image in `mode` ("RGB", "L"); a clear error names a corrupt file."""
    try:
        with Image.open(path) as image:
            return image.convert(mode)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise InputError(f"cannot decode the image {path}: {error}; the file is corrupt: delete it and download "
                         "the dataset again") from error


def to_tensor(image):
    """A PIL image as a float tensor in [0, 1]: (3, H, W) for RGB, (1, H, W) for L."""
    array = np.asarray(image, dtype=np.uint8)
    array = array[..., None] if array.ndim == 2 else array
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255


def resize(image, size, antialias=True):
    """(C, H, W) in [0, 1] resized to size = (h, w), bilinear, with antialiasing or without (what
    torchvision's Resize did to a tensor before 0.17: the Benchmark 3 code's tiles and masks)."""
    return torch.nn.functional.interpolate(image[None], size=size, mode="bilinear", antialias=antialias,
                                           align_corners=False)[0].clamp(0, 1)


def image_problem(path, size=None):
    """Why `path` is not a whole image of `size` (width, height), or None when it is: the file
    is decoded to its last pixel, so a truncated file is found too."""
    try:
        with Image.open(path) as image:
            image.load()
            found = image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        return f"{Path(path).name} cannot be decoded ({error})"
    if size is not None and tuple(found) != tuple(size):
        return f"{Path(path).name} is {found[0]} x {found[1]} px, expected {size[0]} x {size[1]}"
    return None


def read_image(path, mode="RGB"):
    """An image file as a float tensor in [0, 1] (see `to_tensor`)."""
    return to_tensor(open_image(path, mode))
