"""dplib.analysis.scores: the paper's scores and a grid's collected results as tidy tables."""

import pandas as pd
import pytest

from dplib.analysis import scores
from dplib.benchmarks.record import SCORE_COLUMNS, score_row


def test_load_results_reads_collected_tables_in_the_paper_columns(tmp_path):
    rows = [dict(score_row("b2", "psnr", 25.0, dataset="set5", scale=4, arch="vgg16", point="early"),
                 run_id="a", state="completed"),
            dict(benchmark="b2", score="", dataset="", scale="", arch="vgg11", point="early", value=float("nan"),
                 note="boom", run_id="b", state="failed")]
    pd.DataFrame(rows).to_csv(tmp_path / "b2.csv", index=False)
    table = scores.load_results(tmp_path / "b2.csv")
    assert list(table.columns[:8]) == SCORE_COLUMNS and len(table) == 1
    assert table.scale.iloc[0] == 4 and table.value.iloc[0] == 25.0
    assert len(scores.load_results(tmp_path)) == 1
    # a companion grid's CSV in the same folder is its own analysis's, not the benchmarks'
    pd.DataFrame([dict(rows[0], z=64, run_id="c")]).to_csv(tmp_path / "feature_prediction.csv", index=False)
    assert list(scores.load_results(tmp_path).run_id) == ["a"]
    with pytest.raises(FileNotFoundError, match="dplib grid collect"):
        scores.load_results(tmp_path / "nothing")


@pytest.mark.timeout(900)
def test_an_installed_wheel_carries_the_papers_data(tmp_path):
    """`pip install` of a wheel, then the paper's scores read in a fresh venv, away from this
    checkout: the CSVs are package data. The venv borrows this one's dependencies through a .pth
    file (whose own .pth files, the editable dplib among them, are not read), so dplib itself
    can come only from the wheel."""
    import os
    import shutil
    import site
    import subprocess
    import sys
    import sysconfig
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    source, wheels, venv = tmp_path / "source", tmp_path / "wheels", tmp_path / "venv"
    # the tracked files alone, copied: a build/ folder left in the checkout cannot lend the wheel anything
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True, timeout=60).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (root / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w",
                    str(wheels), str(source)], check=True, timeout=600, cwd=tmp_path)
    [wheel] = wheels.glob("dplib-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True, timeout=60).stdout.strip())
    (purelib / "borrowed.pth").write_text("\n".join(site.getsitepackages() + [sysconfig.get_paths()["purelib"]]))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(purelib),
                    str(wheel)], check=True, timeout=300)
    check = ("import dplib, pathlib; from dplib.analysis.scores import load_paper_scores, load_paper_architectures\n"
             "print(pathlib.Path(dplib.__file__).resolve())\n"
             "print(len(load_paper_scores()), len(load_paper_architectures()))")
    alone = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing may put a checkout first
    done = subprocess.run([str(python), "-c", check], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=alone)
    assert done.returncode == 0, done.stderr[-3000:]
    where, counts = done.stdout.split("\n")[-3:-1]
    assert Path(where).is_relative_to(purelib.resolve())  # the wheel's dplib, not this checkout's
    assert counts == f"{len(scores.load_paper_scores())} {len(scores.load_paper_architectures())}"
