"""Paths for notebooks: a relative path in a notebook's parameters means the same place
wherever the notebook runs. JupyterLab starts a kernel in the notebook's folder
(notebooks/), papermill and the grid in the repository root; `resolve` puts relative paths
under the repository root in all three cases, and leaves absolute paths alone.

    out_dir = resolve(out_dir)      # "runs/b1/manual" -> <repository>/runs/b1/manual
"""

import re
from pathlib import Path

LAYOUT = ("notebooks", "params")  # a folder holding both is the repository root


def repository_root(start=None):
    """The nearest folder at or above `start` (default: the working directory) that holds
    notebooks/ and params/; the working directory itself when there is none (an installed
    dplib used outside the repository)."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if all((folder / name).is_dir() for name in LAYOUT):
            return folder
    return here


def resolve(path, start=None):
    """`path` as a string: unchanged when absolute, else under the repository root."""
    path = Path(path).expanduser()
    return str(path if path.is_absolute() else repository_root(start) / path)


# ----- JupyterLab ---------------------------------------------------------------------------
# The committed notebooks stay clean on disk too: as JupyterLab saves one of them, it is
# stripped exactly as the git filter strips it (nbstripout: outputs, execution counts, cell
# ids renumbered, language_info), so a notebook run and saved in Lab is byte for byte the
# committed file and `git status` stays clean. Notebooks elsewhere (your own, runs/) keep
# their outputs. `make lab` and the browser tests start Lab through `lab_arguments`.

TRACKED_NOTEBOOKS = "notebooks/"
STRIPPED_KEYS = ["metadata.language_info"]  # besides nbstripout's defaults; as `make notebook-filter`
# the metadata nbstripout's command line strips by default (its library function does not)
NBSTRIPOUT_DEFAULT_KEYS = ["metadata.signature", "metadata.widgets", "cell.metadata.collapsed",
                           "cell.metadata.ExecuteTime", "cell.metadata.execution", "cell.metadata.heading_collapsed",
                           "cell.metadata.hidden", "cell.metadata.scrolled"]


def strip_before_save(model, path, contents_manager=None, **kwargs):
    """Jupyter's ContentsManager.pre_save_hook: strip a tracked notebook as it is saved."""
    import nbformat
    from nbstripout import strip_output

    if model.get("type") != "notebook" or not str(path).lstrip("/").startswith(TRACKED_NOTEBOOKS):
        return
    notebook = nbformat.from_dict(model["content"])
    model["content"] = strip_output(notebook, keep_output=False, keep_count=False, keep_id=False,
                                    extra_keys=NBSTRIPOUT_DEFAULT_KEYS + STRIPPED_KEYS)


def notebook_contract(notebook, required):
    """What breaks the parameters contract in a notebook: a list of one-line errors. Its
    `parameters` cell must hold every `required` name (a tuple: one of its names), each parameter typed (`name: type = value`)
    and documented (a comment after it), so that papermill, the grid and a reader see each one."""
    import papermill

    try:
        parameters = papermill.inspect_notebook(str(notebook))
    except Exception as error:  # papermill names what it could not read
        return [f"{notebook}: its parameters cannot be read ({error})"]
    if not parameters:
        return [f"{notebook} has no cell tagged 'parameters'"]
    errors = [f"{notebook}'s parameters lack {' or '.join(map(repr, name)) if isinstance(name, tuple) else repr(name)}"
              for name in required if not set(name if isinstance(name, tuple) else (name,)) & set(parameters)]
    for name, spec in parameters.items():
        if spec.get("inferred_type_name") in (None, "None"):
            errors.append(f"{notebook}: the parameter {name!r} has no type (write `{name}: type = value`)")
            continue
        try:
            parse_annotation(spec["inferred_type_name"])
        except ValueError as error:
            errors.append(f"{notebook}: the parameter {name!r}: {error}")
        if not (spec.get("help") or "").strip():
            errors.append(f"{notebook}: the parameter {name!r} is not documented (a `# comment` after it)")
    return errors


# ----- typed parameters ----------------------------------------------------------------------
# A parameters cell types each parameter (`lr: float = 0.001`); the grid checks every value a
# params file gives against that annotation before any run starts (dplib.run.schema). The forms
# the notebooks use: int, float, bool, str, list, dict, None, Optional[X], Union[X, Y, ...].

