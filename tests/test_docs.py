"""The README and docs/: what a newcomer reads first says what exists. Every row of the paper
map names a notebook, a params file (or none) and outputs that are in the repository; the
README stays short and links to the long sections it moved out; its numbers come from the
data they describe."""

import itertools
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def expand(pattern):
    """`figures/table_{6,7}.{csv,md}` -> the paths it names (shell brace expansion)."""
    parts = re.split(r"\{([^}]*)\}", pattern)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def paper_map():
    """The rows of the README's paper map: [(item, notebooks, params, outputs)] of backticked names."""
    section = README.split("## Paper item -> notebook -> params -> output", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| paper item")]
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    return [(item, re.findall(r"`([^`]+)`", notebooks), re.findall(r"`([^`]+)`", params),
             re.findall(r"`([^`]+)`", outputs)) for item, notebooks, params, outputs in cells]


def test_every_row_of_the_paper_map_names_a_notebook_params_and_outputs_that_exist():
    rows = paper_map()
    assert len(rows) >= 16  # Tables I-XI, the correlations, Figs. 2-5, the spreadsheet, both companions
    for item, notebooks, params, outputs in rows:
        assert notebooks and all(n.startswith("notebooks/") and (ROOT / n).is_file() for n in notebooks), item
        for path in params:
            spec = yaml.safe_load((ROOT / path).read_text())
            assert spec["notebook"] in notebooks, f"{item}: {path} runs {spec['notebook']}, not a notebook of its row"
        if item != "the supplementary spreadsheet":  # interactive: no file
            assert outputs, item
        for output in outputs:
            if item.startswith("Beyond the paper"):  # no printed scores to rebuild: made by `make demo` (test_demo)
                assert output.startswith("figures/demo/") or output == "make demo", item
                continue
            for path in expand(output):
                assert (ROOT / path).is_file(), f"{item}: {path} is not in the repository"
    # every benchmark's and companion's params file appears in the map
    named = {p for _, _, params, _ in rows for p in params}
    grids = {f"params/{p.name}" for p in (ROOT / "params").glob("*.yaml") if "notebook" in yaml.safe_load(p.read_text())}
    assert grids == named


def test_the_readme_is_short_and_links_to_what_it_moved_out():
    assert len(README.splitlines()) < 200
    for link in re.findall(r"\]\(([^)#]+)\)", README):
        assert (ROOT / link).is_file(), link
    moved = {"docs/operating.md": ["States", "Pre-flight", "No run executes twice", "Preemption"],
             "docs/library.md": ["Extraction points (Table II)", "Weights", "Your own loss network",
                                 "Known differences from the paper's Table I"],
             "bench/README.md": ["bench/b1.py", "bench/b2.py", "bench/b3.py", "bench/b4.py", "Compiled steps"],
             "docs/companions.md": ["003", "004"], "docs/testing.md": ["make gpu-check"]}
    for path, headings in moved.items():
        assert path in README
        text = (ROOT / path).read_text()
        assert all(h in text for h in headings), path
    # the input contract sits next to the two-line example, before anything else
    assert README.index("Input contract") < README.index("## Two commands")
    assert "make test" in README and "make demo" in README


def test_the_first_real_runs_counts_are_the_datasets():
    from dplib.data import bapps

    triplets = sum(n for n, _ in bapps.COUNTS["2afc/val"].values())
    pairs = sum(n for n, _ in bapps.COUNTS["jnd/val"].values())
    assert f"{triplets / 1000:.1f}K 2AFC" in README and f"{pairs / 1000:.1f}K JND" in README
    runs = len(yaml.safe_load((ROOT / "params" / "grid.yaml").read_text())["arch"])
    assert f"{runs} runs" in README.split("## A first real run")[1].split("\n## ")[0]


def test_the_readmes_proxy_numbers_are_the_committed_tables():
    import pandas as pd

    section = " ".join(README.split("## Which task predicts which", 1)[1].split("\n## ")[0].split())
    correlations = pd.read_csv(ROOT / "figures" / "proxy_correlations.csv").set_index(["score_a", "score_b"])
    choice = pd.read_csv(ROOT / "figures" / "proxy_choice.csv").set_index(["target", "k"])
    stl10 = correlations.loc[("b1 2afc all", "b4 accuracy stl10")]
    assert f"rho {stl10.spearman_rho:.2f}, {stl10.spearman_low:.2f} to {stl10.spearman_high:.2f}" in section
    assert f"BSD100: {correlations.loc[('b1 2afc all', 'b2 ssim bsd100 x4')].spearman_rho:.2f})" in section
    assert f"road delineation ({correlations.loc[('b1 2afc all', 'b3 quality mrd')].spearman_rho:.2f})" in section
    assert f"falls {choice.loc[('b3 quality mrd', 1)].regret_share_of_range:.0%} of B3's range" in section
    assert f"and {choice.loc[('b3 quality mrd', 10)].regret_share_of_range:.0%} even when its top 10" in section
