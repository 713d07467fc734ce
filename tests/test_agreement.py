"""dplib.analysis.agreement: the human-judgement datasets' agreement over loss networks, each as
a proxy for the training benchmarks, and the calibrated variants per dataset, on hand-computed
tables; params/b1_datasets.yaml's smoke grid checked with its fixtures written (the grid runs,
is collected and fed to the table and figure in test_demo.py, make demo's b1_datasets stage)."""

from pathlib import Path

import pandas as pd
import pytest

from dplib.analysis import agreement, figures

NETWORKS = [("a", "early"), ("b", "early"), ("c", "late"), ("d", "late")]


def rows(score, dataset, values, benchmark="b1", scale=None, **extra):
    return [dict(benchmark=benchmark, score=score, dataset=dataset, scale=scale, arch=a, point=p, value=v, **extra)
            for (a, p), v in zip(NETWORKS, values)]


def scores_of(*parts):
    table = pd.DataFrame([r for part in parts for r in part])
    table["scale"] = pd.to_numeric(table["scale"], errors="coerce").astype("Int64")
    return table


def test_each_datasets_headline_and_their_rank_agreement_by_hand():
    b1 = scores_of(rows("2afc", "all", [0.70, 0.69, 0.68, 0.67]), rows("srcc", "kadid10k", [0.9, 0.6, 0.7, 0.5]),
                   rows("2afc", "nights", [0.8, 0.9, 0.7, 0.6]), rows("2afc", "cnn", [0.1, 0.2, 0.3, 0.4]),
                   rows("krcc", "kadid10k", [0.0, 0.0, 0.0, 0.0]))
    table = agreement.dataset_table(b1)
    assert list(table.columns) == ["bapps", "kadid10k", "nights"]  # headlines only: 2AFC all, SRCC, NIGHTS's 2AFC
    assert table.loc[("b", "early"), "kadid10k"] == 0.6
    pairs = agreement.agreement(b1, resamples=200).set_index(["dataset_a", "dataset_b"])
    # bapps ranks (4, 3, 2, 1), kadid10k (4, 2, 3, 1): d = (0, 1, -1, 0), rho = 1 - 6 * 2 / 60 = 0.8, tau = 4 / 6
    assert pairs.loc[("bapps", "kadid10k"), "spearman_rho"] == pytest.approx(0.8)
    assert pairs.loc[("bapps", "kadid10k"), "kendall_tau"] == pytest.approx(4 / 6)
    # bapps (4, 3, 2, 1) and nights (3, 4, 2, 1): d = (1, -1, 0, 0): rho 0.8 again, tau 4 / 6
    assert pairs.loc[("bapps", "nights"), "spearman_rho"] == pytest.approx(0.8)
    # kadid10k (4, 2, 3, 1) and nights (3, 4, 2, 1): d = (1, -2, 1, 0), rho = 1 - 6 * 6 / 60 = 0.4
    assert pairs.loc[("kadid10k", "nights"), "spearman_rho"] == pytest.approx(0.4)
    assert len(pairs) == 3 and (pairs.n == 4).all()


def test_each_dataset_as_a_proxy_for_a_training_benchmark_by_hand():
    b1 = scores_of(rows("2afc", "all", [0.70, 0.69, 0.68, 0.67]), rows("srcc", "tid2013", [0.5, 0.6, 0.7, 0.8]))
    training = scores_of(rows("ssim", "bsd100", [0.1, 0.2, 0.3, 0.4], benchmark="b2", scale=4),
                         rows("accuracy", "svhn", [90, 80, 70, 60], benchmark="b4"))
    correlations, choice = agreement.as_proxies(b1, training, resamples=200, ks=(1,))
    table = correlations.set_index(["proxy", "target"])
    assert table.loc[("tid2013", "b2 ssim bsd100 x4"), "spearman_rho"] == pytest.approx(1.0)
    assert table.loc[("bapps", "b2 ssim bsd100 x4"), "spearman_rho"] == pytest.approx(-1.0)
    assert table.loc[("bapps", "b4 accuracy svhn"), "spearman_rho"] == pytest.approx(1.0)
    # choosing by TID2013 picks d: the best SSIM (0.4, regret 0) and the worst accuracy (60: regret 30 of 30)
    picked = choice[choice.proxy == "tid2013"].set_index("target")
    assert picked.loc["b2 ssim bsd100 x4", "regret"] == pytest.approx(0.0)
    assert picked.loc["b4 accuracy svhn", "regret_share_of_range"] == pytest.approx(1.0)


def test_the_calibrated_variants_beside_the_baseline_per_dataset():
    baseline = scores_of(rows("2afc", "all", [0.70, 0.69, 0.68, 0.67]), rows("srcc", "pipal", [0.5, 0.4, 0.3, 0.2]))
    calibrated = scores_of(rows("2afc", "all", [0.75, 0.74, 0.73, 0.72], variant="lin"),
                           rows("srcc", "pipal", [0.6, 0.3, 0.2, 0.1], variant="lin"))
    table = agreement.calibrated_per_dataset(baseline, calibrated)
    assert table.loc[("a", "early"), ("pipal", "lin")] == 0.6 and table.loc[("a", "early"), ("pipal", "baseline")] == 0.5
    assert table.loc[("d", "late"), ("bapps", "lin")] == 0.72


def test_the_b1_datasets_smoke_grid_writes_the_five_datasets_fixtures_before_it_runs(tmp_path, smoke_params):
    # the grid itself runs in test_demo.py (make demo's b1_datasets stage), which checks the
    # agreement table (10 pairs of the 5 datasets, each over squeezenet1_1's 4 points), its
    # headline columns and fig_datasets
    from dplib.run import check, plan

    path = smoke_params("b1_datasets", tmp_path / "data" / "bapps", {"arch": ["alexnet", "squeezenet1_1"]},
                        **{f"{name}_root": str(tmp_path / "data" / name)
                           for name in ("kadid10k", "tid2013", "pipal", "nights")})
    spec = plan.load_spec(path, smoke=True)
    runs = plan.expand(spec, runs_dir=tmp_path / "runs")
    assert len(check.write_missing_fixtures(spec, runs)) == 5
    problems, _ = check.check(spec, runs, runs_dir=tmp_path / "runs")
    assert problems == []
    b1 = scores_of(rows("2afc", "all", [0.70, 0.69, 0.68, 0.67]), rows("srcc", "kadid10k", [0.9, 0.6, 0.7, 0.5]),
                   rows("2afc", "nights", [0.8, 0.9, 0.7, 0.6]))
    figure = figures.fig_agreement(agreement.agreement(b1, resamples=100))
    written = figures.save_figure(figure, tmp_path / "figures", "fig_datasets")
    assert {Path(p).suffix for p in written} == {".png", ".pdf"} and all(Path(p).stat().st_size for p in written)