"""dplib.notebook, dplib.errors and dplib.progress: notebooks behave the same wherever they
run (JupyterLab, papermill, the grid), stay clean in git, and fail with one line a user can act on."""

import json
import subprocess
import sys
import uuid
from pathlib import Path

import nbformat
import papermill
import pytest

from dplib import notebook, progress
from dplib.run.execute import KERNEL_START_TIMEOUT

ROOT = Path(__file__).parents[1]


def test_relative_paths_are_under_the_repository_root_from_any_folder(tmp_path):
    assert notebook.repository_root(ROOT / "notebooks") == ROOT
    assert notebook.repository_root(ROOT / "dplib" / "data") == ROOT
    assert notebook.resolve("runs/x", start=ROOT / "notebooks") == str(ROOT / "runs" / "x")
    assert notebook.resolve("/abs/path", start=ROOT / "notebooks") == "/abs/path"
    assert notebook.repository_root(tmp_path) == tmp_path  # outside a repository: where it runs


def test_a_notebook_writes_to_the_same_place_from_lab_and_from_papermill(tmp_path):
    # JupyterLab starts a kernel in notebooks/; papermill here and the grid in the repository root
    name = f"runs/test-paths-{uuid.uuid4().hex[:8]}"
    try:
        for cwd in (ROOT / "notebooks", ROOT):
            papermill.execute_notebook(str(ROOT / "notebooks" / "walkthrough.ipynb"), str(tmp_path / "w.ipynb"),
                                       cwd=str(cwd), parameters=dict(arch="alexnet", weights=None, image_size=96,
                                                                     out_dir=name),
                                       progress_bar=False, start_timeout=KERNEL_START_TIMEOUT, execution_timeout=300)
            assert (ROOT / name / "features_alexnet.png").is_file()
            assert not (ROOT / "notebooks" / name).exists()
            (ROOT / name / "features_alexnet.png").unlink()
    finally:
        import shutil

        shutil.rmtree(ROOT / name, ignore_errors=True)


def test_saving_a_tracked_notebook_in_lab_strips_it_to_the_committed_file():
    # what JupyterLab hands the pre-save hook: the committed notebook, run, with Lab's metadata
    committed = (ROOT / "notebooks" / "explore.ipynb").read_text()
    run = json.loads(committed)
    run["metadata"]["language_info"] = {"name": "python", "version": "3.11.7"}
    run["metadata"]["widgets"] = {"state": {}}
    for i, cell in enumerate(run["cells"]):
        cell["id"] = uuid.uuid4().hex[:8]
        if cell["cell_type"] == "code":
            cell["execution_count"] = i
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "hello\n"}]
            cell["metadata"]["execution"] = {"iopub.status.busy": "2026-11-22T00:00:00Z"}
    model = {"type": "notebook", "content": nbformat.from_dict(run)}
    notebook.strip_before_save(model, "notebooks/explore.ipynb")
    assert nbformat.writes(model["content"]) + "\n" == committed
    mine = {"type": "notebook", "content": nbformat.from_dict(run)}
    notebook.strip_before_save(mine, "scratch/mine.ipynb")  # not a tracked notebook: left alone
    assert any(c.get("outputs") for c in mine["content"]["cells"])


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_committed_notebooks_are_what_the_git_filter_makes_of_them(path):
    # the Jupyter server's writer, then the filter `make` installs: nothing changes
    text = path.read_text()
    lab = nbformat.writes(nbformat.reads(text, as_version=4))
    stripped = subprocess.run([sys.executable, "-m", "nbstripout", "--extra-keys", " ".join(notebook.STRIPPED_KEYS)],
                              input=lab, capture_output=True, text=True, check=True, timeout=60).stdout
    assert stripped == text


def error_output(executed):
    """The error a failed cell shows, after checking it is short: IPython's hint that %tb shows
    the full traceback, then the one line of the message; no frames, no chained pages."""
    error = next(o for c in nbformat.read(str(executed), as_version=4).cells for o in c.get("outputs", [])
                 if o["output_type"] == "error")
    assert len(error["traceback"]) <= 2 and "%tb" in error["traceback"][0]
    assert not any("Traceback (most recent call last)" in line or "File " in line for line in error["traceback"])
    return error["traceback"][-1]


