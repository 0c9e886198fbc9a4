"""``segqual report`` rows in every format, against hand-computed values.

Four 12x16 images whose probabilities are exact binary fractions, so the
scores, issue counts and confusions are known by hand (labels: "road" = 0,
"car" = 1, "sky" = 2):

    W  "road"; 30 pixels (rows 2-6 x cols 2-7) the model calls "car" with
       s = 1/32, and 24 pixels (rows 8-11 x cols 10-15) it calls "sky" with
       s = 1/16. File name with a comma and double quotes.
    M  "sky"; 20 pixels (rows 3-6 x cols 5-9) called "road", s = 1/16.
       File name with <script> and &.
    N  "road" with a 16-pixel "car" square (rows 4-7 x cols 4-7) the model
       calls "road", s = 1/16.
    G  "road", clean (s = 1 everywhere).

Softmin (T = 0.1) ranks them W < M < N < G. The dataset name holds
``<script>`` and ``&`` too. Everything runs in-process through
``segqual_fo.cli.main`` after the database is connected, so stdout holds
only the report (no MongoDB notice to strip).
"""

import csv
import io
import json
import math

import cv2
import numpy as np
import pytest

import fiftyone as fo

from segqual_fo import compute_label_quality
from segqual_fo.cli import main

H, W_ = 12, 16
NAMES = ["road", "car", "sky"]
FIELD = "lq"
T = 0.1


def _softmin(counts):
    # sum(s * exp(-s/T)) / sum(exp(-s/T)) over {score: pixel count}
    num = sum(n * s * math.exp(-s / T) for s, n in counts.items())
    den = sum(n * math.exp(-s / T) for s, n in counts.items())
    return num / den


STEMS = {"W": 'w,"q"', "M": "<script>&m", "N": "n", "G": "g"}
SCORES = {
    "W": _softmin({1 / 32: 30, 1 / 16: 24, 1.0: 192 - 54}),
    "M": _softmin({1 / 16: 20, 1.0: 172}),
    "N": _softmin({1 / 16: 16, 1.0: 176}),
    "G": 1.0,
}
ISSUES = {"W": 54, "M": 20, "N": 16, "G": 0}
TOP_CONFUSIONS = {"W": "road->car (30px), road->sky (24px)", "M": "sky->road (20px)", "N": "car->road (16px)", "G": ""}
ORDER = ["W", "M", "N", "G"]
CONFUSION = [
    {"given_label": "road", "predicted_label": "car", "num_pixel_issues": 30},
    {"given_label": "road", "predicted_label": "sky", "num_pixel_issues": 24},
    {"given_label": "sky", "predicted_label": "road", "num_pixel_issues": 20},
    {"given_label": "car", "predicted_label": "road", "num_pixel_issues": 16},
]


def test_hand_scores_rank_as_designed():
    assert sorted(SCORES, key=SCORES.get) == ORDER
    assert len(set(SCORES.values())) == 4  # no ties: the order is defined


def _image(base, regions):
    labels = np.full((H, W_), base, np.uint8)
    probs = np.zeros((3, H, W_), np.float32)
    probs[base] = 1.0
    for rows, cols, label, p in regions:
        labels[rows, cols] = label
        probs[:, rows, cols] = np.array(p, np.float32)[:, None, None]
    return labels, probs


def _images():
    return {
        "W": _image(0, [(slice(2, 7), slice(2, 8), 0, [1 / 32, 31 / 32, 0]), (slice(8, 12), slice(10, 16), 0, [1 / 16, 0, 15 / 16])]),
        "M": _image(2, [(slice(3, 7), slice(5, 10), 2, [15 / 16, 0, 1 / 16])]),
        "N": _image(0, [(slice(4, 8), slice(4, 8), 1, [15 / 16, 1 / 16, 0])]),
        "G": _image(0, []),
    }


