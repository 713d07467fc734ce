"""What a params file may say: every key at every level known or refused, every value of the
notebook's parameters typed by its annotation, before anything runs.

The schema is a JSON Schema (jsonschema: nbformat, which the runner needs anyway, installs it;
the schema is data, built per notebook because a notebook's parameters are the keys that
`parameters` and `axes` may hold). A broken file is refused with one line naming the file, the
key or value, where it stands and the closest known key:

    params/b2.yaml: unknown key 'timeout' at the top level (did you mean 'timeouts'?)

Values are checked against the annotations of the notebook's `parameters` cell
(dplib.notebook.coerce): `lr: 1e-3`, which PyYAML reads as the string '1e-3', becomes the float
0.001 the notebook declares, and is recorded so; `iterations: many` is refused.
"""

import difflib

from ..errors import ParamsError
from ..notebook import annotation_text, coerce

TOP_LEVEL_REQUIRED = ("benchmark", "notebook", "parameters", "axes")
SECONDS = {"type": ["number", "null"], "exclusiveMinimum": 0, "x-expect": "a positive number of seconds, or null"}
# submitit's AutoExecutor names (`submitit.AutoExecutor._valid_parameters()`, tested equal) and,
# prefixed slurm_, those of its SlurmExecutor (slurm_partition, slurm_account, ...)
SLURM_GENERIC = ("cpus_per_task", "gpus_per_node", "mem_gb", "name", "nodes", "stderr_to_stdout", "tasks_per_node",
                 "timeout_min")


def slurm_keys():
    """The keys a `slurm` block may hold: submitit's, read from submitit where it is installed."""
    try:
        import submitit
    except ImportError:  # without the slurm extra: the generic names, and slurm_* unchecked
        return list(SLURM_GENERIC), {"^slurm_": {}}
    return sorted(set(SLURM_GENERIC) | {f"slurm_{k}" for k in submitit.SlurmExecutor._valid_parameters()}), {}


def _block(names, what):
    return {"type": ["object", "null"], "properties": dict.fromkeys(names, {}), "additionalProperties": False,
            "x-names": what}


def params_schema(parameters):
    """The JSON Schema of a params file whose notebook has these `parameters` ({name: record})."""
    names = sorted(parameters)
    axis = {"anyOf": [{"const": "grid"}, {"type": "array", "minItems": 1}],
            "x-expect": "a non-empty list of values, or 'grid' (the list in the axis file)"}
    axes = {"type": "object", "properties": dict.fromkeys(names, axis), "additionalProperties": False,
            "x-names": "parameter"}
    timeouts = {"type": ["object", "null"], "properties": {"cell_s": SECONDS, "run_s": SECONDS},
                "additionalProperties": False}
    keys, patterns = slurm_keys()
    text = {"type": "string", "minLength": 1, "x-expect": "a non-empty string"}
    return {
        "type": "object", "required": list(TOP_LEVEL_REQUIRED), "additionalProperties": False,
        "properties": {
            "benchmark": text, "notebook": text, "fixture": text,
            "name": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]+$", "x-expect": "a folder name (letters, digits, _ . -)"},
            "parameters": _block(names, "parameter"),
            "axes": axes,
            "timeouts": timeouts,
            "smoke": {"type": ["object", "null"], "additionalProperties": False,
                      "properties": {"parameters": _block(names, "parameter"), "axes": dict(axes, type=["object", "null"]),
                                     "timeouts": timeouts}},
            "slurm": {"type": ["object", "null"], "properties": dict.fromkeys(keys, {}), "patternProperties": patterns,
                      "additionalProperties": False, "x-names": "submitit resource"},
            "collect": {"type": ["object", "null"], "additionalProperties": {"type": "string"},
                        "x-expect": "a map of column names to dotted paths in result.json, e.g. {z: params.embedding_size}"},
            "exclude": {"type": ["array", "null"],
                        "items": {"type": "object", "minProperties": 1,
                                  "x-expect": "a list of {axis: value or [values]}, e.g. [{dataset: svhn, embedding_size: [256]}]"},
                        "x-expect": "a list of {axis: value or [values]}"},
        },
    }


def axis_file_schema():
    """An axis file (params/grid.yaml, grid_extended.yaml, grid_pretraining.yaml): axis lists by
    name, optionally `axes` added to every benchmark and their `exclude` combinations."""
    values = {"type": "array", "minItems": 1, "x-expect": "a non-empty list of values"}
    return {"type": "object", "additionalProperties": values,
            "properties": {"axes": {"type": "object", "additionalProperties": values},
                           "exclude": {"type": "array", "items": {"type": "object", "minProperties": 1},
                                       "x-expect": "a list of {axis: value or [values]}"}}}


def validate(document, schema, path, notebook=None):
    """Raise ParamsError, one line, for the first thing `document` breaks in `schema`."""
    import jsonschema

    if not isinstance(document, dict):
        raise ParamsError(f"{path}: holds {type(document).__name__}, not a map of keys (is it a params file?)")
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(document),
                    key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        raise ParamsError(f"{path}: {_explain(errors[0], notebook)}")


def _where(path):
    return f"in {'.'.join(map(str, path))}" if path else "at the top level"


def _explain(error, notebook):
    where, location = _where(error.absolute_path), ".".join(map(str, error.absolute_path))
    schema = error.schema
    if error.validator == "additionalProperties" and isinstance(schema.get("properties"), dict):
        known = list(schema["properties"])
        unknown = sorted(set(error.instance) - set(known), key=str)
        patterns = schema.get("patternProperties") or {}
        unknown = [k for k in unknown if not any(str(k).startswith(p.lstrip("^")) for p in patterns)]
        key = unknown[0]
        closest = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        what = schema.get("x-names")
        detail = (f": not a parameter of {notebook}" if what == "parameter" and notebook else
                  f": not a {what}" + ("" if closest else f" (known: {', '.join(known)})") if what else "")
        hint = f" (did you mean {closest[0]!r}?)" if closest else ("" if detail else f" (known: {', '.join(known)})")
        return f"unknown key {key!r} {where}{detail}{hint}"
    if error.validator == "required":
        missing = [k for k in schema.get("required", []) if k not in error.instance]
        return f"lacks the key {missing[0]!r} {where}"
    expect = schema.get("x-expect") or error.message
    return f"{location or 'the file'} must be {expect}, got {error.instance!r}"


def typed_values(values, types, label, path):
    """{name: value} with each value coerced to its annotation (types: {name: annotation});
    `label` says where they stand ("parameters", "smoke.parameters")."""
    typed = {}
    for name, value in values.items():
        typed[name] = typed_value(value, types[name], f"{label}.{name}", path)
    return typed


def typed_value(value, annotation, where, path):
    """One value as its annotation's type, or a one-line ParamsError naming value, place and type.
    An untyped parameter (papermill's "None": a notebook that is no benchmark's) is taken as it is."""
    if annotation in (None, "None"):
        return value
    try:
        return coerce(value, annotation)
    except ValueError:
        raise ParamsError(f"{path}: {where} = {value!r} is not of the notebook's type {annotation_text(annotation)}; "
                          f"give {_example(annotation)}") from None


def _example(annotation):
    text = annotation_text(annotation)
    examples = {"float": "a number (0.001, 1e-3)", "int": "a whole number", "bool": "true or false",
                "str": "a string", "list": "a list ([a, b])", "dict": "a map"}
    return examples.get(text, f"a value of type {text}")
