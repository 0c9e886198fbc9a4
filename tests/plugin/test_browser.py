"""End to end in the real FiftyOne App, driven by headless Chromium.

A scored dataset is served by a fresh App server (``python -m
fiftyone.server.main``, with the plugin directory in its environment). The
test opens the operator browser with the backtick key, runs
``sort_by_label_quality`` and checks that the grid's first tile is the
worst-scored image; it opens the compute_label_quality form and checks that
it offers the dataset's fields; then it opens the Label quality panel,
checks that the histogram and the confusion table render, and clicks a
histogram bar.

Tiles are canvases: a tile is identified by the field tags the App draws on
it once the field is ticked in the sidebar (``data-cy=tag-<field>``).

Screenshots go to ``test-artifacts/`` (git-ignored); the sorted grid with
the panel open is copied to ``docs/app-screenshot.png`` for the README when
that file is missing or ``SEGQUAL_UPDATE_SCREENSHOT=1`` (so that test runs
do not rewrite a tracked file).
Needs a ``chromium`` on PATH (Debian's package) and Python playwright
(never ``playwright install``); skipped otherwise, a failure under CI=true.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from segqual_fo import compute_label_quality
from tests.plugin.conftest import PLUGINS_DIR, REPO, add_demo_samples
from tests.plugin.helpers import run, triggered

from playwright import sync_api  # a dev dependency; it drives the system browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip(  # a failure under CI=true (tests/conftest.py)
        "no chromium on PATH: install Debian's chromium (apt-get install chromium) for the browser test",
        allow_module_level=True,
    )

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 900}
ARTIFACTS = os.path.join(REPO, "test-artifacts")
DOCS_SCREENSHOT = os.path.join(REPO, "docs", "app-screenshot.png")
SORT_LABEL = "Sort by label quality (worst first)"
COMPUTE_LABEL = "Compute segmentation label quality"
PANEL = "label_quality_panel"
SERVER_TIMEOUT = 60

# The grid's tiles in visual order (the virtualised grid's DOM order is not
# guaranteed), with the text of their filepath and score tags.
READ_TILES_JS = """() => [...document.querySelectorAll('[data-cy=fo-grid] [data-cy=looker]')]
  .map(e => {
    const r = e.getBoundingClientRect();
    const tag = f => { const t = e.querySelector('[data-cy="tag-' + f + '"]'); return t ? t.textContent : null; };
    return {top: r.top, left: r.left, filepath: tag('filepath'), score: tag('label_quality')};
  })
  .sort((a, b) => a.top - b.top || a.left - b.left)"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_dataset(make_dataset, demo_records, tmp_path):
    """A persistent scored dataset (the App server is another process) whose
    natural order puts the worst image LAST, so that sorting visibly moves it."""
    scratch = add_demo_samples(make_dataset(), demo_records)
    compute_label_quality(scratch, "ground_truth", probs_field="pred_probs_path",
                          output_dir=str(tmp_path / "scratch"), progress=False)
    score = dict(zip(scratch.values("filepath"), scratch.values("label_quality")))
    best_first = sorted(demo_records, key=lambda r: -score[r["filepath"]])

    ds = make_dataset("segqual-demo", persistent=True)  # the name shows in the screenshot
    add_demo_samples(ds, best_first)
    compute_label_quality(ds, "ground_truth", probs_field="pred_probs_path",
                          output_dir=str(tmp_path / "outputs"), progress=False)
    assert ds.values("filepath")[-1] == ds.sort_by("label_quality").first().filepath
    return ds


@pytest.fixture
def panel_state(app_dataset):
    """What the panel shows for the dataset, from the panel operator run
    in-process the way the App runs it (before playwright starts its event
    loop, in which execute_operator would only schedule a task)."""
    load = run(PANEL, app_dataset, {"panel_id": "expected", "__method__": "on_load", "panel_state": {}})
    state = {}
    for patch in triggered(load, "patch_panel_state"):
        state.update(patch["state"])
    return state