def test_a_missing_dataset_is_one_line_that_names_the_command(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError, match="dplib data download bapps"):
        papermill.execute_notebook(str(ROOT / "notebooks" / "b1_perceptual_similarity.ipynb"),
                                   str(tmp_path / "b1.ipynb"), cwd=str(ROOT), progress_bar=False,
                                   parameters=dict(weights=None, data_root=str(tmp_path / "nowhere"),
                                                   out_dir=str(tmp_path / "out"), device="cpu"),
                                   start_timeout=KERNEL_START_TIMEOUT, execution_timeout=300)
    message = error_output(tmp_path / "b1.ipynb")
    assert "MissingData" in message and "dplib data download bapps" in message


def test_unavailable_weights_offline_are_one_line_that_says_where_to_put_the_file(tmp_path, monkeypatch):
    # no network: every connection goes to a closed port on this machine and is refused at once
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for variable in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    with pytest.raises(papermill.PapermillExecutionError, match="WeightsUnavailable"):
        papermill.execute_notebook(str(ROOT / "notebooks" / "walkthrough.ipynb"), str(tmp_path / "w.ipynb"),
                                   cwd=str(ROOT), progress_bar=False, start_timeout=KERNEL_START_TIMEOUT,
                                   parameters=dict(arch="alexnet", out_dir=str(tmp_path / "out")),
                                   execution_timeout=300)
    message = error_output(tmp_path / "w.ipynb")
    assert "alexnet-owt-7be5be79.pth" in message and str(tmp_path / "torch" / "hub" / "checkpoints") in message


def test_progress_is_plain_text_headless_and_a_widget_in_lab(monkeypatch):
    from tqdm.auto import tqdm as auto

    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher", "-f", "k.json", "--HistoryManager.hist_file=:memory:"])
    assert progress.headless() and type(progress.tqdm(range(3), disable=True)).__module__ == "tqdm.std"
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher", "-f", "k.json"])  # a JupyterLab kernel
    assert not progress.headless() and isinstance(progress.tqdm(range(3), disable=True), auto)


@pytest.mark.parametrize("annotation,value,expected", [
    ("float", "1e-3", 0.001), ("float", "5E4", 50000.0), ("float", 3, 3.0), ("float", ".5", 0.5),
    ("int", "5e4", 50000), ("int", 2.0, 2), ("int", "-3", -3), ("bool", True, True), ("str", "vgg16", "vgg16"),
    ("list", ["a"], ["a"]), ("Optional[str]", None, None), ("Optional[int]", "10", 10),
    ("Union[bool, str]", "float16", "float16"), ("Union[bool, str]", False, False), ('"Optional[str]"', "x", "x"),
])
def test_a_value_is_coerced_to_the_parameters_annotation(annotation, value, expected):
    coerced = notebook.coerce(value, annotation)
    assert coerced == expected and type(coerced) is type(expected)


@pytest.mark.parametrize("annotation,value", [
    ("float", "fast"), ("float", True), ("int", "1e-3"), ("int", 2.5), ("int", False), ("bool", "yes"),
    ("str", 3), ("list", "a"), ("Optional[int]", "many"), ("Union[bool, str]", 1.5)])
def test_a_value_the_annotation_does_not_admit_is_refused(annotation, value):
    with pytest.raises(ValueError, match="needs"):
        notebook.coerce(value, annotation)


def test_every_notebook_default_is_of_its_annotated_type():
    """A parameters cell's own defaults pass the check the grid applies to a params file's values."""
    from dplib.run.plan import notebook_defaults, notebook_parameters

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for name, record in notebook_parameters(path).items():
            default = notebook_defaults(path)[name]
            assert notebook.coerce(default, record["inferred_type_name"]) == default, (path.name, name)
