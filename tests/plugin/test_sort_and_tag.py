"""sort_by_label_quality and tag_label_issues on scored datasets."""

import pytest

from fiftyone import ViewField as F
from fiftyone.operators.executor import ExecutionError

from segqual_fo import compute_label_quality
from tests.plugin.helpers import invalid, resolve_inputs, run, view_set_by


def _worst_first(ds, score_field="label_quality"):
    return ds.exists(score_field).sort_by(score_field).values("id")


def test_sort_sets_the_app_view_worst_first(scored_dataset):
    result = run("sort_by_label_quality", scored_dataset)
    view = view_set_by(result, scored_dataset)
    scores = scored_dataset.values("label_quality")
    assert view.values("id") == _worst_first(scored_dataset)
    assert view.first()["label_quality"] == min(scores)
    assert result.result == {"score_field": "label_quality", "num_samples": 8}


def test_sort_can_keep_only_images_with_issues(scored_dataset):
    clean = scored_dataset.first()
    clean["label_quality_num_issues"] = 0
    clean.save()
    view = view_set_by(run("sort_by_label_quality", scored_dataset, {"only_issues": True}), scored_dataset)
    assert clean.id not in view.values("id") and len(view) == 7
    assert view.values("id") == [i for i in _worst_first(scored_dataset) if i != clean.id]


def test_sort_defaults_to_the_most_recent_run(scored_dataset, tmp_path):
    compute_label_quality(scored_dataset, "ground_truth", probs_field="pred_probs_path", method="num_pixel_issues",
                          score_field="lq_cl", output_dir=str(tmp_path / "cl"), progress=False)
    props = resolve_inputs("sort_by_label_quality", scored_dataset)
    assert props["score_field"].type.values == ["lq_cl", "label_quality"]
    assert props["score_field"].default == "lq_cl"
    view = view_set_by(run("sort_by_label_quality", scored_dataset), scored_dataset)
    assert view.values("id") == _worst_first(scored_dataset, "lq_cl")


def test_sort_without_scores_says_what_to_do(demo_dataset):
    errors = invalid(resolve_inputs("sort_by_label_quality", demo_dataset))
    assert "run compute_label_quality first" in errors["score_field"]
    with pytest.raises(ExecutionError, match="run compute_label_quality first"):
        run("sort_by_label_quality", demo_dataset)


def test_tag_worst_k(scored_dataset):
    result = run("tag_label_issues", scored_dataset, {"mode": "worst", "k": 3, "tag": "review"})
    worst3 = _worst_first(scored_dataset)[:3]
    assert sorted(scored_dataset.match_tags("review").values("id")) == sorted(worst3)
    assert result.result["num_samples"] == 3 and result.result["num_regions"] == 0
    assert scored_dataset.count_label_tags() == {}


def test_tag_below_threshold_and_regions(scored_dataset):
    scores = sorted(scored_dataset.values("label_quality"))
    threshold = (scores[3] + scores[4]) / 2
    result = run("tag_label_issues", scored_dataset,
                 {"mode": "below", "threshold": threshold, "tag": "review", "tag_regions": True, "region_tag": "fix"})
    tagged = scored_dataset.match_tags("review")
    assert len(tagged) == 4 and max(tagged.values("label_quality")) < threshold
    regions = tagged.count("label_quality_regions.detections")
    assert regions > 0 and result.result["num_regions"] == regions
    assert scored_dataset.count_label_tags() == {"fix": regions}
    untagged = scored_dataset.match(F("label_quality") >= threshold)
    assert untagged.count_label_tags() == {}


def test_tag_regions_by_confidence(scored_dataset):
    """With a minimum confidence only the regions at least that likely to be
    annotation errors get the label tag; the images are tagged as before."""
    confs = sorted(c for cs in scored_dataset.values("label_quality_regions.detections.confidence") for c in cs or [])
    assert len(confs) > 2 and confs[0] < confs[-1]
    cut = confs[len(confs) // 2]
    result = run("tag_label_issues", scored_dataset,
                 {"mode": "worst", "k": 8, "tag": "review", "tag_regions": True, "region_tag": "likely",
                  "min_confidence": cut})  # fmt: skip
    expected = sum(c >= cut for c in confs)
    assert result.result["num_regions"] == expected == scored_dataset.count_label_tags()["likely"]
    tagged = scored_dataset.filter_labels("label_quality_regions", F("tags").contains("likely"))
    assert min(c for cs in tagged.values("label_quality_regions.detections.confidence") for c in cs) >= cut
    assert len(scored_dataset.match_tags("review")) == 8
    assert "min_confidence" in resolve_inputs("tag_label_issues", scored_dataset, {"tag_regions": True})


def test_tag_form_previews_the_threshold(scored_dataset):
    props = resolve_inputs("tag_label_issues", scored_dataset, {"mode": "below", "threshold": 1.0})
    assert props["preview"].view.label == "8 images score below 1.0"
    default = resolve_inputs("tag_label_issues", scored_dataset, {"mode": "below"})["threshold"].default
    assert min(scored_dataset.values("label_quality")) <= default <= max(scored_dataset.values("label_quality"))
    errors = invalid(resolve_inputs("tag_label_issues", scored_dataset, {"mode": "worst", "k": 0}))
    assert "at least 1" in errors["k"]