@pytest.fixture
def app_url(app_dataset, tmp_path):
    """A fresh App server for this test (App view state lives server-side)."""
    port = _free_port()
    env = dict(os.environ)
    env.update(
        FIFTYONE_PLUGINS_DIR=PLUGINS_DIR,
        FIFTYONE_DO_NOT_TRACK="true",
        # the plugin imports segqual_fo; the server must find it
        PYTHONPATH=os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p),
    )
    log_path = tmp_path / "app_server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fiftyone.server.main", "--port", str(port), "--address", "127.0.0.1"],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.time() + SERVER_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/fiftyone" % port, timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail("App server did not start:\n" + log_path.read_text()[-3000:])
                time.sleep(0.2)
        yield "http://127.0.0.1:%d/datasets/%s" % (port, app_dataset.name)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def page(tmp_path, request):
    """A headless Chromium page with a fresh profile; a screenshot of the
    page is saved when the test fails. ``page.js_errors`` collects uncaught
    page errors."""
    os.makedirs(ARTIFACTS, exist_ok=True)
    failure_shot = os.path.join(ARTIFACTS, "browser_failure.png")
    if os.path.exists(failure_shot):
        os.remove(failure_shot)
    errors = []
    with sync_api.sync_playwright() as p:
        p.selectors.set_test_id_attribute("data-cy")  # the App's test ids
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, viewport=VIEWPORT
        )
        context.set_default_timeout(30_000)
        # skips the App's Enterprise popover, analytics banner and toasts
        context.add_init_script(
            "window.IS_PLAYWRIGHT = true;"
            "try { localStorage.setItem('fiftyone-do-not-track', 'true'); } catch (e) {}"
        )
        pg = context.pages[0] if context.pages else context.new_page()
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.js_errors = errors
        try:
            yield pg
            report = getattr(request.node, "rep_call", None)
            if report is not None and report.failed:
                pg.screenshot(path=failure_shot)
        finally:
            context.close()


def _tiles(page):
    return page.evaluate(READ_TILES_JS)


def _wait_first_tile(page, filepath, count=None):
    """Waits until every tile shows its tags, the first tile is ``filepath``
    and (if given) there are ``count`` tiles; returns the tiles."""
    page.wait_for_function(
        """([fp, n]) => { const t = (%s)();
             return t.length > 0 && (n === null || t.length === n) && t[0].filepath === fp
                    && t.every(x => x.filepath && x.score); }"""
        % READ_TILES_JS,
        arg=[filepath, count],
    )
    return _tiles(page)


def _shot(page, name):
    path = os.path.join(ARTIFACTS, name)
    page.screenshot(path=path)
    return path


