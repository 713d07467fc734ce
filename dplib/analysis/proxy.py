"""Which task predicts which: the paper's second question of future work ("if those tasks
could be used as a proxy for evaluating loss networks"), answered from any score table.

Benchmark 1 costs one evaluation pass per loss network; Benchmarks 2-4 a training run each.
Two questions per pair of scores, over the loss networks both have:
- do they rank the networks alike? Spearman's rho and Kendall's tau, each with a percentile
  bootstrap interval over networks (`rank_correlations`);
- does choosing by the cheap one pick well for the expensive one? The overlap of their top-k,
  and the regret: how far the expensive score of the proxy's choice (the best of its top-k,
  if k networks are then run the expensive way) falls below the expensive score's best
  (`proxy_choice`).

Every score of the paper is better when higher.
"""

import itertools

import numpy as np
import pandas as pd
from scipy import stats

from .tables import _with_keys, goodness, paper_scores_only

# Each benchmark's headline scores: the paper's Fig. 2 keys and the other score beside each
KEYS = ("b1 2afc all", "b1 jnd_map all", "b2 psnr bsd100 x4", "b2 ssim bsd100 x4", "b3 quality mrd",
        "b4 accuracy svhn", "b4 accuracy stl10")
CHEAP = "b1 2afc all"  # one evaluation pass per loss network


def wide(scores, keys=KEYS):
    """(loss network x score key) table of values: rows (arch, point), one column per key
    present (keys=None: every score the paper reports, and every score of a benchmark beyond
    the paper's). Values are signed so that higher is better (`tables.goodness`: a
    lower-is-better score is negated), so that every correlation and choice reads one way."""
    scores = _with_keys(paper_scores_only(scores))
    scores["value"] = goodness(scores)
    table = scores.pivot_table(index=["arch", "point"], columns="key", values="value")
    return table[[k for k in keys if k in table.columns]] if keys is not None else table


def resampled_correlations(x, y, index):
    """Spearman's rho and Kendall's tau-b of x against y for each row of `index` (R, n), the
    networks of one bootstrap resample per row: two (R,) arrays, NaN where a resample has no
    variation. Vectorised: rho is Pearson's r of the ranks (ties averaged), tau-b the sum of
    pairwise sign agreements over sqrt(untied pairs of x * untied pairs of y)."""
    xs, ys = x[index], y[index]                                            # (R, n) each
    rx, ry = stats.rankdata(xs, axis=1), stats.rankdata(ys, axis=1)
    rx, ry = rx - rx.mean(axis=1, keepdims=True), ry - ry.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (rx * ry).sum(axis=1) / np.sqrt((rx ** 2).sum(axis=1) * (ry ** 2).sum(axis=1))
        i, j = np.triu_indices(xs.shape[1], 1)
        sx, sy = np.sign(xs[:, i] - xs[:, j]), np.sign(ys[:, i] - ys[:, j])  # (R, n(n-1)/2)
        tau = (sx * sy).sum(axis=1) / np.sqrt(np.abs(sx).sum(axis=1) * np.abs(sy).sum(axis=1))
    return rho, tau


def rank_correlations(table, resamples=2000, level=0.95, seed=0):
    """One row per pair of columns of `table` (see `wide`): n networks with both scores,
    Spearman's rho and Kendall's tau (tau-b) with `level` percentile bootstrap intervals
    over networks (seeded: the same table gives the same intervals)."""
    tail = (1 - level) / 2 * 100
    rows = []
    for a, b in itertools.combinations(table.columns, 2):
        both = table[[a, b]].dropna()
        x, y = both[a].to_numpy(), both[b].to_numpy()
        index = np.random.default_rng(seed).integers(0, len(both), (resamples, len(both)))  # networks, replaced
        rhos, taus = resampled_correlations(x, y, index)
        rho_low, rho_high = np.nanpercentile(rhos, [tail, 100 - tail])
        tau_low, tau_high = np.nanpercentile(taus, [tail, 100 - tail])
        rows.append(dict(score_a=a, score_b=b, n=len(both), spearman_rho=stats.spearmanr(x, y).statistic,
                         spearman_low=rho_low, spearman_high=rho_high, kendall_tau=stats.kendalltau(x, y).statistic,
                         kendall_low=tau_low, kendall_high=tau_high))
    return pd.DataFrame(rows)


def proxy_choice(table, proxy=CHEAP, ks=(1, 3, 5, 10)):
    """How well choosing by `proxy` picks for every other column, per k: the share of the
    target's top-k among the proxy's top-k, and the regret of running the proxy's top-k the
    expensive way and keeping the best: best target value minus the best target value among
    the proxy's top-k (0: the proxy's picks include the best network), also as a share of
    the target's range over networks."""
    rows = []
    for target in (c for c in table.columns if c != proxy):
        both = table[[proxy, target]].dropna()
        by_proxy = both.sort_values(proxy, ascending=False, kind="stable")
        by_target = both.sort_values(target, ascending=False, kind="stable")
        best = by_target[target].iloc[0]
        spread = best - both[target].min()
        for k in ks:
            if k > len(both):
                continue
            picked = by_proxy.index[:k]
            regret = best - both.loc[picked, target].max()
            rows.append(dict(proxy=proxy, target=target, n=len(both), k=k,
                             top_k_overlap=len(set(picked) & set(by_target.index[:k])) / k,
                             regret=regret, regret_share_of_range=regret / spread if spread else 0.0,
                             proxy_choice=" ".join(by_proxy.index[0]), best=" ".join(by_target.index[0])))
    return pd.DataFrame(rows)


def correlation_matrix(correlations, column="spearman_rho"):
    """The pairs of `rank_correlations` as a symmetric matrix (1 on the diagonal)."""
    keys = list(dict.fromkeys([*correlations.score_a, *correlations.score_b]))
    matrix = pd.DataFrame(np.eye(len(keys)), index=keys, columns=keys)
    for row in correlations.itertuples():
        matrix.loc[row.score_a, row.score_b] = matrix.loc[row.score_b, row.score_a] = getattr(row, column)
    return matrix
