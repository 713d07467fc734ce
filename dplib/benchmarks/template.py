"""`dplib new-benchmark NAME`: a working benchmark of one's own, in a folder of its own.

It renders the four files of dplib/benchmarks/template_files/ (jinja2: {{ name }}, {{ title }})
into FOLDER/NAME/, each already wired to the rest of dplib:

    NAME.py        its code and its record (BENCHMARK = Benchmark(...): scores and their direction)
    NAME.ipynb     the notebook: the parameters contract (typed, documented: seed, data_root, weights,
                   device, out_dir, smoke knobs), training with checkpoints (dplib.train.fit), result.json
    NAME.yaml      the params file: the paper's 14 x 4 grid, time limits, a smoke block, Slurm resources
    test_NAME.py   tests of its code, on CPU

The task as written is real and runs as it is: restore images degraded by a 2 x 2 box blur with a
small residual network trained with one loss network's feature loss (Eq. 3) plus a pixel term,
on Benchmark 2's COCO sample, scored by PSNR and SSIM on Set5, Set14 and BSD100. Make it yours:
replace `degrade`, `Restorer`, the data and the scores, keeping the record, the functions the
grid calls and the parameters contract; `dplib benchmark check NAME` says what breaks it.
Benchmark 5 (image denoising, dplib/benchmarks/b5.py) began as this template.
"""

import re
from pathlib import Path

from ..errors import InputError

FILES = Path(__file__).parent / "template_files"  # the template, as files: jinja2 fills {{ name }} and {{ title }}
WRITTEN = {"benchmark.py.jinja": "{name}.py", "test_benchmark.py.jinja": "test_{name}.py",
           "benchmark.yaml.jinja": "{name}.yaml", "benchmark.ipynb.jinja": "{name}.ipynb"}

def render(name, title):
    """{file name: text} of the template's four files for a benchmark `name` titled `title`."""
    from ..extras import require

    require("dplib new-benchmark", "jinja2")
    import jinja2

    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(FILES), keep_trailing_newline=True,
                                      undefined=jinja2.StrictUndefined, autoescape=False)
    return {target.format(name=name): environment.get_template(source).render(name=name, title=title)
            for source, target in WRITTEN.items()}


def new_benchmark(name, folder="benchmarks", title=None):
    """Write folder/name/ (see the module docstring); returns its path. Refuses a bad name, a
    name dplib already knows, and a folder that exists (nothing is overwritten)."""
    from . import NAME_PATTERN, all_benchmarks

    if not re.fullmatch(NAME_PATTERN, name):
        raise InputError(f"a benchmark's name is its module's: lower-case letters, digits and _, starting with a "
                         f"letter (got {name!r})")
    if name in all_benchmarks():
        raise InputError(f"a benchmark called {name!r} exists already: choose another name")
    target = Path(folder) / name
    if target.exists():
        raise InputError(f"{target} exists: give another name or --dir")
    files = render(name, title or f"Benchmark {name}")  # rendered whole before anything is written
    target.mkdir(parents=True)
    for file_name, text in files.items():
        (target / file_name).write_text(text)
    return target
