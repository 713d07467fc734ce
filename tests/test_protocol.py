"""PROTOCOL.md cannot go stale: its "dplib's default" column is what the notebooks and the
params files hold."""

import ast
import re
from pathlib import Path

import papermill
import pytest
import yaml

ROOT = Path(__file__).parents[1]
BENCHMARKS = {"1": "b1_perceptual_similarity", "2": "b2_super_resolution", "3": "b3_delineation",
              "4": "b4_autoencoding", "5": "b5_denoising"}


def protocol_rows():
    """(section, item, default cell, parameter cell) for every table row of PROTOCOL.md."""
    section, rows = None, []
    for line in (ROOT / "PROTOCOL.md").read_text().splitlines():
        if line.startswith("## "):
            section = line[3:]
        elif line.startswith("| ") and not line.startswith("| item") and section:
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            assert len(cells) == 5, f"a row of PROTOCOL.md without its five columns: {line[:80]}"
            rows.append((section, cells[0], cells[3], cells[4]))
    return rows


COMPANIONS = {"003": ("b4_autoencoding", "autoencoder_embeddings"), "004": ("b4_autoencoding", "feature_prediction")}  # paper -> (notebook, params file)


def notebooks_of(section):
    """[(notebook, params file, whether the params file may set it)] a section describes."""
    if section.startswith("Every benchmark"):
        return [(n, n[:2], False) for n in BENCHMARKS.values()]
    companion = re.match(r"Companion paper (\d+)", section)
    if companion:
        notebook, params = COMPANIONS[companion.group(1)]
        return [(notebook, params, True)]
    notebook = BENCHMARKS[re.match(r"Benchmark (\d)", section).group(1)]
    return [(notebook, notebook[:2], False)]


def literals(cell):
    values = []
    for span in re.findall(r"`([^`]*)`", cell):
        try:
            values.append(ast.literal_eval(span))
        except (ValueError, SyntaxError):
            continue
    return values


ROWS = [r for r in protocol_rows() if not r[3].startswith("—")]


def test_the_table_covers_every_benchmark_and_the_switches_the_issue_names():
    sections = {r[0].split(":")[0] for r in protocol_rows()}
    assert {"Every benchmark", "Benchmark 1", "Benchmark 2", "Benchmark 3", "Benchmark 4", "Benchmark 5",
            "Companion paper 003", "Companion paper 004"} <= sections
    named = {name for _, _, _, cell in ROWS for name in re.findall(r"`(\w+)`", cell)}
    assert {"normalize_input", "inception_transform", "amp", "train_crop", "degradation", "residual_blocks",
            "iteration_weights", "unet", "train_transform", "validation_score", "threshold", "lr", "autoencoder",
            "batch_size", "feature_sigmoid", "predictor_loss", "predictor_activation"} <= named


@pytest.mark.parametrize("section, item, default, parameter", ROWS, ids=[f"{r[0][:11]}: {r[1]}" for r in ROWS])
def test_each_default_in_the_table_is_the_notebooks_and_the_params_files(section, item, default, parameter):
    for notebook, params, params_may_set in notebooks_of(section):
        declared = papermill.inspect_notebook(str(ROOT / "notebooks" / f"{notebook}.ipynb"))
        names = [n for n in re.findall(r"`(\w+)`", parameter) if n in declared]
        values = literals(default)
        assert names and len(values) >= len(names), f"{item}: name the parameter(s) and give their default(s)"
        grid = yaml.safe_load((ROOT / "params" / f"{params}.yaml").read_text())["parameters"] or {}
        for name, value in zip(names, values):
            if params_may_set:  # a companion grid: what its params file sets, else the notebook's default
                effective = grid[name] if name in grid else ast.literal_eval(declared[name]["default"])
                assert effective == value, f"params/{params}.yaml runs {name}={effective!r}, PROTOCOL.md says {value!r}"
                continue
            assert ast.literal_eval(declared[name]["default"]) == value, (
                f"{notebook}: {name} defaults to {declared[name]['default']}, PROTOCOL.md says {value!r}")
            assert grid.get(name, value) == value, f"params/{params}.yaml overrides {name}"


def test_the_notebooks_and_the_readme_point_to_the_protocol():
    import json

    for notebook in BENCHMARKS.values():
        first = "".join(json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text())["cells"][0]["source"])
        assert "PROTOCOL.md" in first, notebook
    assert "PROTOCOL.md" in (ROOT / "README.md").read_text()


SEEDS = ROOT.parent / "shared" / "seeds"


def _normalised(text):
    """Text compared as the quotes are: LaTeX's $ and \\times (x), quotes' typography and all
    whitespace set aside (the seed texts were extracted from PDFs)."""
    text = text.replace("$", "").replace("\\times", "x").replace("\\", "").replace("’", "'")
    return re.sub(r"\s+", "", text)


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seed texts (../shared/seeds) are not next to this checkout")
def test_every_quote_of_the_papers_text_column_is_verbatim():
    """Each "..." in the paper's-text column is in the paper the section quotes (the main paper;
    a companion section, that companion paper), its parts joined by "..." in that order."""
    papers = {key: _normalised(next(SEEDS.glob(f"{key}_*.txt")).read_text()) for key in ("000", "003", "004")}
    section, checked, missing = None, 0, []
    for line in (ROOT / "PROTOCOL.md").read_text().splitlines():
        if line.startswith("## "):
            section = "003" if "003" in line else "004" if "004" in line else "000"
        elif line.startswith("| ") and not line.startswith("| item") and section:
            text = line.strip().strip("|").split(" | ")[1]
            for quote in re.findall(r'"([^"]+)"', text):
                position = 0
                for part in (p for p in quote.split("...") if p.strip()):
                    position = papers[section].find(_normalised(part), position)
                    if position < 0:
                        missing.append(f"{section}: {quote}")
                        break
                checked += 1
    assert checked > 40 and not missing, missing
