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
              "4": "b4_autoencoding"}


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
    assert {"Every benchmark", "Benchmark 1", "Benchmark 2", "Benchmark 3", "Benchmark 4",
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
