"""dplib.benchmarks (the records) and dplib.benchmarks.template: every benchmark is a record the
grid, the checks and the analysis read; a benchmark of one's own, written by `dplib
new-benchmark`, passes `dplib benchmark check` and goes through the grid, the collect, the
tables and the explorer like the paper's four."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dplib.benchmarks import (all_benchmarks, benchmark, benchmark_order, check_record, check_rows, direction,
                              Score)
from dplib.benchmarks.record import score_row

from conftest import dplib_cli

ROOT = Path(__file__).parents[1]


def test_the_built_in_records_keep_the_contract_and_name_their_files():
    records = all_benchmarks()
    assert list(records)[:5] == ["b1", "b2", "b3", "b4", "b5"]
    for record in records.values():
        assert check_record(record) == [], record.name
        spec = yaml.safe_load((ROOT / record.params).read_text())
        assert spec["benchmark"] == record.name and spec["notebook"] == record.notebook
    # the paper's four feed the paper's items; the fifth is beyond the paper
    assert all("table_3" in records[name].paper_items for name in ("b1", "b2", "b3", "b4"))
    assert records["b5"].paper_items == ()


def test_directions_are_the_records():
    assert direction("b2", "psnr") == "higher" and direction("b4", "reconstruction_l1") == "lower"
    assert direction("b5", "distance") == "lower" and direction("b5", "ssim") == "higher"
    assert direction("tiny", "ok") == "higher"  # a notebook that is no benchmark: as the paper's scores
    assert benchmark_order(["zeta", "b3", "b1", "b5"]) == ["b1", "b3", "b5", "zeta"]


def test_check_record_names_each_break_of_the_contract():
    record = benchmark("b5")
    assert check_record(dataclasses.replace(record, scores=(Score("psnr", "max", ("set5",)),))) == [
        "b5's score 'psnr' has the direction 'max': give 'higher' or 'lower' (which way the score is better)"]
    twice = dataclasses.replace(record, scores=record.scores + (record.scores[0],))
    assert check_record(twice) == ["b5 declares the score 'psnr' twice"]
    missing = check_record(dataclasses.replace(record, notebook="notebooks/nothing.ipynb", name="B-5"))
    assert missing[0].startswith("the name 'B-5' must be") and "notebooks/nothing.ipynb does not exist" in missing[-1]
    assert check_record(dataclasses.replace(record, module="dplib.benchmarks.record")) == [
        f"dplib.benchmarks.record lacks {name}(parameters), which the grid calls"
        for name in ("data_needs", "steps", "step_key", "disk_bytes", "check_parameters")]


def test_check_rows_names_unknown_and_missing_scores():
    record = benchmark("b2")
    rows = [score_row("b2", score, 30.0, dataset="set5", scale=4) for score in ("psnr", "ssim")]
    assert check_rows(record, rows) == []
    assert check_rows(record, rows + [score_row("b2", "psnr", 1.0, dataset="set5", scale=3)]) == [
        "b2's score 'psnr' has a row at scale 3, which its record does not list (4, 8)"]
    assert check_rows(record, [rows[0], dict(rows[1], score="lpips")]) == [
        "unknown score 'lpips' in b2's rows: the record declares psnr, ssim; declare it or rename it",
        "b2's runs wrote no 'ssim' score, which its record declares (missing score)"]
    assert check_rows(record, [dict(rows[0], benchmark="b3"), rows[1]], require_all=False) == [
        "a row names the benchmark 'b3', not 'b2'"]
    # b4's linear_accuracy and reconstruction_l1 are written by some procedures only
    assert check_rows(benchmark("b4"), [score_row("b4", "accuracy", 50.0, dataset="svhn")]) == []


@pytest.mark.long
def test_a_benchmark_of_ones_own_from_the_template_runs_through_check_grid_collect_tables_and_explorer(tmp_path):
    from dplib.analysis.explorer import explore
    from dplib.analysis.scores import load_results
    from dplib.analysis.tables import best_points, rank_table
    from dplib.attributes import attributes_table

    made = dplib_cli("new-benchmark", "deblur", "--dir", "mine", "--title", "Deblurring", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    folder = tmp_path / "mine" / "deblur"
    assert sorted(p.name for p in folder.iterdir()) == ["deblur.ipynb", "deblur.py", "deblur.yaml", "test_deblur.py"]
    again = dplib_cli("new-benchmark", "deblur", "--dir", "mine", cwd=tmp_path)
    assert again.returncode == 2 and "exists: give another name" in again.stderr  # nothing overwritten
    taken = dplib_cli("new-benchmark", "b2", cwd=tmp_path)
    assert taken.returncode == 2 and "a benchmark called 'b2' exists already" in taken.stderr

    # its own tests pass as written
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert tests.returncode == 0 and "4 passed" in tests.stdout, tests.stdout + tests.stderr

    # the check: record and notebook contract, its smoke grid through the runner (fixture written), its rows
    check = dplib_cli("benchmark", "check", "deblur", "--path", str(folder), cwd=tmp_path, timeout=900)
    assert check.returncode == 0, check.stdout + check.stderr[-3000:]
    assert "4 smoke runs wrote 24 score rows, each one the record declares" in check.stdout

    # the analysis reads it beside the paper's benchmarks' results
    scores = load_results(tmp_path / "results" / "smoke")
    assert set(scores.benchmark) == {"deblur"} and set(scores.score) == {"psnr", "ssim"}
    ranks = rank_table(scores)
    assert list(ranks.columns) == ["deblur", "all"] and len(ranks) == 2
    assert ranks.deblur.sum() == 3.0  # two networks ranked 1 and 2 on each of the six scores
    assert "deblur psnr set5" in best_points(scores).columns
    view = explore(scores, attributes_table(), "depth", "deblur ssim bsd100")
    assert view.children[0].children[1].value == "deblur ssim bsd100"

    # a grid run straight from its params file finds its module beside it (and so do the kernels)
    rerun = dplib_cli("grid", "run", str(folder / "deblur.yaml"), "--smoke", cwd=tmp_path)
    assert rerun.returncode == 0 and "0 to run" in rerun.stdout, rerun.stdout + rerun.stderr

    # a break of the contract is named, before any run starts
    source = folder / "deblur.py"
    source.write_text(source.read_text().replace('Score("ssim", "higher"', 'Score("ssim", "best"'))
    broken = dplib_cli("benchmark", "check", "deblur", "--path", str(folder), cwd=tmp_path)
    assert broken.returncode == 1 and "no run was started" in broken.stdout
    assert "deblur's score 'ssim' has the direction 'best': give 'higher' or 'lower'" in broken.stderr


def test_a_benchmark_is_found_through_an_entry_point(tmp_path):
    """A package declaring [project.entry-points."dplib.benchmarks"] (here its installed
    metadata, as pip writes it: a dist-info folder with entry_points.txt on the path)."""
    assert dplib_cli("new-benchmark", "inpaint", "--dir", str(tmp_path), cwd=tmp_path).returncode == 0
    info = tmp_path / "inpaint-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: inpaint\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[dplib.benchmarks]\ninpaint = inpaint:BENCHMARK\n")
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(tmp_path / "inpaint"), str(ROOT)]))
    listed = dplib_cli("benchmark", "list", cwd=tmp_path, env=environment)
    assert listed.returncode == 0, listed.stderr
    [line] = [line for line in listed.stdout.splitlines() if line.startswith("inpaint ")]
    assert "psnr (higher), ssim (higher)" in line and str(tmp_path / "inpaint" / "inpaint.ipynb") in line
    without = dplib_cli("benchmark", "list", cwd=tmp_path)
    assert "inpaint" not in without.stdout


def test_an_unknown_benchmark_says_where_benchmarks_are_looked_for(tmp_path):
    result = dplib_cli("benchmark", "check", "nothing", cwd=tmp_path)
    assert result.returncode == 2 and "no benchmark called 'nothing' (known: b1, b2, b3, b4, b5)" in result.stderr
    assert "--path FOLDER or DPLIB_BENCHMARKS=FOLDER" in result.stderr


@pytest.mark.parametrize("name", ["B5", "5x", "my-task"])
def test_new_benchmark_refuses_a_name_that_is_no_module_name(tmp_path, name):
    result = dplib_cli("new-benchmark", name, cwd=tmp_path)
    assert result.returncode == 2 and "lower-case letters, digits and _" in result.stderr
    assert not (tmp_path / "benchmarks").exists()


def test_the_template_is_files_that_render_to_code_that_compiles_and_imports(tmp_path):
    """dplib/benchmarks/template_files/: jinja2 fills {{ name }} and {{ title }}; every file
    renders, the Python compiles and imports, the params file and the notebook parse."""
    import ast
    import importlib.util

    import nbformat
    import yaml

    from dplib.benchmarks import template

    assert sorted(p.name for p in template.FILES.iterdir()) == sorted(template.WRITTEN)
    files = template.render("rendered_task", "A rendered task")
    assert not any("{{" in text or "}}" in text for text in files.values())
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        if name.endswith(".py"):
            ast.parse(text, filename=name)
    spec = importlib.util.spec_from_file_location("rendered_task", tmp_path / "rendered_task.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.BENCHMARK.name == "rendered_task" and module.BENCHMARK.title == "A rendered task"
    assert yaml.safe_load(files["rendered_task.yaml"])["benchmark"] == "rendered_task"
    notebook = nbformat.reads(files["rendered_task.ipynb"], as_version=4)
    assert notebook.cells[0].source.startswith("# A rendered task")
