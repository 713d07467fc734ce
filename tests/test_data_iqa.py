"""dplib.data.iqa: KADID-10k, TID2013 and PIPAL in their real layouts (the fixtures here; the
downloads from replicas of their hosts in tests/test_real_run.py), read as pairs with scores."""

import numpy as np
import pytest
import torch

from dplib.data import iqa
from dplib.data.download import extract, is_rar

import replicas


@pytest.mark.parametrize("name", iqa.NAMES)
def test_a_fixture_reads_back_as_the_pictures_and_scores_written(tmp_path, name):
    root = iqa.write_fixture(tmp_path / name, name)
    dataset = iqa.OpinionDataset(name, root)
    assert len(dataset) == 3 * 3 * 2 and len(set(r for r, _, _ in dataset.rows)) == 3
    item = dataset[0]
    assert item["ref"].shape == item["dist"].shape == (3, 64, 96) and 0 <= item["ref"].min() <= item["ref"].max() <= 1
    assert not torch.equal(item["ref"], item["dist"])
    assert iqa.verify(root, iqa.needs(name), name, full=True) == []
    # the scores fall as the distortion grows, as the fixture's stand-in for people (each dataset its own scale)
    levels = np.array([int(p.stem.split("_")[-1]) for _, p, _ in dataset.rows])
    assert dataset.score[levels == levels.min()].mean() > dataset.score[levels == levels.max()].mean()


def test_tid2013s_names_are_matched_whatever_their_case(tmp_path):
    """TID2013's label file and its files disagree in case (I01_01_1.bmp on disk, listed either
    way; i25.bmp the one lower-case reference): every listed image is found."""
    root = iqa.write_fixture(tmp_path / "tid2013", "tid2013")
    listed = [line.split()[1] for line in (root / "mos_with_names.txt").read_text().splitlines()]
    on_disk = {p.name for p in (root / "distorted_images").iterdir()}
    assert any(name not in on_disk for name in listed)  # a name whose case differs from the file's
    assert sorted(p.name for p in (root / "reference_images").iterdir()) == ["I01.BMP", "I02.BMP", "i03.bmp"]
    rows = iqa.tid2013_rows(root)
    assert all(r.is_file() and d.is_file() for r, d, _ in rows) and len(rows) == len(listed)
    assert {r.name for r, _, _ in rows} == {"I01.BMP", "I02.BMP", "i03.bmp"}


def test_verify_names_what_is_missing_or_short(tmp_path):
    root = iqa.write_fixture(tmp_path / "kadid10k", "kadid10k")
    (root / "kadid10k" / "images" / "I02_01_01.png").unlink()
    [absent, changed] = iqa.verify(root, iqa.needs("kadid10k"), "kadid10k")
    assert absent.startswith("1 images listed but absent") and "I02_01_01.png" in absent
    assert "missing or changed" in changed
    empty = tmp_path / "empty"
    empty.mkdir()
    [problem] = iqa.verify(empty, iqa.needs("pipal"), "pipal")
    assert "meta_info_PIPALDataset.csv not found" in problem
    with pytest.raises(FileNotFoundError, match="dplib data download pipal"):
        iqa.OpinionDataset("pipal", empty)


def test_pipals_later_table_keeps_the_training_part_it_labels(tmp_path):
    """pyiqa's later label table adds an official_split column: only the training rows have labels."""
    root = iqa.write_fixture(tmp_path / "pipal", "pipal")
    table = root / "meta_info_PIPALDataset.csv"
    lines = table.read_text().splitlines()
    split = [lines[0] + ",official_split"] + [line + (",train" if i % 3 else ",val") for i, line in enumerate(lines[1:])]
    table.write_text("\n".join(split) + "\n")
    assert len(iqa.pipal_rows(root)) == sum(1 for i in range(len(lines) - 1) if i % 3)


def test_a_rar_archive_is_extracted_safely(tmp_path):
    """TID2013 comes as a RAR archive: bsdtar (libarchive) unpacks it, every entry checked first;
    an entry that would land outside the folder is refused."""
    path = tmp_path / "tid2013.rar"
    path.write_bytes(replicas.rar4_stored({"reference_images/I01.BMP": b"bmp", "mos_with_names.txt": b"5.0 x.bmp\n"}))
    assert is_rar(path)
    entries = extract(path, tmp_path / "out")
    assert sorted(e.name for e in entries) == ["mos_with_names.txt", "reference_images"]
    assert (tmp_path / "out" / "reference_images" / "I01.BMP").read_bytes() == b"bmp"
    path.write_bytes(replicas.rar4_stored({"../escape.txt": b"x"}))
    with pytest.raises(RuntimeError, match="outside"):
        extract(path, tmp_path / "other")
    assert not (tmp_path / "escape.txt").exists()
