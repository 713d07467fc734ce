"""dplib.run.schema and the checks of dplib.run.plan: every key of a params file known or refused,
every value typed by the notebook's annotation, every run's network and choices checked, before
anything runs, with one line naming the key or value and where it stands.

The mistakes are issue 33's table, found by a new user editing params/b2.yaml by hand, then the
same kinds of mistake made in every committed params file and in one `dplib new-benchmark` writes.
"""

import copy
import json
import shutil
from pathlib import Path

import pytest
import yaml

from dplib.errors import ParamsError
from dplib.run import cli, plan, schema

from conftest import dplib_cli

ROOT = Path(__file__).parents[1]
GRIDS = ("b1", "b1_calibrated", "b2", "b3", "b4", "b5", "autoencoder_embeddings", "feature_prediction")


def _copy(tmp_path, name, text=None):
    """params/<name>.yaml in a folder of its own (grid.yaml beside it), its notebook absolute."""
    folder = tmp_path / "params"
    folder.mkdir(exist_ok=True)
    shutil.copy(ROOT / "params" / "grid.yaml", folder / "grid.yaml")
    text = text if text is not None else (ROOT / "params" / f"{name}.yaml").read_text()
    raw = yaml.safe_load(text)
    text = text.replace(f"notebook: {raw['notebook']}", f"notebook: {ROOT / raw['notebook']}")
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def _check(path, capsys, *flags):
    """`dplib grid check PATH --smoke`: (exit status, stderr)."""
    status = cli.main(["grid", "check", str(path), "--smoke", *flags])
    return status, capsys.readouterr().err


# ----- issue 33's table, in params/b2.yaml, edited as text the way people do ----------------------

TABLE = [  # (what the user did to params/b2.yaml's text, what the one line must say)
    (("timeouts:              #", "timeout:              #"),
     "b2.yaml: unknown key 'timeout' at the top level (did you mean 'timeouts'?)"),
    (("  parameters:\n    weights: null", "  parameter:\n    weights: null"),
     "b2.yaml: unknown key 'parameter' in smoke (did you mean 'parameters'?)"),
    (("  mem_gb: 32", "  mem_gbs: 32"), "b2.yaml: unknown key 'mem_gbs' in slurm: not a submitit resource "
                                        "(did you mean 'mem_gb'?)"),
    (("slurm:\n", "slurmm:\n"), "b2.yaml: unknown key 'slurmm' at the top level (did you mean 'slurm'?)"),
    (("parameters: {}", "parameters: {iterations: many}"),
     "b2.yaml: parameters.iterations = 'many' is not of the notebook's type int"),
    (("    arch: [alexnet, vgg16, squeezenet1_1]", "    arch: [alexnet, vgg61, squeezenet1_1]"),
     "b2.yaml: smoke.axes.arch = 'vgg61': no such architecture (did you mean"),
    (("    point: [early, late]", "    point: [early, middle]"),
     "b2.yaml: smoke.axes.point = 'middle': unknown extraction point(s) ['middle'] for alexnet"),
    (("  run_s: 172800", "  runs_s: 172800"), "b2.yaml: unknown key 'runs_s' in timeouts (did you mean 'run_s'?)"),
    (("parameters: {}", "parameters: {bach_size: 8}"),
     "b2.yaml: unknown key 'bach_size' in parameters: not a parameter of"),
]


@pytest.mark.parametrize("edit,message", TABLE, ids=[m.split(": ", 1)[1][:40] for _, m in TABLE])
def test_each_mistake_of_the_table_is_refused_in_one_line(tmp_path, capsys, edit, message):
    text = (ROOT / "params" / "b2.yaml").read_text()
    assert edit[0] in text
    path = _copy(tmp_path, "b2", text.replace(edit[0], edit[1], 1))
    status, err = _check(path, capsys, "--runs-dir", str(tmp_path / "runs"))
    assert status == 2 and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err  # one line
    assert not (tmp_path / "runs").exists()


def test_a_number_in_a_notation_yaml_reads_as_a_string_becomes_the_annotated_float(tmp_path):
    text = (ROOT / "params" / "b2.yaml").read_text().replace("parameters: {}", "parameters: {lr: 1e-3}", 1)
    assert yaml.safe_load(text)["parameters"]["lr"] == "1e-3"  # what PyYAML (YAML 1.1) reads
    path = _copy(tmp_path, "b2", text)
    runs = plan.expand(plan.load_spec(path, smoke=True), runs_dir=tmp_path / "runs")
    assert {type(r.parameters["lr"]) for r in runs} == {float} and {r.parameters["lr"] for r in runs} == {0.001}
    # and an integral number where an int is annotated: iterations: 5e4 is 50000
    text = (ROOT / "params" / "b2.yaml").read_text().replace("parameters: {}", "parameters: {iterations: 5e4}", 1)
    runs = plan.expand(plan.load_spec(_copy(tmp_path, "b2", text)), runs_dir=tmp_path / "runs")
    assert {r.parameters["iterations"] for r in runs} == {50000}
    assert {type(r.parameters["iterations"]) for r in runs} == {int}


