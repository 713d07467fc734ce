"""Downloads that survive the real world: resume, size and checksum checks, safe extraction.

    fetch(url, path, sha256=..., md5=...)  -> path  (resumes path.part; verifies; renames)
    extract(archive, into)                        (tar or zip; refuses paths escaping `into`;
                                                   extracts to a temporary folder, then moves)

A failed download or extraction leaves no half-written file or folder under its final
name: only `*.part` (kept, to resume) and nothing else.
"""

import bz2
import gzip
import hashlib
import http.client
import lzma
import os
import random
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

from ..errors import UserError
from ..progress import tqdm

CHUNK = 1 << 20


class DownloadError(UserError, RuntimeError):
    """A download that could not be completed or verified; the message says what to do."""


def raise_for(problems, name, root):
    """After a download: stop with what is missing or wrong, never report success over it."""
    if problems:
        listing = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise DownloadError(f"{name} in {root} is incomplete after the download ({len(problems)} problem"
                            f"{'s' if len(problems) > 1 else ''}):\n  {listing}\nrun the download again; a "
                            "file that keeps failing may have moved on the host")


def checksum(path, algorithm="sha256"):
    """The hex digest of a file ("sha256" or "md5"), read in 1 MB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256sum(path):
    return checksum(path, "sha256")


def _mismatch(path, sha256, md5):
    """The first published checksum `path` does not have, as (algorithm, actual, expected), or None."""
    for algorithm, expected in (("sha256", sha256), ("md5", md5)):
        if expected is not None:
            actual = checksum(path, algorithm)
            if actual != expected:
                return algorithm, actual, expected
    return None


# A flaky host gets about a minute: waits of 2, 4, 8, 16 and 30 s (each drawn from its upper half,
# so that parallel downloads do not retry in lockstep), 30 to 60 s in all. An answer that will not
# change is not retried.
RETRIES = 5
BACKOFF_S, BACKOFF_CAP_S = 2.0, 30.0
FINAL = {403: "forbidden (HTTP 403)", 404: "does not exist (HTTP 404)", 410: "is gone (HTTP 410)"}


def backoff(attempt, rng=random):
    """Seconds to wait before retry `attempt` (0-based): exponential, capped, with jitter."""
    return min(BACKOFF_CAP_S, BACKOFF_S * 2 ** attempt) * rng.uniform(0.5, 1.0)


def fetch(url, path, sha256=None, md5=None, size=None, retries=RETRIES, timeout=60, progress=True):
    """Download `url` to `path`, resuming a partial `path.part`; verify size, sha256 and md5
    (whichever are given: the published ones). A failure is retried `retries` times after
    `backoff` waits, each retry logged with its reason on stderr; 403, 404 and 410 are not.

    Returns the path. A complete, verified `path` is not downloaded again.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and (size is None or path.stat().st_size == size) and _mismatch(path, sha256, md5) is None:
        return path
    part = path.with_name(path.name + ".part")
    last_error = None
    for attempt in range(retries + 1):
        try:
            total = _fetch_once(url, part, timeout, progress)
            break
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, socket.timeout, TimeoutError) as error:
            if isinstance(error, urllib.error.HTTPError) and error.code in FINAL:
                raise DownloadError(f"{url} {FINAL[error.code]}; the dataset may have moved: download it by hand "
                                    f"and put it at {path}") from error
            last_error = error
            if attempt < retries:
                delay = backoff(attempt)
                print(f"dplib: {url}: {getattr(error, 'reason', None) or error}; retry {attempt + 1} of {retries} in "
                      f"{delay:.1f} s", file=sys.stderr, flush=True)
                time.sleep(delay)
    else:
        raise DownloadError(f"could not download {url} after {retries + 1} attempts ({last_error}); "
                            f"the partial file {part} is kept and the next try resumes it. Offline, put the "
                            f"file at {path} by hand") from last_error
    actual_size = part.stat().st_size
    expected_size = size or total
    if expected_size is not None and actual_size != expected_size:
        part.unlink()
        raise DownloadError(f"{url}: got {actual_size} bytes, expected {expected_size}; the partial file was "
                            "removed, try again")
    mismatch = _mismatch(part, sha256, md5)
    if mismatch is not None:
        part.unlink()
        algorithm, actual, expected = mismatch
        raise DownloadError(f"{url}: checksum mismatch ({algorithm} {actual}, expected {expected}); the corrupt "
                            "file was removed, try again")
    os.replace(part, path)
    return path