@pytest.fixture
def scored(make_dataset, tmp_path, capsys):
    """(dataset, {key: sample id}, {key: filepath}) scored with softmin."""
    ds = make_dataset("segqual-<script>&report")
    for sub in ("img", "mask", "probs"):
        (tmp_path / sub).mkdir()
    samples = []
    for key, (labels, probs) in _images().items():
        img = tmp_path / "img" / f"{STEMS[key]}.png"
        cv2.imwrite(str(img), np.full((H, W_, 3), 90, np.uint8))
        mask = tmp_path / "mask" / f"{key}.png"
        cv2.imwrite(str(mask), labels)
        pp = tmp_path / "probs" / f"{key}.npy"
        np.save(pp, probs)
        samples.append(fo.Sample(filepath=str(img), ground_truth=fo.Segmentation(mask_path=str(mask)), probs_path=str(pp), key=key))
    ds.add_samples(samples, progress=False)
    ds.mask_targets = {"ground_truth": dict(enumerate(NAMES))}
    ds.save()
    compute_label_quality(ds, "ground_truth", probs_field="probs_path", score_field=FIELD, output_dir=str(tmp_path / "out"), progress=False)
    keys = ds.values("key")
    ids = dict(zip(keys, ds.values("id")))
    paths = dict(zip(keys, ds.values("filepath")))
    assert paths["W"].endswith('/w,"q".png') and paths["M"].endswith("/<script>&m.png")
    capsys.readouterr()  # drop anything printed while setting up
    return ds, ids, paths


def _report(capsys, ds, *extra):
    assert main(["report", ds.name, "--score-field", FIELD, *extra]) == 0
    return capsys.readouterr()


def _expected_rows(ids, paths, keys=ORDER):
    return [
        dict(id=ids[k], filepath=paths[k], score=SCORES[k], issue_pixels=ISSUES[k], top_confusions=TOP_CONFUSIONS[k])
        for k in keys
    ]


def test_json_rows_and_confusion(scored, capsys):
    ds, ids, paths = scored
    data = json.loads(_report(capsys, ds, "--format", "json").out)
    assert data["dataset"] == ds.name and data["score_field"] == FIELD
    rows = data["images"]
    expected = _expected_rows(ids, paths)
    assert [r["id"] for r in rows] == [r["id"] for r in expected]  # worst first
    for got, want in zip(rows, expected):
        assert got["score"] == pytest.approx(want.pop("score"), rel=1e-9, abs=1e-12)
        del got["score"]
        assert got == want
    assert data["confusion"] == CONFUSION


def test_csv_rows_round_trip(scored, capsys):
    ds, ids, paths = scored
    out = _report(capsys, ds, "--format", "csv").out
    reader = csv.DictReader(io.StringIO(out, newline=""))
    assert reader.fieldnames == ["id", "filepath", "score", "issue_pixels", "top_confusions"]
    rows = list(reader)
    expected = _expected_rows(ids, paths)
    assert len(rows) == 4
    for got, want in zip(rows, expected):
        # the comma and the double quotes in W's path survive
        assert got["filepath"] == want["filepath"]
        assert got["id"] == want["id"]
        assert float(got["score"]) == pytest.approx(want["score"], rel=1e-9, abs=1e-12)
        assert int(got["issue_pixels"]) == want["issue_pixels"]
        assert got["top_confusions"] == want["top_confusions"]


def test_csv_to_file(scored, capsys, tmp_path):
    ds, ids, paths = scored
    target = tmp_path / "report.csv"
    assert _report(capsys, ds, "--format", "csv", "--output", str(target)).out == ""
    with open(target, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["filepath"], int(r["issue_pixels"])) for r in rows] == [(paths[k], ISSUES[k]) for k in ORDER]


def _parse_table(lines):
    """Rows of a fixed-width table (header, dashes, rows) as dicts: column
    extents come from the dashes line, so empty cells and values with
    single spaces parse."""
    header, dashes, *body = lines
    spans, start = [], 0
    for width in (len(d) for d in dashes.split("  ")):
        spans.append((start, start + width))
        start += width + 2
    names = [header[a:b].strip() for a, b in spans]
    return [{n: line[a:b].strip() if i < len(spans) - 1 else line[a:].strip() for i, (n, (a, b)) in enumerate(zip(names, spans))} for line in body]