SIMPLE_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "list": list, "dict": dict, "None": type(None)}
# A YAML 1.1 reader (PyYAML) reads 1e-3 and 5e4 as strings (its float needs a dot): such a
# string is the number it spells when the annotation asks for one.
NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def parse_annotation(text):
    """'Optional[str]' -> (str, NoneType): the types a parameter's annotation admits, in order."""
    text = str(text).strip().strip("\"'").replace("typing.", "")
    match = re.fullmatch(r"(Optional|Union)\[(.*)\]", text)
    if match:
        members = [m for part in _split_members(match.group(2)) for m in parse_annotation(part)]
        return tuple(members) + ((type(None),) if match.group(1) == "Optional" else ())
    generic = re.fullmatch(r"(list|List|dict|Dict|tuple|Tuple)(\[.*\])?", text)
    if generic:
        return ({"tuple": list, "list": list, "dict": dict}[generic.group(1).lower()],)
    if text not in SIMPLE_TYPES:
        raise ValueError(f"the annotation {text!r} is none of {', '.join(SIMPLE_TYPES)}, Optional[...] or Union[...]")
    return (SIMPLE_TYPES[text],)


def _split_members(text):
    members, depth, current = [], 0, ""
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            members.append(current)
            current = ""
        else:
            current += char
    return [m.strip() for m in members + [current] if m.strip()]


def _as(value, kind):
    """`value` as `kind`, or a sentinel _NO when it is not one (no lossy conversion)."""
    if kind is bool:
        return value if isinstance(value, bool) else _NO
    if kind in (int, float) and isinstance(value, bool):
        return _NO  # True is an int to Python, not to a reader of a params file
    if kind is float and isinstance(value, (int, float)):
        return float(value)
    if kind is int and isinstance(value, float):
        return int(value) if value.is_integer() else _NO
    if kind in (int, float) and isinstance(value, str) and NUMBER.fullmatch(value.strip()):
        return _as(float(value) if kind is float or not value.strip().lstrip("+-").isdigit() else int(value), kind)
    if kind is list and isinstance(value, tuple):
        return list(value)
    return value if isinstance(value, kind) else _NO


_NO = object()


def coerce(value, annotation):
    """`value` as the annotation's type: unchanged when it is one already, a number notation
    string ("1e-3") as the float (or whole int) it spells, an integral float as an int; a
    ValueError naming the type it needs otherwise."""
    kinds = parse_annotation(annotation)
    if any(type(value) is kind for kind in kinds):
        return value
    for kind in kinds:
        converted = _as(value, kind)
        if converted is not _NO:
            return converted
    raise ValueError(f"needs {annotation_text(annotation)}")


def annotation_text(annotation):
    return str(annotation).strip().strip("\"'")


def write_notebook(path, cells):
    """Write a notebook of `cells` ([(kind "markdown" or "code", source, tags)]) as the committed
    notebooks are: no outputs, stripped as the git filter strips them (dplib new-benchmark)."""
    import nbformat
    from nbstripout import strip_output

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                       "name": "python3"}
    for kind, source, tags in cells:
        cell = nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
        if tags:
            cell.metadata["tags"] = list(tags)
        notebook.cells.append(cell)
    notebook = strip_output(notebook, keep_output=False, keep_count=False, keep_id=False,
                            extra_keys=NBSTRIPOUT_DEFAULT_KEYS + STRIPPED_KEYS)
    Path(path).write_text(nbformat.writes(notebook) + "\n")
    return Path(path)


def lab_arguments(root, port=None, token=None):
    """The command line of JupyterLab for this repository: on 127.0.0.1 only, rooted at the
    repository, tracked notebooks stripped as they are saved."""
    import os
    import sys

    arguments = [sys.executable, "-m", "jupyterlab", "--ip=127.0.0.1", "--no-browser", f"--ServerApp.root_dir={root}",
                 "--ContentsManager.pre_save_hook=dplib.notebook.strip_before_save"]
    if port:
        arguments.append(f"--port={port}")
    if token is not None:
        arguments.append(f"--IdentityProvider.token={token}")
    if hasattr(os, "getuid") and os.getuid() == 0:
        arguments.append("--allow-root")  # Jupyter refuses to run as root without it
    return arguments


if __name__ == "__main__":  # `python -m dplib.notebook`: what `make lab` runs
    import os

    root = repository_root()
    os.chdir(root)
    os.execv(lab_arguments(root)[0], lab_arguments(root))
