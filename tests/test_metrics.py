"""dplib.metrics against scikit-image, the lpips package's scorers and hand-computed cases."""

import numpy as np
import pytest
import torch
from lpips.trainer import score_2afc_dataset
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from dplib.metrics import (accuracy, delineation_scores, jnd_map, psnr, psnr_released, psnr_released_validation,
                           released_luma, rgb_to_y, ssim, ssim_released, two_afc)


class _Loader:
    """What lpips' scorers iterate over: batches of dicts."""

    def __init__(self, batches):
        self.batches = batches

    def load_data(self):
        return self.batches


def test_two_afc_equals_lpips_scorer():
    rng = np.random.default_rng(0)
    d0, d1, judge = rng.random(50), rng.random(50), rng.random(50)
    d1[:5] = d0[:5]  # ties score 0.5
    batches = [dict(ref=torch.tensor(i), p0=torch.tensor(d0[i:i + 10]), p1=torch.tensor(d1[i:i + 10]),
                    judge=torch.tensor(judge[i:i + 10])) for i in range(0, 50, 10)]
    distance = lambda ref, p: p  # the batches carry the distances themselves
    expected, _ = score_2afc_dataset(_Loader(batches), distance)
    assert two_afc(d0, d1, judge) == pytest.approx(expected, abs=1e-12)


def test_two_afc_hand_computed():
    # d1 < d0 -> judge; d0 < d1 -> 1 - judge; tie -> 0.5
    assert two_afc([1.0, 0.1, 0.5], [0.5, 1.0, 0.5], [0.8, 0.3, 0.9]) == pytest.approx((0.8 + 0.7 + 0.5) / 3)


def test_jnd_map_hand_computed():
    # sorted by distance: same = 1, .5, 0, 0 -> precision 1, .75, .5, .375; recall 2/3, 1, 1, 1
    # AP = 2/3 * 1 + 1/3 * .75
    assert jnd_map([0.1, 0.4, 0.2, 0.3], [1.0, 0.0, 0.5, 0.0]) == pytest.approx(2 / 3 + 0.25)
    assert jnd_map([0.1, 0.2], [1.0, 1.0]) == pytest.approx(1.0)
    assert jnd_map([0.9, 0.1], [1.0, 0.0]) == pytest.approx(0.5)


def test_jnd_map_flattens_where_the_upstream_scorer_does_not_sort():
    distances = np.array([0.9, 0.1, 0.5, 0.3])
    same = np.array([0.0, 1.0, 0.0, 1.0])
    # Upstream keeps distances as (N, 1, 1, 1): argsort along the last axis sorts nothing.
    upstream_order = np.argsort(distances.reshape(-1, 1, 1, 1)).ravel()
    assert list(upstream_order) == [0, 0, 0, 0]
    assert jnd_map(distances.reshape(-1, 1, 1, 1), same) == pytest.approx(1.0)  # perfect ranking
    assert jnd_map(distances[::-1], same[::-1]) == pytest.approx(1.0)  # independent of file order


def _images(seed, n=2, size=48):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, size, size, generator=g)
    noisy = (base + 0.1 * torch.randn(n, 3, size, size, generator=g)).clamp(0, 1)
    return base, noisy


@pytest.mark.parametrize("crop", [0, 4])
def test_psnr_and_ssim_on_y_equal_scikit_image(crop):
    x, y = _images(1)
    ours_psnr, ours_ssim = psnr(x, y, crop_border=crop), ssim(x, y, crop_border=crop)
    for i in range(len(x)):
        yx = rgb2ycbcr(x[i].permute(1, 2, 0).double().numpy())[..., 0] / 255
        yy = rgb2ycbcr(y[i].permute(1, 2, 0).double().numpy())[..., 0] / 255
        if crop:
            yx, yy = yx[crop:-crop, crop:-crop], yy[crop:-crop, crop:-crop]
        assert ours_psnr[i] == pytest.approx(peak_signal_noise_ratio(yx, yy, data_range=1.0), abs=1e-6)
        expected = structural_similarity(yx, yy, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                         data_range=1.0)
        assert ours_ssim[i] == pytest.approx(expected, abs=1e-6)