def _fetch_once(url, part, timeout, progress):
    """Append to `part` from where it stops; returns the full size when the server says it."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416:  # the partial file is already complete (or bigger than the file)
            return have
        raise
    with response:
        if have and response.status != 206:  # the server ignored the range: start over
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        mode = "ab" if have else "wb"
        with open(part, mode) as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                         desc=Path(url).name, disable=not progress, leave=False) as bar:
            while True:
                block = response.read(CHUNK)
                if not block:
                    break
                f.write(block)
                bar.update(len(block))
        if total is not None and part.stat().st_size < total:
            raise ConnectionError(f"connection dropped after {part.stat().st_size} of {total} bytes")
    return total


def _check_member(name, into, link=None):
    target = (into / name).resolve()
    if not target.is_relative_to(into):
        raise DownloadError(f"archive entry {name!r} would be written outside {into}; refusing to extract it")
    if link is not None and not (target.parent / link).resolve().is_relative_to(into):
        raise DownloadError(f"archive link {name!r} -> {link!r} points outside {into}; refusing to extract it")


def _verify_compressed_stream(archive):
    """Read a compressed archive to its end: tarfile stops silently at a corrupt block and
    would extract only the first part, so the checksums of the compression are checked first."""
    with open(archive, "rb") as f:
        magic = f.read(6)
    opener = {b"\x1f\x8b": gzip.open, b"BZ": bz2.open, b"\xfd7": lzma.open}.get(magic[:2])
    if opener is None:
        return
    try:
        with opener(archive, "rb") as stream:
            while stream.read(CHUNK):
                pass
    except (OSError, EOFError, zlib.error, lzma.LZMAError) as error:
        raise DownloadError(f"{archive} is corrupt or truncated ({error}); delete it and download again") from error


RAR_MAGIC = (b"Rar!\x1a\x07\x00", b"Rar!\x1a\x07\x01\x00")  # RAR 1.5-4.x and RAR 5


def is_rar(path):
    with open(path, "rb") as f:
        head = f.read(8)
    return any(head.startswith(magic) for magic in RAR_MAGIC)


def _rar_tool():
    """bsdtar (libarchive: Debian's libarchive-tools, macOS's tar) reads RAR archives; neither
    Python nor PyPI has a reader of compressed RAR without such a tool (rarfile calls one too)."""
    for tool in ("bsdtar", "tar"):
        path = shutil.which(tool)
        if path and "bsdtar" in subprocess.run([path, "--version"], capture_output=True, text=True,
                                               timeout=30).stdout:
            return path
    raise DownloadError("unpacking a .rar archive (TID2013 is distributed as one) needs bsdtar: on Debian or "
                        "Ubuntu `apt install libarchive-tools`, with conda `conda install libarchive`; macOS's tar "
                        "is bsdtar already")


def _extract_rar(archive, staging, members=None, timeout=3600):
    """A RAR archive extracted by bsdtar into `staging`, every entry checked first as tar's are."""
    tool = _rar_tool()
    try:
        listed = subprocess.run([tool, "-tf", str(archive)], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DownloadError(f"listing {archive} took over {timeout} s; is it whole?") from None
    if listed.returncode != 0:
        raise DownloadError(f"{archive} is corrupt or truncated ({listed.stderr.strip()}); delete it and download "
                            "again")
    names = [n for n in listed.stdout.splitlines() if n and (members is None or members(n))]
    for name in names:
        _check_member(name, staging.resolve())
    try:
        done = subprocess.run([tool, "-xf", str(archive), "-C", str(staging), *names], capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DownloadError(f"extracting {archive} took over {timeout} s; is the disk full?") from None
    if done.returncode != 0:
        raise DownloadError(f"{archive} could not be extracted ({done.stderr.strip()}); delete it and download again")


def extract(archive, into, members=None):
    """Extract a tar(.gz), zip or rar archive into `into` safely; returns the top-level entries.

    Every entry is checked to stay inside `into` (no absolute paths, '..', or links out).
    Extraction goes to a temporary folder inside `into`; only a complete extraction is
    moved into place, replacing entries of the same name. members(name) -> bool, when
    given, picks the entries to extract (the others are never written).
    """
    archive, into = Path(archive), Path(into)
    into.mkdir(parents=True, exist_ok=True)
    into = into.resolve()
    staging = Path(tempfile.mkdtemp(dir=into, prefix=".extracting-"))
    try:
        if is_rar(archive):
            _extract_rar(archive, staging, members)
        elif zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                names = [n for n in z.namelist() if members is None or members(n)]
                for name in names:
                    _check_member(name, staging.resolve())
                z.extractall(staging, members=names)
        else:
            _verify_compressed_stream(archive)
            try:
                with tarfile.open(archive) as t:
                    chosen = [m for m in t.getmembers() if members is None or members(m.name)]
                    for m in chosen:
                        if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
                            raise DownloadError(f"archive entry {m.name!r} is a device or fifo; refusing to extract it")
                        _check_member(m.name, staging.resolve(), m.linkname if (m.issym() or m.islnk()) else None)
                    t.extractall(staging, members=chosen, filter="data")
            except (tarfile.TarError, EOFError, OSError) as error:
                raise DownloadError(f"{archive} is corrupt or truncated ({error}); delete it and download again") from error
        entries = []
        for entry in sorted(staging.iterdir()):
            destination = into / entry.name
            if destination.is_dir() and not destination.is_symlink():
                shutil.rmtree(destination)
            elif destination.exists() or destination.is_symlink():
                destination.unlink()
            os.replace(entry, destination)
            entries.append(destination)
        return entries
    finally:
        shutil.rmtree(staging, ignore_errors=True)