TYPED_NOTEBOOK = [
    ("parameters", 'lr: float = 0.1                   # a learning rate\nsteps: int = 2                    # steps\n'
                   'weights: "Optional[str]" = None   # weights\nout_dir: str = "out"              # where\n'),
    (None, "from dplib.benchmarks.record import notebook_parameters, score_row, write_result\n"
           "parameters = {k: v for k, v in notebook_parameters(globals()).items()}\n"
           "write_result(out_dir, 'typed', [score_row('typed', 'ok', lr, arch='x', point='y')], params=parameters)"),
]


def test_lr_1e_3_runs_with_0_001_recorded(tmp_path):
    import nbformat

    notebook = nbformat.v4.new_notebook()
    for tag, source in TYPED_NOTEBOOK:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = [tag] if tag else []
        notebook.cells.append(cell)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "typed.ipynb")
    params = tmp_path / "typed.yaml"
    params.write_text(f"benchmark: typed\nnotebook: {tmp_path / 'typed.ipynb'}\nparameters: {{lr: 1e-3}}\n"
                      "axes: {steps: [1, 2.0]}\ntimeouts: {cell_s: 120, run_s: 300}\n")
    result = dplib_cli("grid", "run", str(params), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "runs" / "typed").glob("*/result.json"))]
    assert [r["params"]["lr"] for r in records] == [0.001, 0.001]
    assert sorted(r["params"]["steps"] for r in records) == [1, 2]  # 2.0 where an int is annotated: 2
    assert all(type(r["params"]["steps"]) is int for r in records)
    assert [r["scores"][0]["value"] for r in records] == [0.001, 0.001]
    # a value that is no float at all never reaches a kernel
    params.write_text(params.read_text().replace("{lr: 1e-3}", "{lr: fast}"))
    refused = dplib_cli("grid", "run", str(params), "--runs-dir", str(tmp_path / "refused"), cwd=tmp_path)
    assert refused.returncode == 2 and "parameters.lr = 'fast' is not of the notebook's type float" in refused.stderr
    assert not (tmp_path / "refused").exists()


# ----- the same kinds of mistake in every committed params file and in a new benchmark's ---------

def _where_defined(raw, names):
    """(block, key) of the first of `names` the smoke grid takes from the file, else parameters."""
    for block in (raw["smoke"].get("axes") or {}, raw.get("axes") or {}):
        for name in names:
            if name in block and block[name] != "grid":
                return block, name
    for name in names:
        if name in (raw["smoke"].get("axes") or {}) or name in (raw.get("axes") or {}):
            raw["smoke"].setdefault("axes", {})
            return raw["smoke"]["axes"], name
    return raw.setdefault("parameters", {}) if raw.get("parameters") is not None else raw, names[0]


def _mistakes(raw, types):
    """(mistake, edited copy of raw, what the one line must say) of each kind, for any params file."""
    int_parameter = next(n for n, t in types.items() if t == "int" and n not in (raw.get("axes") or {})
                         and n not in (raw["smoke"].get("axes") or {}))
    edits = []

    def edit(kind, change, message):
        copied = copy.deepcopy(raw)
        change(copied)
        edits.append((kind, copied, message))

    edit("top-level key", lambda r: r.update(timeout=r.pop("timeouts")),
         "unknown key 'timeout' at the top level (did you mean 'timeouts'?)")
    edit("smoke block key", lambda r: r["smoke"].update(parameter=r["smoke"].pop("parameters")),
         "unknown key 'parameter' in smoke (did you mean 'parameters'?)")
    edit("slurm key", lambda r: r["slurm"].update(mem_gbs=64), "unknown key 'mem_gbs' in slurm")
    edit("parameter key", lambda r: r.update(parameters={**(r.get("parameters") or {}), "bach_size": 8}),
         "unknown key 'bach_size' in parameters: not a parameter of")
    edit("timeouts key", lambda r: r["smoke"]["timeouts"].update(runs_s=10), "unknown key 'runs_s' in smoke.timeouts")
    edit("value type", lambda r: r.update(parameters={**(r.get("parameters") or {}), int_parameter: "many"}),
         f"parameters.{int_parameter} = 'many' is not of the notebook's type int")

    def arch(r):
        block, key = _where_defined(r, ["arch"])
        block[key] = ["vgg61"] if block is not r.get("parameters") else "vgg61"

    edit("architecture", arch, "= 'vgg61': no such architecture")

    def point(r):
        block, key = _where_defined(r, ["point", "points"])
        value = ["middle"] if key == "points" else "middle"
        block[key] = [value] if block is not r.get("parameters") else value

    edit("point", point, "unknown extraction point(s) ['middle']")
    return edits


