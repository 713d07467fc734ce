"""dplib.data.nights: DreamSim's NIGHTS triplets in its real layout, read as BAPPS's 2AFC."""

import pytest

from dplib.data import nights


def test_the_fixture_reads_back_as_unanimous_triplets_of_each_split(tmp_path):
    root = nights.write_fixture(tmp_path / "nights")
    assert nights.verify(root, nights.needs(("test", "val")), full=True) == []
    test = nights.NightsDataset(root, "test")
    assert len(test) == 3  # 4 written, the one of 5 votes filtered out as DreamSim does
    item = test[0]
    assert item["ref"].shape == item["p0"].shape == item["p1"].shape == (3, nights.SIZE, nights.SIZE)
    assert set(test.judge) <= {0.0, 1.0}


def test_right_vote_is_the_share_choosing_the_right_image():
    """DreamSim's label is data.csv's right_vote (0 or 1 for its unanimous triplets); a count is
    turned into a share."""
    assert nights.judge({"right_vote": "1", "votes": "6"}) == 1.0
    assert nights.judge({"right_vote": "0.0", "votes": "7"}) == 0.0
    assert nights.judge({"right_vote": "6", "votes": "6"}) == 1.0


def test_a_table_without_its_columns_or_a_split_is_refused(tmp_path):
    root = nights.write_fixture(tmp_path / "nights")
    with pytest.raises(ValueError, match="unknown NIGHTS split 'dev'"):
        nights.NightsDataset(root, "dev")
    table = root / "nights" / "data.csv"
    table.write_text(table.read_text().replace("right_vote", "right"))
    [problem] = nights.verify(root, nights.needs())[:1]
    assert "lacks the columns ['right_vote']" in problem
