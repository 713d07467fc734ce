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


# ----- every value a row lists runs in some test (issue 34: a switch that crashed behind green tests) -

# Other names the library gives a notebook parameter (the notebook passes it on under that name).
ALIASES = {"lin_clamp": ("clamp",), "calibration_recipe": ("recipe",), "autocast": ("amp",), "amp": ("autocast",),
           "train_subsets": ("subsets",), "train_crop": ("crop_mode",), "test_crop": ("crop_mode",),
           "metric_convention": ("convention",), "train_transform": ("transform",), "resize_antialias": ("antialias",),
           "test_batch_statistics": ("batch_statistics",), "iteration_scores": ("iterations",),
           "iteration_weights": ("weights",), "predictor_selection": ("select",), "predictor_loss": ("loss",),
           "svhn_padding": ("padding",), "stl10_orientation": ("orientation",), "split": ("kind",),
           "validation_score": ("score",), "predictor_activation": ("activation",),
           "standardize_embeddings": ("standardize",), "mlp_patience": ("patience",), "ae_patience": ("patience",),
           "val_every": ("validate_every",), "vae_validation": ("validation",), "inception_transform": (),
           "feature_decoder_sigmoid": ("sigmoid",)}
# Values only a GPU or the real data (and its hours) runs: named, not silently skipped.
NEEDS = {("amp", "float16"): "float16 autocast: a CUDA GPU (tests/test_gpu.py, `make gpu-check`)",
         ("autocast", "float16"): "float16 autocast: a CUDA GPU (tests/test_gpu.py, `make gpu-check`)"}
# The full protocol's sizes, which every smoke block shrinks: the real data and GPU-hours.
FULL_SIZES = {"iterations", "train_images", "val_images", "val_every", "epochs", "ae_epochs", "mlp_epochs", "size",
              "crop", "depth", "batch_size"}


def listed_values(rows=None):
    """(section, item, notebook, params file, parameter, value, "default" or "other") for every
    value a row lists: its default, and each literal its parameter cell gives that parameter."""
    out = []
    for section, item, default, parameter in rows if rows is not None else ROWS:
        for notebook, params, _ in notebooks_of(section):
            names = papermill.inspect_notebook(str(ROOT / "notebooks" / f"{notebook}.ipynb"))
            named = [n for n in re.findall(r"`(\w+)`", parameter) if n in names]
            out += [(section, item, notebook, params, n, v, "default") for n, v in zip(named, literals(default))]
            current = None
            for span in re.findall(r"`([^`]*)`", parameter):
                if span in names:
                    current = span
                    continue
                value = _literal(span)
                if current and value is not _NOTHING and "Ellipsis" not in repr(value):
                    out.append((section, item, notebook, params, current, value, "other"))
    return out


_NOTHING = object()


def _literal(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError):
        return _NOTHING


def exercised():
    """{(name, repr(value))} the tests run with: keyword arguments, dict entries, command-line
    flags, loop and comprehension variables, pytest parametrize, and @pytest.mark.exercises."""
    found = set()

    def add(name, node_or_value, literal=True):
        value = _literal_node(node_or_value) if literal else node_or_value
        if isinstance(name, str) and value is not _NOTHING:
            found.add((name, repr(value)))
            if isinstance(value, (list, tuple)):  # a list parameter's items ("datasets": each one scored)
                found.update((name, repr(item)) for item in value)

    for path in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    add(keyword.arg, keyword.value)
                if _is_mark(node.func, "exercises"):
                    for keyword in node.keywords:
                        add(keyword.arg, keyword.value)
                if _is_mark(node.func, "parametrize") and len(node.args) >= 2:
                    _parametrized(node, add)
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values):
                    if isinstance(key, ast.Constant):
                        add(key.value, value)
            elif isinstance(node, (ast.List, ast.Tuple)):
                items = [e.value if isinstance(e, ast.Constant) else _NOTHING for e in node.elts]
                for flag, value in zip(items, items[1:]):
                    if isinstance(flag, str) and flag.startswith("--") and isinstance(value, str):
                        add(flag[2:].replace("-", "_"), value, literal=False)
            elif isinstance(node, (ast.For, ast.comprehension)):
                _looped(node.target, node.iter, add)
    return found


def _literal_node(node):
    return _literal(ast.unparse(node)) if isinstance(node, ast.AST) else node


def _is_mark(func, name):
    return isinstance(func, ast.Attribute) and func.attr == name


def _looped(target, iterable, add):
    values = _literal_node(iterable)
    if values is _NOTHING or not isinstance(values, (list, tuple)):
        return
    for value in values:
        if isinstance(target, ast.Name):
            add(target.id, value, literal=False)
        elif isinstance(target, ast.Tuple) and isinstance(value, (list, tuple)):
            for element, item in zip(target.elts, value):
                if isinstance(element, ast.Name):
                    add(element.id, item, literal=False)


def _parametrized(node, add):
    names, values = _literal_node(node.args[0]), _literal_node(node.args[1])
    if names is _NOTHING or values is _NOTHING:
        return
    names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    for value in values:
        for name, item in zip(names, value if len(names) > 1 else (value,)):
            add(name, item, literal=False)


def smoke_overrides(params):
    raw = yaml.safe_load((ROOT / "params" / f"{params}.yaml").read_text())
    return (raw.get("smoke") or {}).get("parameters") or {}


def unexercised(rows=None, mentions=None):
    """The values a row lists that no test runs and no reason excuses: a default a notebook's smoke
    run keeps runs there; any other value needs a test naming it (or NEEDS: a GPU, the real data)."""
    mentions = exercised() if mentions is None else mentions
    missing = []
    for section, item, notebook, params, name, value, kind in listed_values(rows):
        if kind == "default" and (name not in smoke_overrides(params) or smoke_overrides(params)[name] == value):
            continue  # the notebook's smoke run (tests/test_notebooks.py) runs it
        if kind == "default" and name in FULL_SIZES and not isinstance(value, bool) and value > 0:
            continue  # the full protocol's size: the real data, GPU-hours (0 is a code path, not a size)
        if (name, value) in NEEDS or any((n, repr(value)) in mentions for n in (name, *ALIASES.get(name, ()))):
            continue
        missing.append(f"{section.split(':')[0]}, {item}: {name}={value!r} ({kind})")
    return sorted(set(missing))


def test_every_value_of_every_switch_runs_in_some_test():
    assert unexercised() == []


def test_the_meta_test_names_a_value_no_test_runs():
    """A row that offers a value no test runs is named; the same row is silent once a test runs it."""
    row = ("Benchmark 2: super-resolution", "a new switch", '`"pil"`', '`degradation` (`"lanczos"`: a third)')
    assert unexercised([row]) == ['Benchmark 2, a new switch: degradation=\'lanczos\' (other)']
    assert unexercised([row], exercised() | {("degradation", "'lanczos'")}) == []
    weights = ("Every benchmark: the loss network", "weights", '`"imagenet"`', "`weights`")
    assert unexercised([weights], set()) == [f"Every benchmark, weights: weights='imagenet' (default)"]
