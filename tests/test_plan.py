"""dplib.run.plan: a params file read and expanded into the runs of its grid."""

from pathlib import Path

import pytest
import yaml

from dplib.run import plan

ROOT = Path(__file__).parents[1]


def test_expand_is_the_grid_with_stable_ids(tmp_path):
    spec = plan.load_spec(ROOT / "params" / "b1.yaml")
    runs = plan.expand(spec, runs_dir=tmp_path)
    assert len(runs) == 14 and {r.parameters["arch"] for r in runs} == set(yaml.safe_load(
        (ROOT / "params" / "grid.yaml").read_text())["arch"])
    again = plan.expand(plan.load_spec(ROOT / "params" / "b1.yaml"), runs_dir=tmp_path)
    assert [r.run_id for r in runs] == [r.run_id for r in again]
    assert len({r.run_id for r in runs}) == 14 and runs[0].run_id.startswith(runs[0].parameters["arch"])
    smoke = plan.expand(plan.load_spec(ROOT / "params" / "b1.yaml", smoke=True), runs_dir=tmp_path)
    assert len(smoke) == 4 and smoke[0].run_id != runs[11].run_id  # other parameters, other id
    only = plan.expand(spec, only=plan.parse_only("arch=vgg16|alexnet"), runs_dir=tmp_path)
    assert sorted(r.parameters["arch"] for r in only) == ["alexnet", "vgg16"]
    with pytest.raises(ValueError, match="not a grid axis"):
        plan.expand(spec, only={"archh": ["vgg16"]})
    with pytest.raises(ValueError, match=r"matches no run of the grid \(its values: arch: vgg11, vgg16, "):
        plan.expand(spec, only=plan.parse_only("arch=vgg61"))  # a typo is an error, not an empty grid


def test_only_reads_values_as_typed_or_as_yaml(tmp_path):
    """`--only variational=false,embedding_size=32` selects the runs whose values are False and 32."""
    spec = plan.load_spec(ROOT / "params" / "autoencoder_embeddings.yaml")
    runs = plan.expand(spec, only=plan.parse_only("variational=false,embedding_size=32,procedure=I-I-PS"),
                       runs_dir=tmp_path)
    assert [(r.parameters["variational"], r.parameters["embedding_size"], r.parameters["procedure"],
             r.parameters["dataset"]) for r in runs] == [(False, 32, "I-I-PS", "svhn")]


def test_exclude_leaves_combinations_out_of_the_product(tmp_path):
    """003's per-dataset z lists: SVHN 32, 64, 128 and STL-10 64 ... 512, four procedures each."""
    spec = plan.load_spec(ROOT / "params" / "autoencoder_embeddings.yaml")
    runs = plan.expand(spec, runs_dir=tmp_path)
    z = {d: sorted({r.parameters["embedding_size"] for r in runs if r.parameters["dataset"] == d})
         for d in ("svhn", "stl10")}
    assert z == {"svhn": [32, 64, 128], "stl10": [64, 128, 256, 512]} and len(runs) == 4 * (3 + 4)
    smoke = plan.expand(plan.load_spec(ROOT / "params" / "autoencoder_embeddings.yaml", smoke=True), runs_dir=tmp_path)
    assert len(smoke) == 8  # z = 16 on both: no rule matches
    bad = yaml.safe_load((ROOT / "params" / "autoencoder_embeddings.yaml").read_text())
    bad["exclude"] = [{"datasett": "svhn"}]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(ValueError, match="not a grid axis"):
        plan.load_spec(tmp_path / "bad.yaml", grid_file=ROOT / "params" / "grid.yaml")


@pytest.mark.parametrize("name", ["b1", "b1_calibrated", "b2", "b3", "b4", "b5", "autoencoder_embeddings",
                                  "feature_prediction"])
