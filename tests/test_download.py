"""dplib.data.download: resumable, verified downloads and safe extraction, over HTTP on 127.0.0.1."""

import hashlib
import io
import tarfile
import zipfile

import pytest

from dplib.data.download import DownloadError, checksum, extract, fetch, raise_for, sha256sum


def test_dropped_connection_resumes_where_it_stopped(tmp_path, http_server):
    data = bytes(range(256)) * 40
    http_server.files["big.bin"] = data
    http_server.drop_after["big.bin"] = 1000
    path = fetch(http_server.url + "big.bin", tmp_path / "big.bin", sha256=hashlib.sha256(data).hexdigest(),
                 progress=False)
    assert path.read_bytes() == data
    assert [r for name, r in http_server.requests if name == "big.bin"] == [None, "bytes=1000-"]


def test_md5_and_sha256_are_each_checked(tmp_path, http_server):
    http_server.files["a.bin"] = b"abc" * 1000
    md5 = hashlib.md5(b"abc" * 1000).hexdigest()
    assert fetch(http_server.url + "a.bin", tmp_path / "a.bin", md5=md5, progress=False).is_file()
    assert checksum(tmp_path / "a.bin", "md5") == md5
    with pytest.raises(DownloadError, match="checksum mismatch \\(md5"):
        fetch(http_server.url + "a.bin", tmp_path / "b.bin", md5="0" * 32, progress=False)
    assert not (tmp_path / "b.bin").exists() and not (tmp_path / "b.bin.part").exists()


def test_a_download_with_problems_never_reports_success():
    raise_for([], "roads", "data/roads")  # nothing wrong: nothing raised
    with pytest.raises(DownloadError, match=r"incomplete after the download \(2 problems\):\n  train/sat: 0 of"):
        raise_for(["train/sat: 0 of the 1108 .tiff files", "train/map: 0 of the 1108 .tif files"], "roads", "data/roads")


def test_members_picks_what_is_extracted(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("annotations/captions_train2014.json", "{}")
        z.writestr("annotations/instances_train2014.json", "{}")
    (tmp_path / "a.zip").write_bytes(buffer.getvalue())
    extract(tmp_path / "a.zip", tmp_path / "out", members=lambda name: "captions" in name)
    assert [p.name for p in (tmp_path / "out" / "annotations").iterdir()] == ["captions_train2014.json"]


def test_checksum_mismatch_removes_the_file(tmp_path, http_server):
    http_server.files["jnd.tar.gz"] = b"x" * 3000
    with pytest.raises(DownloadError, match="checksum mismatch"):
        fetch(http_server.url + "jnd.tar.gz", tmp_path / "jnd.tar.gz", sha256="0" * 64, progress=False)
    assert not (tmp_path / "jnd.tar.gz").exists() and not (tmp_path / "jnd.tar.gz.part").exists()


def test_failed_download_names_the_file_and_keeps_the_part(tmp_path, http_server):
    with pytest.raises(DownloadError, match="does not exist"):
        fetch(http_server.url + "missing.tar.gz", tmp_path / "missing.tar.gz", progress=False)
    http_server.close()
    with pytest.raises(DownloadError, match="put the file at"):
        fetch(http_server.url + "x.tar.gz", tmp_path / "x.tar.gz", retries=1, timeout=2, progress=False)


def test_fetch_verifies_and_skips_complete_files(tmp_path, http_server):
    http_server.files["a.bin"] = b"x" * 5000
    path = fetch(http_server.url + "a.bin", tmp_path / "a.bin", sha256=hashlib.sha256(b"x" * 5000).hexdigest(),
                 progress=False)
    assert path.read_bytes() == b"x" * 5000 and sha256sum(path) == hashlib.sha256(b"x" * 5000).hexdigest()
    count = len(http_server.requests)
    fetch(http_server.url + "a.bin", path, progress=False)
    assert len(http_server.requests) == count


def _tar_with(member_name, tmp_path, link=None):
    path = tmp_path / "evil.tar"
    with tarfile.open(path, "w") as t:
        info = tarfile.TarInfo(member_name)
        if link:
            info.type, info.linkname = tarfile.SYMTYPE, link
            t.addfile(info)
        else:
            info.size = 4
            t.addfile(info, io.BytesIO(b"evil"))
    return path


@pytest.mark.parametrize("name, link", [("../escaped.txt", None), ("/tmp/absolute-escape.txt", None),
                                        ("inside/link", "../../outside")])
def test_extraction_refuses_paths_escaping_the_root(tmp_path, name, link):
    archive = _tar_with(name, tmp_path, link)
    with pytest.raises(DownloadError, match="outside"):
        extract(archive, tmp_path / "root")
    assert not (tmp_path / "escaped.txt").exists() and not list((tmp_path / "root").iterdir())


def test_a_flaky_host_is_retried_with_growing_waits_each_logged(tmp_path, http_server, monkeypatch, capsys):
    """A host that fails twice (503, then a dropped connection's 502) then serves: two retries,
    each after a backoff wait, each logged with its reason; the file arrives whole."""
    from dplib.data import download

    waits = []
    monkeypatch.setattr(download.time, "sleep", waits.append)  # the waits themselves, not slept here
    http_server.files["a.bin"] = b"y" * 4000
    http_server.fail_first["a.bin"] = [503, 502]
    path = fetch(http_server.url + "a.bin", tmp_path / "a.bin", progress=False)
    assert path.read_bytes() == b"y" * 4000 and len(http_server.requests) == 3
    assert len(waits) == 2 and 1.0 <= waits[0] <= 2.0 and 2.0 <= waits[1] <= 4.0  # 2 s, then 4 s, jittered
    logged = capsys.readouterr().err.splitlines()
    assert [line.split("; ")[1].split(" in ")[0] for line in logged] == ["retry 1 of 5", "retry 2 of 5"]
    assert "Service Unavailable" in logged[0] and "Bad Gateway" in logged[1]


def test_the_waits_add_up_to_about_a_minute_and_are_not_in_lockstep():
    import random

    from dplib.data.download import RETRIES, backoff

    highest = sum(backoff(a, type("Top", (), {"uniform": staticmethod(lambda a, b: b)})) for a in range(RETRIES))
    lowest = sum(backoff(a, type("Bottom", (), {"uniform": staticmethod(lambda a, b: a)})) for a in range(RETRIES))
    assert (lowest, highest) == (30.0, 60.0)  # 2 + 4 + 8 + 16 + 30 at most
    rng = random.Random(0)
    assert len({round(backoff(2, rng), 6) for _ in range(8)}) == 8  # eight downloads do not retry together


@pytest.mark.parametrize("status,says", [(404, "does not exist"), (403, "forbidden"), (410, "is gone")])
def test_an_answer_that_will_not_change_is_not_retried(tmp_path, http_server, monkeypatch, status, says):
    from dplib.data import download

    monkeypatch.setattr(download.time, "sleep", lambda s: pytest.fail("a final answer was retried"))
    http_server.files["b.bin"] = b"z"
    http_server.fail_first["b.bin"] = [status] * 6
    with pytest.raises(DownloadError, match=says):
        fetch(http_server.url + "b.bin", tmp_path / "b.bin", progress=False)
    assert len(http_server.requests) == 1
