"""The set-up files agree with each other."""

import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]


def test_environment_yml_lists_what_pyproject_lists():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | {d for extra in project["optional-dependencies"].values() for d in extra}
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_block = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert set(pip_block) == wanted


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text() and "make demo" in (ROOT / "README.md").read_text()


def test_python_is_one_with_tarfiles_extraction_filter_in_both_files():
    """dplib.data.download extracts with tarfile's filter="data" (Python 3.11.4 and later)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert project["requires-python"] == ">=3.11.4" and "python>=3.11.4" in environment["dependencies"]


@pytest.mark.long
@pytest.mark.timeout(1500)
def test_the_core_installs_alone_and_a_researcher_gets_a_loss_and_a_similarity(tmp_path):
    """The wheel, installed with its core dependencies only into a fresh virtual environment (torch
    from the same local wheels `make` installs): no package of an extra comes with it, the loss and
    the similarity compute, the core command runs, and a part that needs an extra says which."""
    import subprocess
    import sys

    def run(*command, timeout=900, **kwargs):
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)

    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(ROOT))
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = (tmp_path / "dist").glob("dplib-*.whl")
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", str(venv)).returncode == 0
    # --no-compile: pip byte-compiles nothing at install (torch's thousands of modules cost a minute
    # of CPU); Python compiles what the checks import, as it would anyway
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile"]
    torch_line = [line for line in (ROOT / "Makefile").read_text().splitlines() if "torch==" in line][0]
    versions = [word for word in torch_line.split() if "==" in word]  # torch and torchvision, as make pins them
    for step in (pip + versions, pip + [str(wheel)]):
        done = run(*step, timeout=1200)
        assert done.returncode == 0, done.stderr[-2000:]
    listed = run(str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze").stdout.lower()
    installed = {line.split("==")[0] for line in listed.splitlines()}
    assert not installed & {"papermill", "ipykernel", "ipywidgets", "seaborn", "pandas", "matplotlib", "pyyaml",
                            "jupyterlab", "nbformat"}, installed
    code = ("import torch, dplib\n"
            "x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)\n"
            "loss = dplib.PerceptualLoss('alexnet', 'early', weights=None)(x, y)\n"
            "d = dplib.PerceptualSimilarity('squeezenet1_1', ('early', 'late'), weights=None)(x, y)\n"
            "assert loss.ndim == 0 and d.shape == (2,) and (d > 0).all()\n"
            "print('core ok', float(loss))\n")
    done = run(str(venv / "bin" / "python"), "-c", code, cwd=tmp_path)
    assert done.returncode == 0 and "core ok" in done.stdout, done.stderr[-2000:]
    status = run(str(venv / "bin" / "dplib"), "grid", "status", str(ROOT / "params" / "b1.yaml"), cwd=tmp_path)
    assert status.returncode == 2 and status.stderr == (
        "dplib: error: the grid (dplib.run) needs pyyaml, which comes with the 'run' extra: pip install 'dplib[run]'\n")
    analysis = run(str(venv / "bin" / "python"), "-c", "import dplib.analysis", cwd=tmp_path)
    assert "needs pandas, which comes with the 'analysis' extra: pip install 'dplib[analysis]'" in analysis.stderr
