"""Shared fixtures: tiny datasets in their real on-disk formats, and params files pointing at them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]
os.environ.setdefault("OMP_NUM_THREADS", "1")  # notebook kernels and grid workers share 2 cores


def pytest_collection_modifyitems(items):
    """The tests marked long first (stable otherwise): xdist hands tests out in order, and a
    long one handed out last would finish the run alone while the other workers sit idle."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


def dplib_cli(*args, cwd, timeout=600, **kwargs):
    """`dplib ARGS` (python -m dplib) run in `cwd`, its output captured."""
    return subprocess.run([sys.executable, "-m", "dplib", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, **kwargs)


@pytest.fixture(scope="session")
def bapps_root(tmp_path_factory):
    from dplib.data import bapps

    return bapps.write_fixture(tmp_path_factory.mktemp("bapps"), patches_per_subset=6)


@pytest.fixture(scope="session")
def embeddings_root(tmp_path_factory):
    """Tiny SVHN and STL-10 files in torchvision's formats."""
    from dplib.data import embeddings

    root = tmp_path_factory.mktemp("embeddings")
    for name in ("svhn", "stl10"):
        embeddings.write_fixture(root, name)
    return root


@pytest.fixture(scope="session")
def svhn(embeddings_root):
    """(uint8 images, labels): the first 32 of the SVHN fixture's extra split (B4's autoencoder split)."""
    from dplib.data import embeddings

    images, labels = embeddings.load_split("svhn", embeddings_root, "extra", orientation="upright")
    return images[:32], labels[:32]


def b4_autoencoder(procedure, feature_size, variational=False, dataset="svhn", kind="released"):
    """b4.build_autoencoder with the B4 notebook's other defaults written out (z 16 for speed)."""
    from dplib.benchmarks import b4

    return b4.build_autoencoder(procedure, dataset, feature_size, 16, variational, kind, False)


def svhn_batch(images, count=8):
    """The first batch of `count` SVHN images as B4's training loader gives it: (images, labels, indices)."""
    import torch

    from dplib.data import embeddings

    data = embeddings.Images("svhn", images, torch.zeros(len(images), dtype=torch.long), "reflect")
    return next(iter(torch.utils.data.DataLoader(data, batch_size=count)))


@pytest.fixture
def b1_params(tmp_path, bapps_root):
    """A params file for Benchmark 1 whose smoke block uses the session's BAPPS fixture."""

    def write(archs=("alexnet", "squeezenet1_1"), **overrides):
        spec = yaml.safe_load((ROOT / "params" / "b1.yaml").read_text())
        spec["notebook"] = str(ROOT / spec["notebook"])
        spec["smoke"]["parameters"]["data_root"] = str(bapps_root)
        spec["smoke"]["parameters"].update(overrides)
        spec["smoke"]["axes"]["arch"] = list(archs)
        path = tmp_path / "params" / "b1.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump(spec))
        (path.parent / "grid.yaml").write_text((ROOT / "params" / "grid.yaml").read_text())
        return path

    return write


# lpips trunk layer k is the output after torchvision `.features` child LPIPS_LAYERS[net][k].
LPIPS_LAYERS = {"alex": (1, 4, 7, 9, 11), "vgg": (3, 8, 15, 22, 29), "squeeze": (1, 4, 7, 9, 10, 11, 12)}
LPIPS_ARCH = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}
# Our points that are also lpips layers (squeezenet's semi_early, Fire 1, is not one of lpips' layers).
LPIPS_SHARED_POINTS = {"alex": ("early", "semi_early", "mid", "late"), "vgg": ("early", "semi_early", "mid", "late"),
                       "squeeze": ("early", "mid", "late")}


def lpips_baseline_and_ours(net_name):
    """The lpips baseline (lpips=False) on a random trunk, and our loss network with its weights."""
    import lpips
    import torch

    from dplib.lossnets import LossNetwork

    torch.manual_seed(0)
    reference = lpips.LPIPS(net=net_name, lpips=False, pnet_rand=True, verbose=False)
    ours = LossNetwork(LPIPS_ARCH[net_name], points=LPIPS_SHARED_POINTS[net_name], weights=None)
    trunk = {name: module for s in reference.net.children() for name, module in s.named_children()}
    for index, layer in enumerate(ours.layers):
        if str(index) in trunk:
            layer.load_state_dict(trunk[str(index)].state_dict())
    return reference, ours