def _files(tmp_path):
    """Every committed grid, and the params file of a benchmark `dplib new-benchmark` wrote."""
    from dplib.benchmarks.template import new_benchmark

    files = [_copy(tmp_path, name) for name in GRIDS]
    folder = new_benchmark("sharpen", tmp_path / "mine")
    return files + [folder / "sharpen.yaml"]


def test_every_kind_of_mistake_in_every_params_file_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    for path in _files(tmp_path):
        original = path.read_text()
        raw = yaml.safe_load(original)
        notebook = Path(raw["notebook"]) if Path(raw["notebook"]).is_absolute() else path.parent / raw["notebook"]
        types = {n: r["inferred_type_name"] for n, r in plan.notebook_parameters(notebook).items()}
        assert _check(path, capsys)[1].count("dplib: error") == 0  # the file as committed passes the schema
        for kind, edited, message in _mistakes(raw, types):
            path.write_text(yaml.safe_dump(edited))
            status, err = _check(path, capsys, "--runs-dir", str(tmp_path / "runs"))
            assert status == 2 and f"{path}: " in err and message in err, (path.name, kind, err)
            assert err.count("\n") == 1, (path.name, kind, err)
        path.write_text(original)
    assert not (tmp_path / "runs").exists()


# ----- every place a params file is read refuses it the same way ---------------------------------

def test_every_command_that_reads_a_params_file_refuses_a_broken_one(tmp_path, capsys):
    from dplib.benchmarks.template import new_benchmark

    text = (ROOT / "params" / "b2.yaml").read_text().replace("timeouts:              #", "timeout:              #")
    path = _copy(tmp_path, "b2", text)
    message = "b2.yaml: unknown key 'timeout' at the top level (did you mean 'timeouts'?)"
    for command in (["grid", "run", str(path), "--smoke", "--runs-dir", str(tmp_path / "runs")],
                    ["grid", "run", str(path), "--executor", "slurm", "--cluster", "local", "--runs-dir",
                     str(tmp_path / "runs")],
                    ["grid", "check", str(path)], ["grid", "status", str(path)], ["grid", "collect", str(path)],
                    ["data", "download", "superres", "--for", str(path), "--root", str(tmp_path / "data")],
                    ["data", "verify", "superres", "--for", str(path)],
                    ["weights", "download", "--for", str(path)]):
        assert cli.main(command) == 2, command
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (command, err)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()
    # benchmark check reads the record's params file
    folder = new_benchmark("blurry", tmp_path / "mine")
    params = folder / "blurry.yaml"
    params.write_text(params.read_text().replace("slurm:\n", "slurmm:\n"))
    assert cli.main(["benchmark", "check", "blurry", "--path", str(folder), "--runs-dir", str(tmp_path / "b")]) == 2
    assert "blurry.yaml: unknown key 'slurmm' at the top level (did you mean 'slurm'?)" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_slurm_overrides_and_axis_files_are_checked_too(tmp_path):
    path = _copy(tmp_path, "b2")
    with pytest.raises(ParamsError, match=r"--slurm mem_gbs=...: 'mem_gbs' is not a submitit resource \(did you mean "
                                          r"'mem_gb'\?\)"):
        plan.load_spec(path, slurm_overrides={"mem_gbs": 8})
    assert plan.load_spec(path, slurm_overrides={"slurm_partition": "gpu"})["slurm"]["slurm_partition"] == "gpu"
    axis_file = tmp_path / "axes.yaml"
    axis_file.write_text("arch: [alexnet]\npoint: [early]\naxes:\n  weights: IMAGENET1K_V1\n")
    with pytest.raises(ParamsError, match=r"axes.yaml: axes.weights must be a non-empty list of values, got "
                                          r"'IMAGENET1K_V1'"):
        plan.load_spec(path, grid_file=axis_file)
    axis_file.write_text("arhc: [alexnet]\npoint: [early]\n")
    with pytest.raises(ParamsError, match=r"axes.arch says 'grid', but .*axes.yaml has no 'arch' list "
                                          r"\(did you mean 'arhc'\?\)"):
        plan.load_spec(path, grid_file=axis_file)
    path.write_text("benchmark: b2\nnotebook: [a, b]\nparameters: {}\naxes: {}\n")
    with pytest.raises(ParamsError, match=r"b2.yaml: notebook must be"):
        plan.load_spec(path)
    path.write_text("benchmark: b2\nparameters: {lr: [\n")
    with pytest.raises(ParamsError, match=r"b2.yaml: not valid YAML at line"):
        plan.load_spec(path)


