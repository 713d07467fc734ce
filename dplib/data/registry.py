"""Dataset names for `dplib data download|fixtures NAME --root DIR`."""

from . import bapps, embeddings, roads, superres

DATASETS = {
    "bapps": dict(download=lambda root, include_optional: bapps.download(root, include_train=include_optional),
                  fixtures=bapps.write_fixture),
    "superres": dict(download=lambda root, include_optional: superres.download(root),
                     fixtures=superres.write_fixture),
    "roads": dict(download=lambda root, include_optional: roads.download(root), fixtures=roads.write_fixture),
    "svhn": dict(download=lambda root, include_optional: embeddings.download("svhn", root),
                 fixtures=lambda root: embeddings.write_fixture(root, "svhn")),
    "stl10": dict(download=lambda root, include_optional: embeddings.download("stl10", root),
                  fixtures=lambda root: embeddings.write_fixture(root, "stl10")),
    # both Benchmark 4 datasets at once (what params/b4.yaml's smoke block needs)
    "embeddings": dict(download=lambda root, include_optional: [embeddings.download(n, root) for n in ("svhn", "stl10")],
                       fixtures=lambda root: [embeddings.write_fixture(root, n) for n in ("svhn", "stl10")][0]),
}


def _entry(name):
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[name]


def download(name, root, include_optional=False):
    return _entry(name)["download"](root, include_optional)


def fixtures(name, root):
    return _entry(name)["fixtures"](root)
