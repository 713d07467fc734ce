"""The paper's four benchmarks, one module each, named as the notebooks name them:

    b1  perceptual similarity on BAPPS (Eq. 1, 2AFC and JND)        notebooks/b1_perceptual_similarity.ipynb
    b2  super-resolution x4 / x8 with Eq. 3 (PSNR, SSIM)             notebooks/b2_super_resolution.ipynb
    b3  road delineation with an iterative U-Net and Eq. 5           notebooks/b3_delineation.ipynb
    b4  autoencoder embeddings with Eq. 6, and the companion papers' notebooks/b4_autoencoding.ipynb
        procedures (I-I-PW ... F-F-FP, VAEs, 003's predictor search)

Each module holds its benchmark's protocol helpers (losses, validation, evaluation) and its
score rows; `record` is the run record every benchmark notebook writes (result.json);
`tutorials` the tiny live versions the teaching notebooks run. The benchmarks use the
library (dplib's top level); the grid runner (dplib.run) uses them, never the other way.
"""

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Benchmark:
    """A benchmark as the grid, the data commands and the analysis see it."""

    name: str           # as params files name it (`benchmark: b2`)
    module: str         # its code: data_needs(parameters) -> {dataset: needs}, its score rows
    notebook: str       # relative to the repository root
    params: str         # its params file
    datasets: tuple     # the datasets its runs read (dplib.data.registry)

    def code(self):
        return importlib.import_module(self.module)

    def data_needs(self, parameters):
        """{dataset: needs} of one run with these notebook parameters."""
        return self.code().data_needs(parameters)


BENCHMARKS = {b.name: b for b in (
    Benchmark("b1", "dplib.benchmarks.b1", "notebooks/b1_perceptual_similarity.ipynb", "params/b1.yaml", ("bapps",)),
    Benchmark("b2", "dplib.benchmarks.b2", "notebooks/b2_super_resolution.ipynb", "params/b2.yaml", ("superres",)),
    Benchmark("b3", "dplib.benchmarks.b3", "notebooks/b3_delineation.ipynb", "params/b3.yaml", ("roads",)),
    Benchmark("b4", "dplib.benchmarks.b4", "notebooks/b4_autoencoding.ipynb", "params/b4.yaml", ("svhn", "stl10")),
)}


def benchmark(name):
    """The benchmark called `name`, or None for a grid of a notebook that is no benchmark."""
    return BENCHMARKS.get(name)
