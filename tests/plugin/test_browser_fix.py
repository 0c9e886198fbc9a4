"""The fix flow end to end in the real FiftyOne App (headless Chromium):
open a scored image in the sample modal, click one of its issue regions to
select it, run ``fix_label_regions`` from the operator browser (backtick),
and check the corrected field in the database (the region's pixels, and
only those, now hold the predicted class; the original mask file is
byte-identical) and in the App (the new field appears in the sidebar).

The App server, the page and their conventions (headless flags, the
backtick, waiting for elements rather than for the network, screenshots in
``test-artifacts/``) are those of tests/plugin/test_browser.py, whose
fixtures are used here; this module gives them its own ``app_dataset``.
"""

import time

import cv2
import numpy as np
import pytest

from playwright import sync_api

from segqual_fo import compute_label_quality
from segqual_fo.demo import CLASSES
from tests.plugin.conftest import add_demo_samples
from tests.plugin.test_browser import _shot, app_url, page  # noqa: F401, F811 (fixtures)

FIX_LABEL = "Fix label regions (into a new field)"
REGIONS = "label_quality_regions"
DB_TIMEOUT = 30


@pytest.fixture
def app_dataset(make_dataset, demo_records, tmp_path):
    """A persistent dataset (the App server is another process) holding the
    worst-scored demo image only, so that its tile is the grid's first."""
    scratch = add_demo_samples(make_dataset(), demo_records)
    compute_label_quality(scratch, "ground_truth", probs_field="pred_probs_path",
                          output_dir=str(tmp_path / "scratch"), progress=False)
    worst = scratch.sort_by("label_quality").first().filepath
    ds = make_dataset("segqual-fix", persistent=True)
    add_demo_samples(ds, [r for r in demo_records if r["filepath"] == worst])
    compute_label_quality(ds, "ground_truth", probs_field="pred_probs_path",
                          output_dir=str(tmp_path / "outputs"), progress=False)
    return ds


def _target_region(sample):
    """The largest issue region and an image point inside it (x, y in
    pixels, a pixel centre near the region's centroid)."""
    det = max(sample[REGIONS].detections, key=lambda d: d.area)
    h, w = cv2.imread(sample.ground_truth.mask_path, cv2.IMREAD_UNCHANGED).shape[:2]
    x0, y0 = round(det.bounding_box[0] * w), round(det.bounding_box[1] * h)
    ys, xs = np.nonzero(det.mask)
    i = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    return det, (x0 + xs[i] + 0.5, y0 + ys[i] + 0.5), (w, h)


def _open_operator(pg, label):
    """The operator's form, opened from the operator browser (backtick)."""
    pg.evaluate("document.activeElement && document.activeElement.blur()")
    pg.keyboard.press("`")
    browser = pg.get_by_test_id("operators-browser")
    browser.wait_for(state="visible")
    pg.get_by_test_id("operators-browser-search").fill(label)
    browser.get_by_text(label, exact=True).wait_for()
    pg.keyboard.press("Enter")
    prompt = pg.get_by_test_id("operators-prompt-modal")
    prompt.wait_for(state="visible")
    return prompt


def test_select_a_region_and_fix_it_in_the_app(app_dataset, app_url, page):  # noqa: F811
    ds = app_dataset
    sample = ds.first()
    det, (px, py), (w, h) = _target_region(sample)
    original_bytes = open(sample.ground_truth.mask_path, "rb").read()

    page.goto(app_url, wait_until="domcontentloaded")
    page.wait_for_selector("[data-cy=fo-grid] [data-cy=looker] canvas[canvas-loaded=true]")
    page.locator("[data-cy=fo-grid] [data-cy=looker]").first.click()
    modal = page.get_by_test_id("modal")
    modal.wait_for(state="visible")
    canvas = modal.locator("[data-cy=looker] canvas[canvas-loaded=true]").first
    canvas.wait_for()
    page.wait_for_timeout(500)
    _shot(page, "fix_01_modal.png")

    # click the region: the image is fitted into the canvas and centred
    box = canvas.bounding_box()
    scale = min(box["width"] / w, box["height"] / h)
    left = box["x"] + (box["width"] - w * scale) / 2
    top = box["y"] + (box["height"] - h * scale) / 2
    page.mouse.move(left + px * scale, top + py * scale)  # the looker picks the label under the pointer
    page.wait_for_timeout(300)
    page.mouse.click(left + px * scale, top + py * scale)
    page.wait_for_timeout(500)
    _shot(page, "fix_02_region_clicked.png")

    prompt = _open_operator(page, FIX_LABEL)
    prompt.get_by_text("1 selected regions").wait_for()
    _shot(page, "fix_03_prompt.png")
    prompt.get_by_role("button", name="Execute").click()

    # the database: the corrected field, exactly the region changed
    deadline = time.time() + DB_TIMEOUT
    while True:
        failed = prompt.get_by_text("Error occurred during operator execution")
        if failed.count():
            failed.click()
            pytest.fail("the operator failed in the App:\n" + prompt.inner_text())
        ds.reload()  # the App server declared the field: this process's schema is stale
        if ds.has_field("ground_truth_fixed") and ds.first().ground_truth_fixed is not None:
            break
        assert time.time() < deadline, "the fix did not reach the database"
        time.sleep(0.2)
    prompt.get_by_text("Fixed 1 regions in 1 images").wait_for()
    _shot(page, "fix_04_result.png")
    sample = ds.first()
    original = cv2.imread(sample.ground_truth.mask_path, cv2.IMREAD_UNCHANGED)
    fixed = cv2.imread(sample.ground_truth_fixed.mask_path, cv2.IMREAD_UNCHANGED)
    expected = original.copy()
    x0, y0 = round(det.bounding_box[0] * w), round(det.bounding_box[1] * h)
    mh, mw = det.mask.shape
    expected[y0 : y0 + mh, x0 : x0 + mw][det.mask] = CLASSES.index(det.predicted_label)
    np.testing.assert_array_equal(fixed, expected)
    assert (fixed != original).any()
    assert open(sample.ground_truth.mask_path, "rb").read() == original_bytes
    assert "fixed" in sample[REGIONS].detections[[d.id for d in sample[REGIONS].detections].index(det.id)].tags

    # the App: the new field is in the sidebar after the reload
    prompt.get_by_role("button", name="Close").click()
    prompt.wait_for(state="hidden")
    _shot(page, "fix_05_modal_after_fix.png")
    for _ in range(3):  # Escape clears the label selection first, then closes the modal
        page.keyboard.press("Escape")
        try:
            modal.wait_for(state="hidden", timeout=2000)
            break
        except sync_api.TimeoutError:
            pass
    modal.wait_for(state="hidden")
    checkbox = page.get_by_test_id("checkbox-ground_truth_fixed")
    checkbox.wait_for()
    checkbox.click()
    page.wait_for_timeout(500)  # the tile redraws its canvas
    _shot(page, "fix_06_fixed_field_in_grid.png")
    assert not page.js_errors, page.js_errors
