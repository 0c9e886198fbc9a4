"""The once-per-run self-check (matches_fiftyone on example_regions) must see a
region-document builder that is wrong in any field: each test below swaps in a
builder with one plausible fault and asserts the check refuses it. These pin
what the example regions must cover (every field set to a finite, non-default
value; distinct values within a region; a zero box coordinate and class 0; a
mask that is not symmetric), so a future FiftyOne layout change in any field
cannot slip through to the documents written into users' datasets."""

import dataclasses
import itertools
import math

import numpy as np
import pytest

from segqual_fo.fo import documents
from segqual_fo.writers import documents as plain_documents
from segqual_fo.writers.documents import REGION_FLOATS
from segqual_fo.writers.regions import IssueRegion

FLOATS = REGION_FLOATS + ("confidence",)
DEFAULTS = {f.name: f.default for f in dataclasses.fields(IssueRegion) if f.default is not dataclasses.MISSING}


def _checks_builder(monkeypatch, change_regions=None, change_doc=None):
    """matches_fiftyone(example_regions()) with our builder given the changed
    regions (FiftyOne's side keeps the true ones) and/or changing its doc."""
    right = plain_documents.detections_doc

    def faulty(regions, classes):
        doc = right([change_regions(r) for r in regions] if change_regions else regions, classes)
        if change_doc:
            for det, r in zip(doc["detections"], regions):
                change_doc(det, r)
        return doc

    monkeypatch.setattr(documents, "detections_doc", faulty)
    return documents.matches_fiftyone(documents.example_regions())


def test_the_true_builder_passes_and_the_example_has_an_empty_list():
    examples = documents.example_regions()
    assert [] in examples
    assert documents.matches_fiftyone(examples)


@pytest.mark.parametrize("a,b", list(itertools.combinations(FLOATS, 2)))
def test_a_builder_that_swaps_two_float_fields_is_seen(monkeypatch, a, b):
    def swap(r):
        if r.confidence is None and "confidence" in (a, b):
            return r
        return dataclasses.replace(r, **{a: getattr(r, b), b: getattr(r, a)})

    assert not _checks_builder(monkeypatch, change_regions=swap)


def test_a_builder_that_swaps_the_given_and_predicted_classes_is_seen(monkeypatch):
    swap = lambda r: dataclasses.replace(r, given_class=r.predicted_class, predicted_class=r.given_class)
    assert not _checks_builder(monkeypatch, change_regions=swap)


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_a_builder_that_writes_a_field_s_default_instead_of_its_value_is_seen(monkeypatch, name):
    # confidence: its default None means the field is left out of the document
    assert not _checks_builder(monkeypatch, change_regions=lambda r: dataclasses.replace(r, **{name: DEFAULTS[name]}))


@pytest.mark.parametrize("name", FLOATS)
def test_a_builder_one_ulp_off_in_any_float_field_is_seen(monkeypatch, name):
    # the check compares BSON bytes: it must see rounding errors, which needs a
    # finite value in every field (NaN stays NaN under any rounding)
    def off(r):
        v = getattr(r, name)
        return r if v is None else dataclasses.replace(r, **{name: np.nextafter(float(v), math.inf)})

    assert not _checks_builder(monkeypatch, change_regions=off)


def test_a_builder_that_drops_zero_box_coordinates_is_seen(monkeypatch):
    def drop_zeros(det, r):
        det["bounding_box"] = [float(v) for v in r.bounding_box if v]

    assert not _checks_builder(monkeypatch, change_doc=drop_zeros)


def test_a_builder_that_treats_class_0_as_missing_is_seen(monkeypatch):
    def no_class_0(det, r):
        for key, c in (("label", r.given_class), ("predicted_label", r.predicted_class)):
            if not c:
                det[key] = None

    assert not _checks_builder(monkeypatch, change_doc=no_class_0)


@pytest.mark.parametrize("flip", [np.flipud, np.fliplr])
def test_a_builder_that_stores_masks_flipped_is_seen(monkeypatch, flip):
    flipped = lambda r: dataclasses.replace(r, mask=np.ascontiguousarray(flip(r.mask)))
    assert not _checks_builder(monkeypatch, change_regions=flipped)


@pytest.mark.parametrize("name", FLOATS)
def test_every_float_field_has_a_finite_non_default_example_value(name):
    # a field seen only as its default or NaN is checked for presence alone:
    # both stay unchanged under rounding or a lossy conversion, so a builder
    # that mangled the field's real values would pass the check
    default = DEFAULTS.get(name, math.nan)
    values = [getattr(r, name) for regions in documents.example_regions() for r in regions]
    assert any(
        v is not None and math.isfinite(v) and v != default for v in values
    ), f"{name}: {values}"


def test_a_builder_that_rounds_float32_scores_through_decimal_is_seen(monkeypatch):
    # float(str(np.float32(0.1))) is 0.1, not the stored float32 value
    # 0.10000000149...: the example needs a float32 score that is not exact
    # in binary (0.5 and 0.0 would round-trip through decimal unchanged)
    def decimal(det, r):
        for name in REGION_FLOATS:
            det[name] = float(str(getattr(r, name)))

    assert not _checks_builder(monkeypatch, change_doc=decimal)