def test_sort_operator_and_panel_in_the_app(app_dataset, panel_state, app_url, page):
    timings = {}
    t0 = time.time()
    n = len(app_dataset)
    worst = app_dataset.sort_by("label_quality").first()

    # ---- the grid, with tiles identifiable by their field tags
    page.goto(app_url, wait_until="domcontentloaded")
    page.wait_for_selector("[data-cy=fo-grid] [data-cy=looker] canvas[canvas-loaded=true]")
    page.wait_for_function(
        "n => document.querySelectorAll('[data-cy=fo-grid] [data-cy=looker]').length === n", arg=n
    )
    assert "%d samples" % n in page.get_by_test_id("entry-counts").inner_text()
    for field in ("filepath", "label_quality"):
        page.get_by_test_id("checkbox-" + field).click()
    page.wait_for_function(
        "n => { const t = (%s)(); return t.length === n && t.every(x => x.filepath && x.score); }" % READ_TILES_JS,
        arg=n,
    )
    before = _tiles(page)
    assert before[0]["filepath"] != worst.filepath  # natural order: worst image last
    assert before[-1]["filepath"] == worst.filepath
    timings["grid_ready_s"] = round(time.time() - t0, 2)
    _shot(page, "01_grid.png")

    # ---- operator browser (backtick), run sort_by_label_quality
    t = time.time()
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("`")
    browser = page.get_by_test_id("operators-browser")
    browser.wait_for(state="visible")
    page.get_by_test_id("operators-browser-search").fill(SORT_LABEL)
    browser.get_by_text(SORT_LABEL, exact=True).wait_for()
    _shot(page, "02_operator_browser.png")
    page.keyboard.press("Enter")
    # the operator has a form (score field, only-issues): confirm its defaults
    prompt = page.get_by_test_id("operators-prompt-modal")
    prompt.wait_for(state="visible")
    prompt.get_by_text("Score field").first.wait_for()
    _shot(page, "03_sort_prompt.png")
    prompt.get_by_role("button", name="Execute").click()
    prompt.wait_for(state="hidden")
    after = _wait_first_tile(page, worst.filepath, n)
    timings["operator_to_sorted_grid_s"] = round(time.time() - t, 2)

    assert after[0]["filepath"] == worst.filepath
    assert float(after[0]["score"]) == pytest.approx(worst["label_quality"], abs=1e-2)
    shown = [float(x["score"]) for x in after]
    assert shown == sorted(shown) and len(shown) == n
    assert page.get_by_test_id("view-bar").get_by_text("SortBy").count() > 0
    _shot(page, "04_sorted_grid.png")

    # ---- the compute form renders the dataset's choices
    t = time.time()
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("`")
    browser.wait_for(state="visible")
    page.get_by_test_id("operators-browser-search").fill(COMPUTE_LABEL)
    browser.get_by_text(COMPUTE_LABEL, exact=True).wait_for()
    page.keyboard.press("Enter")
    prompt.wait_for(state="visible")
    prompt.get_by_text("ground_truth (Segmentation)").wait_for()  # the only label field
    prompt.get_by_text("pred_probs_path").wait_for()  # the string field holding .npy paths
    _shot(page, "05_compute_prompt.png")
    prompt.get_by_role("button", name="Cancel").click()
    prompt.wait_for(state="hidden")
    timings["compute_form_s"] = round(time.time() - t, 2)

    # ---- the panel: histogram + confusion table
    t = time.time()
    page.get_by_test_id("new-panel-btn").first.click()
    page.get_by_test_id("new-panel-option-" + PANEL).click()
    content = page.get_by_test_id("panel-content-" + PANEL)
    content.get_by_text("Label quality: label_quality").wait_for()
    bars = content.locator(".js-plotly-plot .bars path")
    bars.first.wait_for()
    table = content.locator("table").filter(has_text="Predicted")  # not the settings table
    table.wait_for()
    timings["panel_render_s"] = round(time.time() - t, 2)

    state = panel_state
    top = state["confusion"][0]
    assert content.locator(".js-plotly-plot").is_visible() and table.is_visible()
    assert bars.count() == len(state["hist_edges"]) - 1
    header = table.locator("thead").inner_text()
    assert "Given" in header and "Predicted" in header
    first_row = table.locator("tbody tr").first.inner_text()
    assert top["given_label"] in first_row and top["predicted_label"] in first_row
    assert table.locator("tbody tr").count() == len(state["confusion"])
    page.wait_for_timeout(600)  # let plotly finish its entry transition
    _wait_first_tile(page, worst.filepath)  # still sorted next to the panel
    _shot(page, "06_sorted_grid_with_panel.png")

    # the README's picture: scores and issue regions on the tiles, no temp paths
    page.get_by_test_id("checkbox-filepath").click()
    page.wait_for_function("() => (%s)().every(t => !t.filepath && t.score)" % READ_TILES_JS)
    page.wait_for_timeout(500)  # the tiles redraw their canvases
    readme_shot = _shot(page, "07_readme_sorted_grid_with_panel.png")
    if not os.path.exists(DOCS_SCREENSHOT) or os.environ.get("SEGQUAL_UPDATE_SCREENSHOT") == "1":
        os.makedirs(os.path.dirname(DOCS_SCREENSHOT), exist_ok=True)
        shutil.copyfile(readme_shot, DOCS_SCREENSHOT)
    page.get_by_test_id("checkbox-filepath").click()
    _wait_first_tile(page, worst.filepath)

    # ---- click the worst bar: the grid shows that score range only
    t = time.time()
    edges = state["hist_edges"]
    in_bin0 = [s for s in app_dataset.values("label_quality") if edges[0] <= s < edges[1]]
    box = bars.first.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] - 2)
    _wait_first_tile(page, worst.filepath, len(in_bin0))
    assert page.get_by_test_id("view-bar").get_by_text("Match").count() > 0
    timings["bar_click_to_filtered_grid_s"] = round(time.time() - t, 2)
    _shot(page, "08_histogram_bar_clicked.png")

    assert not page.js_errors, page.js_errors
    timings["browser_total_s"] = round(time.time() - t0, 2)
    with open(os.path.join(ARTIFACTS, "browser_timings.json"), "w") as f:
        json.dump(timings, f, indent=2)
    print("browser timings:", timings)
