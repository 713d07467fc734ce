"""What a dataset folder holds, written down: `dplib-manifest.json` beside the data.

A download records every file it wrote (relative path, size, sha256) and the archives it
fetched with their checksums, so that a second machine or a collaborator can check with
`dplib data verify` that they hold the same bytes where no checksum is published (the
roads tiles, the COCO images, BAPPS's JND archive). The fixtures write one too, marked
`"fixture": true`: their counts are their own, not the published ones.

    {"dataset": "roads", "fixture": false,
     "files": {"train/sat/10078660_15.tiff": {"size": 6750000, "sha256": "..."}, ...},
     "archives": {"jnd.tar.gz": {"size": ..., "sha256": "..."}}}
"""

import json
from pathlib import Path

from ..atomic import write_json_atomic
from ..progress import tqdm
from .download import sha256sum

NAME = "dplib-manifest.json"


def read(root):
    """The manifest of `root`, or None when there is none (or it cannot be read)."""
    path = Path(root) / NAME
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def is_fixture(root):
    return bool((read(root) or {}).get("fixture"))


def write(root, dataset, paths, archives=None, fixture=False, extra=None, progress=True):
    """Add `paths` (files under root) with their size and sha256, and `archives` ({name: {size,
    sha256 or md5}}), to root's manifest; entries already there are kept. A fixture's manifest
    also holds what verify expects of it instead of the published facts (`extra`: its counts)."""
    root = Path(root)
    manifest = read(root) or {"dataset": dataset, "fixture": fixture, "files": {}, "archives": {}}
    manifest["fixture"] = manifest.get("fixture", False) or fixture
    manifest.update(extra or {})
    paths = [p for p in paths if Path(p).name != NAME]
    for path in tqdm(sorted(paths), desc=f"{dataset}: manifest", unit="file", disable=not progress, leave=False):
        relative = Path(path).resolve().relative_to(root.resolve()).as_posix()
        manifest["files"][relative] = {"size": Path(path).stat().st_size, "sha256": sha256sum(path)}
    manifest["archives"].update(archives or {})
    write_json_atomic(root / NAME, manifest)
    return manifest


def check(root, within=None, checksums=False, progress=True):
    """Problems (one line each) of the files the manifest lists (those `within(relative path)`
    accepts: what a run reads): missing, of another size, or (checksums=True) of other bytes.
    [] when there is no manifest."""
    root = Path(root)
    manifest = read(root)
    if manifest is None:
        return []
    problems, changed = [], []
    listed = {k: v for k, v in manifest["files"].items() if within is None or within(k)}
    for relative, entry in tqdm(sorted(listed.items()), desc="checking against the manifest", unit="file",
                                disable=not (progress and checksums), leave=False):
        path = root / relative
        if not path.is_file():
            changed.append(f"{relative} is missing")
        elif path.stat().st_size != entry["size"]:
            changed.append(f"{relative} has {path.stat().st_size} bytes, the manifest {entry['size']}")
        elif checksums and sha256sum(path) != entry["sha256"]:
            changed.append(f"{relative} differs from the manifest (sha256)")
    if changed:
        problems.append(f"{len(changed)} of the {len(listed)} files in {root / NAME} are missing or changed "
                        f"(e.g. {changed[0]})")
    return problems