def test_psnr_and_ssim_on_rgb_equal_scikit_image():
    x, y = _images(2)
    xi, yi = x[0].permute(1, 2, 0).double().numpy(), y[0].permute(1, 2, 0).double().numpy()
    assert psnr(x, y, channel="rgb")[0] == pytest.approx(peak_signal_noise_ratio(xi, yi, data_range=1.0), abs=1e-6)
    expected = structural_similarity(xi, yi, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     data_range=1.0, channel_axis=2)
    assert ssim(x, y, channel="rgb")[0] == pytest.approx(expected, abs=1e-6)


def test_y_channel_range_and_bad_channel():
    assert rgb_to_y(torch.zeros(1, 3, 1, 1)).item() == pytest.approx(16 / 255)
    assert rgb_to_y(torch.ones(1, 3, 1, 1)).item() == pytest.approx(235 / 255)
    with pytest.raises(ValueError, match="channel"):
        psnr(*_images(0), channel="lab")
    with pytest.raises(ValueError, match="shape"):
        ssim(torch.rand(1, 3, 20, 20), torch.rand(1, 3, 21, 20))


def released_test_luma(image, tmp_path):
    """The released test.py, written out: torchvision's save_image to a PNG, read back (RGB; the
    released cv2.imread + np.flip(..., 2) gives the same array), / 255, MATLAB's weights over 256
    without the +16, a 2 px border shaved (its convert_image)."""
    from PIL import Image
    from torchvision.utils import save_image

    path = tmp_path / "image.png"
    save_image(image, path)
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0
    luma = pixels[..., 0] * 65.738 / 256 + pixels[..., 1] * 129.057 / 256 + pixels[..., 2] * 25.064 / 256
    return luma[2:-2, 2:-2]


def test_the_released_luma_is_the_released_tests_png_round_trip(tmp_path):
    image = torch.rand(1, 3, 21, 17)
    np.testing.assert_allclose(released_luma(image)[0], released_test_luma(image[0], tmp_path), rtol=0, atol=1e-12)
    assert released_luma(torch.ones(1, 3, 8, 8)).max() == pytest.approx((65.738 + 129.057 + 25.064) / 256)  # no +16
    # a float32 value whose x * 255 + 0.5 rounds up to 254 in float32 (what save_image computes)
    # but stays below it in float64: 11 such values in 2 million uniform draws
    edge = torch.full((1, 3, 8, 8), 0.9941176176071167)
    np.testing.assert_allclose(released_luma(edge)[0], released_test_luma(edge[0], tmp_path), rtol=0, atol=1e-12)


def test_the_released_psnr_and_ssim_are_scikit_images_on_that_luma(tmp_path):
    """peak_signal_noise_ratio(y_true, y) as released (data range of float images: 1) and
    structural_similarity(y_true, y, data_range=1) (a uniform 7 x 7 window, sample covariance)."""
    target, output = torch.rand(1, 3, 40, 36), torch.rand(1, 3, 40, 36)
    y_target, y_output = released_test_luma(target[0], tmp_path), released_test_luma(output[0], tmp_path)
    assert psnr_released(output, target)[0] == pytest.approx(peak_signal_noise_ratio(y_target, y_output))
    assert ssim_released(output, target)[0] == pytest.approx(structural_similarity(y_target, y_output, data_range=1))
    # by hand: quantised to the same 8 bits, every luma one step of 1/255 apart except the border
    flat = torch.full((1, 3, 10, 10), 100 / 255)
    brighter = torch.full((1, 3, 10, 10), 101 / 255)
    step = (65.738 + 129.057 + 25.064) / 256 / 255
    assert psnr_released(brighter, flat)[0] == pytest.approx(10 * np.log10(1 / step**2))


def test_the_released_validation_psnr_is_torchmetrics_on_y_with_the_batchs_range():
    """The released eval_epoch: Y = 16 + 65.481 R + 128.553 G + 24.966 B of [0, 1] images
    (rgb_to_ycbcr, no / 255), PeakSignalNoiseRatio() with data_range None: the batch target's
    max - min, the squared error averaged over the whole batch, no border removed."""
    generator = torch.Generator().manual_seed(0)
    target, output = (torch.rand(2, 3, 6, 5, generator=generator, dtype=torch.float64) for _ in range(2))
    y = lambda x: 16 + 65.481 * x[:, 0] + 128.553 * x[:, 1] + 24.966 * x[:, 2]  # noqa: E731
    data_range = y(target).max() - y(target).min()
    expected = 10 * torch.log10(data_range**2 / ((y(output) - y(target)) ** 2).mean())
    assert psnr_released_validation(output, target) == pytest.approx(expected.item(), rel=1e-9)


