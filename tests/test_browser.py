"""The notebooks in a real JupyterLab, driven by a real Chromium (Debian's, through Playwright):
every cell runs without an error, the widgets render as controls, changing the explorer's
attribute redraws its figure, and saving leaves `git status` clean. Screenshots of each
notebook go to runs/browser/.

Marked `browser`: skipped with the reason when Chromium or Playwright is missing (CI
installs both and sets DPLIB_REQUIRE_BROWSER, which turns the skip into a failure).
"""

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dplib.notebook import lab_arguments

ROOT = Path(__file__).parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = ROOT / "runs" / "browser"
CELL_LIMIT_S = 300


def _available():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[lab]')"
    if not Path(CHROMIUM).is_file():
        return "no Chromium (apt-get install chromium)"
    return None


REASON = _available()
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(REASON is not None and not os.environ.get("DPLIB_REQUIRE_BROWSER"),
                                 reason=REASON or "")]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A clone of the repository with the notebook filter installed (as `make` does), and
    JupyterLab serving it on 127.0.0.1. Yields (clone, base URL, token)."""
    clone = tmp_path_factory.mktemp("lab") / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    # the working tree as it is (uncommitted changes included), committed in the clone
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard"],
                           capture_output=True, text=True, check=True, timeout=60).stdout.splitlines()
    for name in files:
        if (ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    subprocess.run(["git", "-C", str(clone), "add", "-A"], check=True, timeout=60)
    subprocess.run(["git", "-C", str(clone), "-c", "user.name=dplib", "-c", "user.email=dplib@localhost", "commit",
                    "-q", "--allow-empty", "-m", "the working tree under test"], check=True, timeout=60)
    subprocess.run(["make", "--no-print-directory", "-C", str(clone), "notebook-filter", f"PYTHON={sys.executable}"],
                   check=True, timeout=120, capture_output=True)
    # offline: the walkthrough with random weights, as its first cell says to run it without a network
    walkthrough = clone / "notebooks" / "walkthrough.ipynb"
    walkthrough.write_text(walkthrough.read_text().replace('weights: \\"Optional[str]\\" = \\"imagenet\\"',
                                                           'weights: \\"Optional[str]\\" = None'))
    port, token = free_port(), secrets.token_hex(16)
    settings = tmp_path_factory.mktemp("jupyter")
    # a fresh Lab configuration and workspace (no user settings, no stale kernel choice)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(settings / "config"),
               JUPYTERLAB_WORKSPACES_DIR=str(settings / "workspaces"))
    server = subprocess.Popen(lab_arguments(clone, port, token) + ["--LabApp.expose_app_in_browser=True"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("JupyterLab did not start within 120 s")
    try:
        yield clone, url, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


def run_all(browser, lab, name):
    """Open notebooks/<name> in Lab, run every cell, wait until done; returns the page."""
    clone, url, token = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(120_000)
    page.goto(f"{url}/lab/tree/notebooks/{name}?reset&token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    for _ in range(5):  # a click before the kernel session is wired up does nothing: try again
        page.wait_for_timeout(2000)
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()  # the Run menu: Run All Cells
        page.locator("[data-command='runmenu:run-all']").first.click()
        try:
            page.wait_for_function("() => [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]"
                                   ".some(p => p.textContent.trim() !== '[ ]:')", timeout=20_000)
            break
        except Exception:  # playwright's TimeoutError
            continue
    else:
        pytest.fail(f"{name}: Run All Cells never started a cell")
    deadline = time.time() + CELL_LIMIT_S
    counts = []
    while time.time() < deadline:
        # Lab's own notebook model, not the prompts on screen: JupyterLab 4 renders only the cells
        # in view (windowed notebooks), so an off-screen cell's prompt reads as empty text
        counts = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.model.toJSON().cells"
                               ".filter(c => c.cell_type === 'code').map(c => c.execution_count)")
        if counts and all(isinstance(c, int) for c in counts) and page.locator(
                ".jp-Notebook-ExecutionIndicator[data-status='idle']").count():
            return page
        time.sleep(1)
    screenshot(page, f"{name}-unfinished")
    pytest.fail(f"{name}: cells did not finish within {CELL_LIMIT_S} s (execution counts: {counts}); screenshot in "
                f"{SCREENSHOTS}")


def save_and_check(page, lab, name):
    """No cell of the open notebook shows an error (read from Lab's own notebook model); save it
    in Lab; returns what `git status` says of the file."""
    clone = lab[0]
    notebook = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.model.toJSON()")
    outputs = [o for c in notebook["cells"] for o in c.get("outputs", [])]
    errors = [o for o in outputs if o["output_type"] == "error"]
    assert outputs and not errors, f"{name}: {errors[0]['ename']}: {errors[0]['evalue']}" if errors else "no outputs"
    path = clone / "notebooks" / name
    before = path.stat().st_mtime_ns
    page.keyboard.press("Control+s")
    deadline = time.time() + 60
    while time.time() < deadline and path.stat().st_mtime_ns == before:
        time.sleep(0.5)
    assert path.stat().st_mtime_ns != before, f"{name} was not saved"
    return subprocess.run(["git", "-C", str(clone), "status", "--porcelain", "--", f"notebooks/{name}"],
                          capture_output=True, text=True, timeout=60).stdout


def screenshot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("document.querySelector('.jp-WindowedPanel-inner, .jp-Notebook').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": min(max(1000, int(height) + 200), 12000)})
    page.wait_for_timeout(1000)
    page.screenshot(path=str(SCREENSHOTS / f"{Path(name).stem}.png"), full_page=True)


def test_explore_renders_its_controls_and_redraws_on_a_new_attribute(browser, lab):
    page = run_all(browser, lab, "explore.ipynb")
    output = page.locator(".jp-Cell").last.locator(".jp-OutputArea").first  # the explorer's cell
    selects = output.locator("select")
    assert selects.count() == 2, "the Dropdowns must render as controls"
    assert output.locator(".widget-toggle-buttons button").count() == 2
    assert "VBox(children" not in output.inner_text()  # the widget front end is there
    image = output.locator("img").first
    before = image.get_attribute("src")
    selects.first.select_option("depth")
    page.wait_for_function("(old) => { const i = [...document.querySelectorAll('.jp-OutputArea img')].pop();"
                           " return i && i.src !== old; }", arg=before, timeout=60_000)
    screenshot(page, "explore.ipynb")
    assert save_and_check(page, lab, "explore.ipynb") == ""  # outputs never reach git
    page.close()


@pytest.mark.parametrize("name", ["analysis_figures.ipynb", "walkthrough.ipynb"] + sorted(
    p.name for p in (ROOT / "notebooks").glob("tutorial_*.ipynb")))
def test_notebook_runs_clean_in_lab(browser, lab, name):
    page = run_all(browser, lab, name)
    assert page.locator(".jp-OutputArea img").count() >= 1  # its figures rendered
    screenshot(page, name)
    status = save_and_check(page, lab, name)
    if name != "walkthrough.ipynb":  # the test itself edited the walkthrough's weights (offline)
        assert status == ""
    page.close()
