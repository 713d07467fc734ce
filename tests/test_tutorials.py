"""dplib.benchmarks.tutorials: the tutorials' tiny live benchmarks do what the tutorials say."""

import matplotlib
import pytest
import torch

from dplib.analysis import tables
from dplib.benchmarks import tutorials
from dplib.data import embeddings, superres
from dplib.analysis.scores import load_paper_scores

matplotlib.use("Agg")


def test_the_two_losses_train_two_different_networks_from_one_start(tmp_path):
    root = superres.write_fixture(tmp_path / "sr")
    models, (hr, lr) = tutorials.super_resolution_with_two_losses(root, "squeezenet1_1", "early", steps=4)
    assert set(models) == {"pixel", "perceptual"} and lr.shape[-1] * 4 == hr.shape[-1]
    with torch.no_grad():
        pixel, perceptual = (models[k](lr[None]) for k in ("pixel", "perceptual"))
    assert pixel.shape == (1, *hr.shape) and not torch.allclose(pixel, perceptual)  # the loss made the difference
    assert len(tutorials.plot_super_resolution(models, (hr, lr)).axes) == 4


def test_embeddings_of_an_autoencoder_are_64_numbers_per_labelled_image(tmp_path):
    root = embeddings.write_fixture(tmp_path / "emb", "svhn")
    embedded, labels = tutorials.embeddings_of_an_autoencoder(root, "svhn", epochs=1)
    assert embedded.shape == (80, 64) and labels.shape == (80,)  # the fixture's 80 train images
    points = tutorials.plot_embeddings(embedded, labels).axes[0].collections[0].get_offsets()
    assert points.shape == (80, 2)


def test_the_ranks_figure_is_table_three_best_first():
    ranks = tables.rank_table(load_paper_scores())
    figure = tutorials.plot_ranks(ranks)
    bars = figure.axes[0].patches
    widths = [b.get_width() for b in bars]
    assert widths == sorted(ranks["all"], reverse=True)  # drawn bottom-up: the best at the top
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert labels[-1] == ranks["all"].idxmin() and pytest.approx(widths[-1]) == ranks["all"].min()