def test_a_benchmarks_own_choices_are_checked_through_its_record(tmp_path):
    """b4's dataset and predictor, b2's channel, b3's slacks: each benchmark module's check_parameters."""
    cases = [("b4", "dataset", ["mnist"], "smoke.axes.dataset = 'mnist': unknown value 'mnist'; choose one of svhn, "
                                         "stl10"),
             ("b4", "predictor", "forest", "parameters.predictor = 'forest': unknown value 'forest'"),
             ("b2", "metric_convention", "matlab_ish", "parameters.metric_convention = 'matlab_ish': unknown value"),
             ("b3", "slacks", [0, -3], "parameters.slacks = [0, -3]: must be a non-empty list of whole numbers"),
             ("b1", "subsets", ["traditional", "cartoon"], "parameters.subsets = ['traditional', 'cartoon']: has "
                                                            "['cartoon']"),
             ("b5", "sigma", -25.0, "parameters.sigma = -25.0: sigma is the noise's standard deviation"),
             ("b3", "amp", "float8", "parameters.amp = 'float8': the precision must be False, 'float16' or 'bfloat16'"),
             ("b2", "device", "tpu", "smoke.parameters.device = 'tpu': unknown device 'tpu'")]
    for name, key, value, message in cases:
        raw = yaml.safe_load((ROOT / "params" / f"{name}.yaml").read_text())
        if key == "dataset":
            raw["smoke"]["axes"][key] = value
        elif key in raw["smoke"]["parameters"]:  # the smoke block's value is the one a smoke run takes
            raw["smoke"]["parameters"][key] = value
        else:
            raw["parameters"] = {**(raw["parameters"] or {}), key: value}
        raw["notebook"] = str(ROOT / raw["notebook"])
        path = tmp_path / f"{name}.yaml"
        shutil.copy(ROOT / "params" / "grid.yaml", tmp_path / "grid.yaml")
        path.write_text(yaml.safe_dump(raw))
        with pytest.raises(ParamsError) as refused:
            plan.expand(plan.load_spec(path, smoke=True), runs_dir=tmp_path / "runs")
        assert message in str(refused.value), str(refused.value)


def test_a_network_registered_in_a_module_dplib_networks_names_is_known_to_the_grid(tmp_path):
    """Registered networks: the grid process imports the modules DPLIB_NETWORKS names (so does
    every run's kernel, which imports dplib), so `arch: [tiny_net]` passes the check."""
    import subprocess
    import sys

    (tmp_path / "my_nets.py").write_text(
        "import torch, dplib\n"
        "dplib.register_architecture('tiny_net', lambda weights: torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), "
        "torch.nn.ReLU()), {'early': '0', 'semi_early': '1', 'mid': '1', 'late': '1'})\n")
    text = (ROOT / "params" / "b2.yaml").read_text().replace(
        "    arch: [alexnet, vgg16, squeezenet1_1]", "    arch: [tiny_net]")
    path = _copy(tmp_path, "b2", text)
    code = (f"from dplib.run import plan; runs = plan.expand(plan.load_spec({str(path)!r}, smoke=True), "
            f"runs_dir={str(tmp_path / 'runs')!r}); print(sorted({{r.parameters['arch'] for r in runs}}))")
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    known = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                           env={**env, "DPLIB_NETWORKS": "my_nets"})
    assert known.returncode == 0 and "['tiny_net']" in known.stdout, known.stderr
    unknown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                             env=env)
    assert "smoke.axes.arch = 'tiny_net': no such architecture" in unknown.stderr and "DPLIB_NETWORKS" in unknown.stderr


def test_the_slurm_keys_are_submitits():
    submitit = pytest.importorskip("submitit")
    assert set(schema.SLURM_GENERIC) == submitit.AutoExecutor._valid_parameters()
    keys, patterns = schema.slurm_keys()
    assert "slurm_partition" in keys and "mem_gb" in keys and not patterns