class HTTPFixtureServer:
    """Serves byte strings on 127.0.0.1 with Range support; can drop a connection part-way, and
    answer a name with given error statuses first (`fail_first[name] = [503, 503]`: a flaky host)."""

    def __init__(self):
        import http.server
        import threading

        self.files, self.drop_after, self.fail_first, self.requests = {}, {}, {}, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.lstrip("/")
                server.requests.append((name, self.headers.get("Range")))
                if server.fail_first.get(name):
                    self.send_error(server.fail_first[name].pop(0))
                    return
                if name not in server.files:
                    self.send_error(404)
                    return
                data = server.files[name]
                start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
                if start:
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if name in server.drop_after:
                    self.wfile.write(body[: server.drop_after.pop(name)])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_server():
    server = HTTPFixtureServer()
    yield server
    server.close()


@pytest.fixture
def smoke_params(tmp_path):
    """A copy of params/<name>.yaml whose smoke block uses `data_root` and `axes`."""

    def write(name, data_root, axes, **overrides):
        spec = yaml.safe_load((ROOT / "params" / f"{name}.yaml").read_text())
        spec["notebook"] = str(ROOT / spec["notebook"])
        spec["smoke"]["parameters"].update(data_root=str(data_root), **overrides)
        spec["smoke"]["axes"] = dict(axes)
        folder = tmp_path / "params"
        folder.mkdir(exist_ok=True)
        (folder / "grid.yaml").write_text((ROOT / "params" / "grid.yaml").read_text())
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(spec))
        return path

    return write


TINY_NOTEBOOK_CELLS = [
    ("parameters", 'mode = "ok"       # str: ok, sleep, hold, wedged or die\nindex = 0         # int: tells runs apart\n'
                   'seconds = 0.0     # float: "sleep": one cell of 2 x seconds; "hold": one of seconds holding the GIL; '
                   '"wedged": three cells of seconds\nout_dir = "out"   # str\n'),
    (None, "import os, signal, subprocess, sys, time\nfrom pathlib import Path\nPath(out_dir).mkdir(parents=True, "
           "exist_ok=True)\n(Path(out_dir) / 'kernel.pid').write_text(str(os.getpid()))"),
    (None, "if mode == 'sleep':\n    time.sleep(2 * seconds)\n"
           "elif mode == 'hold':  # a C call that keeps the GIL: ipykernel's parent poller cannot end the kernel\n"
           "    import ctypes\n    (Path(out_dir) / 'holding').write_text('1')\n"
           "    ctypes.PyDLL(None).sleep(int(seconds))"),
    (None, "if mode == 'wedged':  # deaf to SIGINT/SIGTERM, with a child process of its own\n"
           "    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})\n"
           "    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)'])\n"
           "    (Path(out_dir) / 'child.pid').write_text(str(child.pid))\n    time.sleep(seconds)"),
    (None, "if mode == 'wedged':\n    time.sleep(seconds)"),
    (None, "if mode == 'wedged':\n    time.sleep(seconds)"),
    (None, "if mode == 'die':\n    os.kill(os.getpid(), signal.SIGKILL)"),
    (None, "from dplib.benchmarks.record import score_row, write_result\n"
           "write_result(out_dir, 'tiny', [score_row('tiny', 'ok', 1.0, arch=mode, point=str(index))], params={})"),
]


@pytest.fixture
def tiny_grid(tmp_path):
    """A params file for a tiny notebook whose runs succeed, sleep, wedge or kill their kernel."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    for tag, source in TINY_NOTEBOOK_CELLS:
        cell = nbformat.v4.new_code_cell(source)
        if tag:
            cell.metadata["tags"] = [tag]
        notebook.cells.append(cell)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "tiny.ipynb"
    nbformat.write(notebook, path)

    def write(axes, timeouts=None, **parameters):
        spec = {"benchmark": "tiny", "notebook": str(path), "parameters": parameters, "axes": axes,
                "timeouts": timeouts or {"cell_s": 120, "run_s": 300}}
        params = tmp_path / "params" / "tiny.yaml"
        params.parent.mkdir(exist_ok=True)
        params.write_text(yaml.safe_dump(spec))
        return params

    return write


def write_collected(tmp_path, name, rows):
    """The rows as a collected CSV, with one failed run added (never a result)."""
    import pandas as pd

    rows = rows + [dict(rows[0], value=float("nan"), state="failed", run_id="x")]
    path = tmp_path / f"{name}.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path
