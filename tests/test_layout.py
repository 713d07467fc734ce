"""The layout by reader (README, "Layout"): read from the source itself with `ast`, so that a
lazy import inside a function counts as much as one at the top of a module.

- The science core, the benchmarks and the analysis never import the grid runner (`dplib.run`):
  a researcher's `import dplib` does not drag the runner in, and the runner can change alone.
- No import circle among dplib's modules, at any depth (the one between `lossnets` and
  `extended` was cut: extended registers a resolver).
- Each package says in its docstring whom it is for.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dplib"


def modules():
    """{dotted name: path} of every module of dplib (a package by its __init__)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = modules()


def imported(name):
    """The dplib modules that module `name` imports, anywhere in its source."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from .x import y, from .. import z
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            for alias in node.names:  # `from . import b1` imports the module dplib.benchmarks.b1
                found.add(f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imported(name) for name in MODULES}


def test_the_walk_sees_the_imports_it_must():
    # the walker itself, against imports known to be there
    assert "dplib.lossnets" in GRAPH["dplib.losses"]
    assert "dplib.run.plan" in GRAPH["dplib.run.grid"]
    assert "dplib.benchmarks.b1" in GRAPH["dplib.run.check"] or "dplib.benchmarks" in GRAPH["dplib.run.check"]


def test_nothing_outside_the_runner_imports_it():
    outside = {name: sorted(d for d in deps if d == "dplib.run" or d.startswith("dplib.run."))
               for name, deps in GRAPH.items()
               if not name.startswith("dplib.run") and name != "dplib.__main__"}  # __main__: the CLI's entry
    assert {name: deps for name, deps in outside.items() if deps} == {}


def test_there_is_no_import_circle():
    circles, done = [], set()

    def visit(name, path):
        for dependency in GRAPH[name]:
            if dependency in path:
                circles.append(path[path.index(dependency):] + [dependency])
            elif dependency not in done:
                visit(dependency, path + [dependency])
        done.add(name)

    for name in GRAPH:
        if name not in done:
            visit(name, [name])
    assert circles == []


@pytest.mark.parametrize("package, reader", [("dplib", "researcher"), ("dplib.benchmarks", "notebook"),
                                             ("dplib.run", "grid"), ("dplib.analysis", "tables")])
def test_each_package_says_whom_it_is_for(package, reader):
    docstring = ast.get_docstring(ast.parse(MODULES[package].read_text()))
    assert docstring and reader in docstring


# ----- the core installs without the extras (issue 36) ---------------------------------------------

CORE = sorted(name for name in MODULES if name.count(".") == 1 and name not in ("dplib.__main__",)
              or name.startswith(("dplib.models", "dplib.data")))


def test_no_core_module_imports_an_extras_package_at_import_time():
    """Each module a researcher imports (dplib's top level, models, data) imported alone, in a fresh
    interpreter: none of the extras' packages (dplib.extras.PACKAGES) comes in with it."""
    import subprocess
    import sys

    from dplib.extras import PACKAGES

    code = ("import importlib, sys, json; found = {}\n"
            f"for name in {CORE!r}:\n"
            "    before = set(sys.modules); importlib.import_module(name)\n"
            f"    found[name] = sorted({{m.split('.')[0] for m in set(sys.modules) - before}} & {set(PACKAGES)!r})\n"
            "print(json.dumps(found))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    import json

    found = json.loads(done.stdout.splitlines()[-1])
    assert len(found) >= 20 and {name: packages for name, packages in found.items() if packages} == {}


def test_every_extra_package_is_a_pyproject_extra():
    import tomllib

    from dplib.extras import PACKAGES

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    distribution = {"yaml": "pyyaml", "skimage": "scikit-image"}
    for package, extra in PACKAGES.items():
        assert any(d.split(">=")[0] == distribution.get(package, package) for d in extras[extra]) or \
            package == "jsonschema" and any(d.startswith("nbformat") for d in extras[extra]), (package, extra)


# ----- no function a reader must scroll (issue 37) ---------------------------------------------------

def test_no_function_in_dplib_or_bench_is_over_60_lines():
    long = []
    for root in (PACKAGE, ROOT / "bench"):
        for path in sorted(root.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > 60:
                        long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def test_the_benchmark_contract_is_declared_in_one_module():
    """The functions a benchmark module provides are listed (a tuple, list or set of their names)
    and looked up (getattr) only in dplib/benchmarks/contract.py; everything else calls them
    through Benchmark.call, which reads that module."""
    from dplib.benchmarks.contract import OPTIONAL, REQUIRED

    names = set(REQUIRED) | set(OPTIONAL)
    declared = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            listed = isinstance(node, (ast.Tuple, ast.List, ast.Set)) and any(
                isinstance(e, ast.Constant) and e.value in names for e in node.elts)
            looked_up = isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr" and any(
                isinstance(a, ast.Constant) and a.value in names for a in node.args)
            if listed or looked_up:
                declared.setdefault(str(path.relative_to(ROOT)), []).append(node.lineno)
    assert list(declared) == ["dplib/benchmarks/contract.py"], declared


def test_import_dplib_is_light_and_every_public_name_loads_on_first_use():
    # a grid run's own process (python -m dplib.run.execute) drives papermill only: it must not pay
    # for torch, torchvision and the registry (several CPU seconds a run); dplib.LossNetwork and the
    # rest load them when first touched, with every registered network (dplib.extended's too)
    import subprocess
    import sys

    probe = ("import sys, dplib, dplib.run.execute\n"
             "print(sorted(m for m in ('torch', 'torchvision', 'pandas', 'dplib.lossnets') if m in sys.modules))\n"
             "names = [getattr(dplib, name) for name in dplib.__all__]\n"
             "print('convnext_tiny' in dplib.REGISTRY, 'LossNetwork' in dir(dplib), dplib.lossnets.LossNetwork is "
             "dplib.LossNetwork)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.stdout == "[]\nTrue True True\n", done.stdout + done.stderr
    usage = subprocess.run([sys.executable, "-m", "dplib.run.execute", "--help"], capture_output=True, text=True,
                           timeout=120)
    assert usage.returncode == 0 and "FOLDER" in usage.stdout.upper()
