"""The set-up files agree with each other."""

import tomllib
from pathlib import Path

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