def test_delineation_pixel_exact_hand_computed():
    target = np.zeros((6, 6)); target[2, :] = 1  # 6 road pixels
    pred = np.zeros((6, 6)); pred[2, :4] = 0.9; pred[4, :2] = 0.7; pred[0, 0] = 0.4  # 4 hits, 2 false, 1 below threshold
    s = delineation_scores(pred, target, threshold=0.5, slack=0)
    assert s["correctness"][0] == pytest.approx(4 / 6)
    assert s["completeness"][0] == pytest.approx(4 / 6)
    assert s["quality"][0] == pytest.approx(4 / (4 + 2 + 2))


def test_delineation_with_slack_hand_computed():
    target = np.zeros((12, 12)); target[5, :] = 1               # a road along row 5
    pred = np.zeros((12, 12)); pred[7, :] = 1; pred[11, :3] = 1  # 2 px off, plus 3 px 6 px away
    exact = delineation_scores(pred, target, slack=0)
    assert exact["correctness"][0] == 0 and exact["completeness"][0] == 0 and exact["quality"][0] == 0
    s = delineation_scores(pred, target, slack=3)
    assert s["correctness"][0] == pytest.approx(12 / 15)   # row 7 within 3 px of row 5; row 11 is not
    assert s["completeness"][0] == pytest.approx(1.0)      # every road pixel has a prediction within 2 px
    assert s["quality"][0] == pytest.approx(12 / (15 + 0))  # matched predicted / (predicted + unmatched target)
    # Euclidean distance: the diagonal (i, i) lies sqrt(2) from the road (i-1, i+1), except its two ends
    road = np.roll(np.eye(8), 2, axis=1)
    assert delineation_scores(np.eye(8), road, slack=1.5)["correctness"][0] == pytest.approx(6 / 8)
    assert delineation_scores(np.eye(8), road, slack=1)["correctness"][0] == 0


def test_a_prediction_exactly_at_the_slack_distance_is_matched():
    """Wiedemann et al.'s buffer of width w holds every point at distance w or less from the
    reference (a closed buffer, as a GIS buffer is): a road pixel exactly `slack` px away counts."""
    target = np.zeros((12, 12)); target[5, :] = 1  # the road along row 5
    pred = np.zeros((12, 12)); pred[8, :] = 1      # 3 px away, exactly
    at = delineation_scores(pred, target, slack=3)
    assert at["correctness"][0] == 1.0 and at["completeness"][0] == 1.0 and at["quality"][0] == 1.0
    inside = delineation_scores(pred, target, slack=2.999)
    assert inside["correctness"][0] == 0 and inside["completeness"][0] == 0


def test_delineation_quality_with_slack_follows_wiedemann_not_its_mirror():
    # A 12 px road (row 5); a prediction 2 px off covering only columns 0-5, and a spurious
    # 3 px blob far away. Road pixels within 3 px of the prediction: columns 0-7 (column 6 is
    # sqrt(5), 7 is sqrt(8), 8 is sqrt(13) away): 8 of 12. Predicted pixels within 3 px of
    # the road: the 6 of row 7, not the blob: 6 of 9.
    target = np.zeros((14, 14)); target[5, :12] = 1
    pred = np.zeros((14, 14)); pred[7, :6] = 1; pred[12, 9:12] = 1
    s = delineation_scores(pred, target, slack=3)
    assert s["correctness"][0] == pytest.approx(6 / 9) and s["completeness"][0] == pytest.approx(8 / 12)
    # Wiedemann et al.: matched extraction / (extraction + unmatched reference)
    assert s["quality"][0] == pytest.approx(6 / (9 + (12 - 8)))
    assert s["quality"][0] != pytest.approx(8 / (12 + (9 - 6)))  # the mirrored formula gives 8/15