def test_every_params_file_names_only_notebook_parameters_and_restates_no_default(name):
    raw = yaml.safe_load((ROOT / "params" / f"{name}.yaml").read_text())
    defaults = plan.notebook_defaults(ROOT / raw["notebook"])
    for block in (raw["parameters"] or {}, raw["smoke"]["parameters"]):
        assert set(block) <= set(defaults), set(block) - set(defaults)
        restated = [k for k, v in block.items() if defaults[k] == v]
        assert not restated, f"params/{name}.yaml restates notebook defaults: {restated}"
    assert set(raw["axes"]) | set(raw["smoke"]["axes"]) <= set(defaults)
    for smoke in (False, True):  # the schema, the types and every run's values (was plan.check_parameters)
        plan.expand(plan.load_spec(ROOT / "params" / f"{name}.yaml", smoke=smoke))


def test_the_grid_file_is_the_registry():
    from dplib import ARCHITECTURES, POINTS

    from dplib.extended import EXTENDED

    shared = yaml.safe_load((ROOT / "params" / "grid.yaml").read_text())
    assert shared == {"arch": list(ARCHITECTURES), "point": list(POINTS)}
    extended = yaml.safe_load((ROOT / "params" / "grid_extended.yaml").read_text())
    assert extended == {"arch": list(EXTENDED), "point": list(POINTS)}
    spec = plan.load_spec(ROOT / "params" / "b4.yaml", grid_file=ROOT / "params" / "grid_extended.yaml")
    assert spec["axes"]["arch"] == list(EXTENDED)


def test_runs_record_every_parameter_and_a_changed_default_makes_new_runs(tmp_path, tiny_grid):
    params = tiny_grid({"index": [0]})
    [run] = plan.expand(plan.load_spec(params), runs_dir=tmp_path)
    assert run.parameters == {"mode": "ok", "index": 0, "seconds": 0.0, "out_dir": str(run.directory)}
    notebook = yaml.safe_load(params.read_text())["notebook"]
    Path(notebook).write_text(Path(notebook).read_text().replace('seconds = 0.0', 'seconds = 1.0'))
    [changed] = plan.expand(plan.load_spec(params), runs_dir=tmp_path)
    assert changed.parameters["seconds"] == 1.0 and changed.run_id != run.run_id


def test_an_axis_file_adds_axes_with_their_exclusions_and_collects_them(tmp_path):
    axis_file = tmp_path / "grid_pretraining.yaml"
    axis_file.write_text(yaml.safe_dump({
        "arch": ["resnet50", "vit_b_16"], "point": ["early"],
        "axes": {"weights": ["IMAGENET1K_V1", "IMAGENET1K_V2", "IMAGENET1K_SWAG_LINEAR_V1"]},
        "exclude": [{"arch": "resnet50", "weights": "IMAGENET1K_SWAG_LINEAR_V1"},
                    {"arch": "vit_b_16", "weights": "IMAGENET1K_V2"}]}))
    spec = plan.load_spec(ROOT / "params" / "b3.yaml", grid_file=axis_file)
    runs = plan.expand(spec)
    assert sorted((r.parameters["arch"], r.parameters["weights"]) for r in runs) == [
        ("resnet50", "IMAGENET1K_V1"), ("resnet50", "IMAGENET1K_V2"),
        ("vit_b_16", "IMAGENET1K_SWAG_LINEAR_V1"), ("vit_b_16", "IMAGENET1K_V1")]
    assert spec["collect"]["weights"] == "params.weights"
    axis_file.write_text(yaml.safe_dump({"arch": ["resnet50"], "point": ["early"], "axes": {"arch": ["vgg16"]}}))
    with pytest.raises(ValueError, match="adds the axis 'arch'"):
        plan.load_spec(ROOT / "params" / "b3.yaml", grid_file=axis_file)


def test_the_shipped_pretraining_grid_gives_each_architecture_only_its_own_weights():
    from dplib.lossnets import weight_names

    spec = plan.load_spec(ROOT / "params" / "b1.yaml", grid_file=ROOT / "params" / "grid_pretraining.yaml")
    pairs = {(r.parameters["arch"], r.parameters["weights"]) for r in plan.expand(spec)}
    assert all(weights in weight_names(arch) for arch, weights in pairs)
    assert {arch for arch, _ in pairs} == set(spec["axes"]["arch"])
    assert all(sum(a == arch for a, _ in pairs) >= 2 for arch in spec["axes"]["arch"])  # each compares two or more
