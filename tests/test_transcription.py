"""results/paper/transcribe_companions.py: the companion papers' printed numbers as data.
Spot checks are cells read by eye from the seed texts; the rerun check needs the seeds."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "dplib" / "analysis" / "paper"
SEEDS = ROOT.parent / "shared" / "seeds"


def rows(name):
    with open(PAPER / name) as f:
        return list(csv.DictReader(f))


def cell(data, **where):
    found = [r for r in data if all(r[k] == v for k, v in where.items())]
    assert len(found) == 1, (where, found)
    return float(found[0]["value"])


def test_003_cells_read_from_the_printed_tables():
    table = rows("autoencoder_embeddings.csv")
    assert cell(table, table="III", dataset="stl10", z="256", procedure="perceptual VAE") == 64.8
    assert cell(table, table="III", dataset="stl10", z="any", procedure="AE") == 45.0
    assert cell(table, table="IV", dataset="svhn", z="128", procedure="perceptual AE") == 84.0
    assert cell(table, table="VI", dataset="stl10", z="64", procedure="VAE") == 36.8
    assert cell(table, table="VII", dataset="svhn", z="32", procedure="AE") == 25.5
    assert cell(table, table="VIII", dataset="svhn", procedure="perceptual AE") == 75.0
    assert cell(table, table="VIII", dataset="stl10", procedure="perceptual VAE") == 44.0
    # z in {64, 128, 256, 512} + "any" for STL-10, {32, 64, 128} + "any" for SVHN, four procedures
    for number, dataset, zs in (("III", "stl10", 5), ("IV", "svhn", 4), ("VI", "stl10", 5), ("VII", "svhn", 4)):
        assert len([r for r in table if r["table"] == number and r["dataset"] == dataset]) == zs * 4
    assert len(table) == 2 * (20 + 16) + 8  # LunarLander's tables (II, V, VIII's first row) left out


def test_004_cells_and_statements():
    table = rows("feature_prediction.csv")
    assert cell(table, table="II", dataset="stl10", procedure="I-F-FP") == 0.67
    assert [r["spread"] for r in table if r["table"] == "II" and r["procedure"] == "I-F-FP"] == ["0.01", "0.0"]
    assert cell(table, table="II", dataset="svhn", procedure="simple CNN") == 0.89
    assert cell(table, table="I", procedure="I-I-PS") == 0.913
    assert cell(table, table="Fig. 8 (text)", dataset="svhn", procedure="I-F-FP over I-I-PS") == 0.55
    assert cell(table, table="Fig. 7 (text)", dataset="stl10", procedure="I-F-FP") == 0.65
    assert all("lunar" not in r["dataset"] for r in table)


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seed texts (../shared/seeds) are not next to this checkout")
def test_the_committed_files_are_what_the_script_reads_from_the_seeds(tmp_path):
    seeds = sorted(SEEDS.glob("00[34]_*.txt"))
    subprocess.run([sys.executable, str(ROOT / "results" / "paper" / "transcribe_companions.py"), *map(str, seeds), str(tmp_path)],
                   check=True, timeout=60)
    for name in ("autoencoder_embeddings.csv", "feature_prediction.csv"):
        assert (PAPER / name).read_bytes() == (tmp_path / name).read_bytes(), name