def test_delineation_empty_images_do_not_crash():
    empty, road = np.zeros((1, 5, 5)), np.zeros((1, 5, 5))
    road[0, 2] = 1
    for slack in (0, 3):
        none_predicted = delineation_scores(empty, road, slack=slack)
        assert np.isnan(none_predicted["correctness"][0]) and none_predicted["completeness"][0] == 0
        assert none_predicted["quality"][0] == 0
        both_empty = delineation_scores(empty, empty, slack=slack)
        assert all(both_empty[k][0] == 1 for k in both_empty)
        no_road = delineation_scores(road, empty, slack=slack)
        assert no_road["correctness"][0] == 0 and np.isnan(no_road["completeness"][0])


def test_accuracy():
    logits = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert accuracy(logits, torch.tensor([1, 0, 0])) == pytest.approx(2 / 3)
    assert accuracy(torch.tensor([1, 1]), torch.tensor([1, 0])) == pytest.approx(0.5)


# ----- opinion scores: SRCC, KRCC, PLCC (Benchmark 1 beyond BAPPS) --------------------------------

def test_srcc_and_krcc_by_hand_with_the_sign_of_a_distance():
    """Distances 1, 2, 3, 4 rank the images (by -distance) 4, 3, 2, 1; opinion scores 4, 2, 3, 1:
    d = (0, 1, -1, 0), rho = 1 - 6 * 2 / (4 * 15) = 0.8; of 6 pairs 5 agree and 1 does not,
    tau = 4 / 6. A lower distance for a better image correlates positively."""
    from dplib.metrics import krcc, srcc

    distances, scores = [1.0, 2.0, 3.0, 4.0], [4.0, 2.0, 3.0, 1.0]
    assert srcc(distances, scores) == pytest.approx(0.8)
    assert krcc(distances, scores) == pytest.approx(4 / 6)
    assert srcc([4.0, 3.0, 2.0, 1.0], scores) == pytest.approx(-0.8)  # a distance that prefers the worse images
    with pytest.raises(ValueError, match="same length"):
        srcc([1.0, 2.0, 3.0], [1.0, 2.0])


def test_srcc_krcc_plcc_against_scipy_on_tied_random_data():
    from scipy import stats
    from scipy.optimize import curve_fit

    from dplib.metrics import krcc, logistic_4, plcc, srcc

    rng = np.random.default_rng(0)
    distances = np.round(rng.uniform(0, 1, 200), 2)  # ties, as rounded distances have
    scores = 5 - 4 * distances ** 2 + rng.normal(0, 0.3, 200)
    assert srcc(distances, scores) == pytest.approx(stats.spearmanr(-distances, scores).statistic)
    assert krcc(distances, scores) == pytest.approx(stats.kendalltau(-distances, scores).statistic)
    # PLCC: the VQEG logistic fitted from pyiqa's start, then Pearson (written out here with scipy)
    x = -distances
    start = [scores.max(), scores.min(), x.mean(), x.std() / 4]
    fitted, _ = curve_fit(lambda x, a, b, c, d: (a - b) / (1 + np.exp(-(x - c) / abs(d))) + b, x, scores, p0=start,
                          maxfev=20000)
    expected = stats.pearsonr(logistic_4(x, *fitted), scores).statistic
    assert plcc(distances, scores) == pytest.approx(expected, abs=1e-9)
    assert plcc(distances, scores) >= stats.pearsonr(x, scores).statistic  # the fit only removes nonlinearity


def test_plcc_is_one_on_a_logistic_and_the_fit_recovers_it():
    """Scores that are exactly a VQEG logistic of -distance (b = 5, 1, -0.5, 0.1, by hand): the
    fit finds those parameters and the PLCC is 1, though Pearson's r of the raw values is not."""
    from dplib.metrics import logistic_4, logistic_fit, plcc

    distances = np.linspace(0, 1, 40)
    scores = (5 - 1) / (1 + np.exp(-(-distances + 0.5) / 0.1)) + 1
    np.testing.assert_allclose(logistic_4(-distances, 5, 1, -0.5, 0.1), scores)
    np.testing.assert_allclose(logistic_fit(distances, scores), [5, 1, -0.5, 0.1], atol=1e-5)
    assert plcc(distances, scores) == pytest.approx(1.0, abs=1e-9)
    assert np.corrcoef(-distances, scores)[0, 1] < 0.98  # 0.973: the raw values are not linear