def test_table_rows_and_confusions(scored, capsys):
    ds, ids, paths = scored
    out = _report(capsys, ds).out.rstrip("\n").split("\n")
    assert out[0] == f"dataset {ds.name!r}, field {FIELD!r}: 4 worst images"
    blank = out.index("")
    rows = _parse_table(out[1:blank])
    assert rows == [
        dict(id=ids[k], filepath=paths[k], score=f"{SCORES[k]:.4f}", issue_pixels=str(ISSUES[k]), top_confusions=TOP_CONFUSIONS[k])
        for k in ORDER
    ]
    assert rows[-1]["score"] == "1.0000"
    assert out[blank + 1] == "given -> predicted class confusions among issue pixels:"
    conf = _parse_table(out[blank + 2 :])
    assert conf == [{k: str(v) for k, v in row.items()} for row in CONFUSION]


def test_top_limits_rows_not_the_confusion_table(scored, capsys):
    ds, ids, paths = scored
    data = json.loads(_report(capsys, ds, "--format", "json", "--top", "2").out)
    assert [(r["id"], r["issue_pixels"], r["top_confusions"]) for r in data["images"]] == [
        (ids[k], ISSUES[k], TOP_CONFUSIONS[k]) for k in ("W", "M")
    ]
    assert data["confusion"] == CONFUSION
    out = _report(capsys, ds, "--top", "1").out
    assert out.startswith(f"dataset {ds.name!r}, field {FIELD!r}: 1 worst images\n")


def test_html_escapes_paths_names_and_confusions(scored, capsys, tmp_path):
    import html as html_mod

    ds, ids, paths = scored
    target = tmp_path / "report.html"
    _report(capsys, ds, "--format", "html", "--output", str(target))
    text = target.read_text(encoding="utf-8")
    # nothing user-controlled reaches the page raw
    assert "<script" not in text.lower()
    assert "&m.png" not in text and 'w,"q"' not in text and "->" not in text
    esc = html_mod.escape
    assert f"<title>Label quality: {esc(ds.name)}</title>" in text
    assert "&lt;script&gt;&amp;report" in text
    # the ranking table: worst first, real issue counts, escaped cells
    table = text[text.index("<h2>Ranking</h2>") :]
    cells = [
        f"<td>{esc(paths[k])}</td><td>{esc(TOP_CONFUSIONS[k])}</td>" for k in ORDER
    ]
    positions = [table.index(c) for c in cells]
    assert positions == sorted(positions)
    for i, k in enumerate(ORDER, 1):
        assert f"<tr><td>{i}</td><td>{SCORES[k]:.4f}</td><td>{ISSUES[k]}</td><td>{esc(paths[k])}</td>" in table
    assert "w,&quot;q&quot;.png" in table and "&lt;script&gt;&amp;m.png" in table
    assert "road-&gt;car (30px), road-&gt;sky (24px)" in table


def test_tag_worst_tags_exactly_the_k_worst(scored, capsys):
    ds, ids, paths = scored
    res = _report(capsys, ds, "--format", "json", "--tag-worst", "2", "--tag", "review")
    assert "tagged 2 samples 'review'" in res.err
    assert sorted(ds.match_tags("review").values("key")) == ["M", "W"]
    assert ds.count_sample_tags() == {"review": 2}
    # the rows of that same report are unchanged by tagging
    assert [r["id"] for r in json.loads(res.out)["images"]] == [ids[k] for k in ORDER]


def test_tag_worst_needs_a_tag(scored, capsys):
    ds, _, _ = scored
    assert main(["report", ds.name, "--score-field", FIELD, "--tag-worst", "2"]) == 2
    assert "--tag-worst needs --tag" in capsys.readouterr().err
    assert ds.count_sample_tags() == {}
