"""Reports of a scoring run, as ``segqual report`` prints them: a text
table, CSV, JSON, or a self-contained HTML page (score histogram,
class-confusion bars, and thumbnails of the worst images with their
heatmaps, all embedded as PNG data URIs).

The rows come from :func:`segqual_fo.fo.queries.ranked_rows` (worst first)
and :func:`segqual_fo.fo.queries.confusion_table`.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from typing import List, Sequence

import numpy as np

#: Columns of the ranked rows, in report order.
ROW_COLUMNS = ["id", "filepath", "score", "issue_pixels", "top_confusions"]
CONFUSION_COLUMNS = ["given_label", "predicted_label", "num_pixel_issues"]
FORMATS = ("table", "csv", "json", "html")


def format_value(x, digits: int = 4) -> str:
    """A cell of a text table: floats to ``digits`` places, None/NaN as ``-``."""
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def text_table(rows: List[dict], columns: Sequence[str]) -> str:
    """Rows as a left-aligned text table with a header line."""
    cells = [[format_value(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[j]) for row in cells]) for j, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(widths[j]) for j, c in enumerate(columns))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(widths[j]) for j, v in enumerate(row)) for row in cells]
    return "\n".join(lines)


def render_report(fmt: str, dataset, score_field: str, rows: List[dict], confusion: List[dict]) -> str:
    """The report in ``fmt`` (one of :data:`FORMATS`), ending in a newline."""
    if fmt == "json":
        doc = {"dataset": dataset.name, "score_field": score_field, "images": rows, "confusion": confusion}
        return json.dumps(doc, indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=ROW_COLUMNS)
        writer.writeheader()
        for r in rows:
            writer.writerow(r)
        return buf.getvalue()
    if fmt == "html":
        return html_report(dataset, score_field, rows, confusion)
    out = [f"dataset {dataset.name!r}, field {score_field!r}: {len(rows)} worst images", text_table(rows, ROW_COLUMNS)]
    if confusion:
        out += ["", "given -> predicted class confusions among issue pixels:", text_table(confusion, CONFUSION_COLUMNS)]
    return "\n".join(out) + "\n"


def _png_uri(image_rgb: np.ndarray) -> str:
    import cv2

    ok, buf = cv2.imencode(".png", image_rgb[:, :, ::-1])
    if not ok:
        raise OSError("could not encode a PNG")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode()


def _figure_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _thumbnail(filepath: str, heatmap_path: str, width: int = 320) -> np.ndarray:
    """The image with its heatmap blended in (red = likely wrong)."""
    import cv2

    img = cv2.imread(filepath, cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"cannot read {filepath}")
    img = img[:, :, ::-1]
    if heatmap_path:
        heat = cv2.imread(heatmap_path, cv2.IMREAD_UNCHANGED)
        if heat is not None and heat.shape[:2] == img.shape[:2]:
            colored = cv2.applyColorMap(heat, cv2.COLORMAP_JET)[:, :, ::-1]
            alpha = (heat.astype(np.float32) / 255.0)[:, :, None] * 0.8
            img = (img * (1 - alpha) + colored * alpha).astype(np.uint8)
    scale = width / img.shape[1]
    return cv2.resize(img, (width, max(1, int(img.shape[0] * scale))), interpolation=cv2.INTER_AREA)


def html_report(dataset, score_field: str, rows: List[dict], confusion: List[dict], thumbnails: int = 12) -> str:
    """Renders the report; ``rows`` are the ranked images, ``confusion`` the
    dataset's (given, predicted) rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from segqual_fo.fo.queries import run_fields

    scores = np.array([s for s in dataset.values(score_field) if s is not None], dtype=float)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Label quality: {html.escape(dataset.name)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:left}"
        ".grid{display:flex;flex-wrap:wrap;gap:12px}.grid figure{margin:0;width:320px}"
        "figcaption{font-size:12px;word-break:break-all}</style></head><body>",
        f"<h1>Label quality of {html.escape(dataset.name)}</h1>",
        f"<p>Field <code>{html.escape(score_field)}</code>: {scores.size} scored images; lower = more likely mislabelled.</p>",
    ]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(scores, bins=30, color="#d9534f")
    ax.set_xlabel("image label quality")
    ax.set_ylabel("images")
    parts.append(f"<h2>Score histogram</h2><img src='{_figure_uri(fig)}'>")
    plt.close(fig)
    if confusion:
        top = confusion[:15]
        fig, ax = plt.subplots(figsize=(6, 0.35 * len(top) + 1))
        labels = [f"{r['given_label']} -> {r['predicted_label']}" for r in top][::-1]
        ax.barh(labels, [r["num_pixel_issues"] for r in top][::-1], color="#5bc0de")
        ax.set_xlabel("issue pixels (given -> predicted)")
        parts.append(f"<h2>Class confusions</h2><img src='{_figure_uri(fig)}'>")
        plt.close(fig)
    heat_field = run_fields(dataset, score_field)["heatmap"]
    heat = {}
    if dataset.has_field(heat_field):
        heat = dict(zip(dataset.values("id"), dataset.values(f"{heat_field}.map_path")))
    parts.append("<h2>Worst images</h2><div class='grid'>")
    for r in rows[:thumbnails]:
        try:
            uri = _png_uri(_thumbnail(r["filepath"], heat.get(r["id"])))
        except OSError:
            continue
        caption = f"{r['score']:.4f} &middot; {html.escape(str(r['filepath']))}<br>{html.escape(r['top_confusions'] or '')}"
        parts.append(f"<figure><img src='{uri}' width='320'><figcaption>{caption}</figcaption></figure>")
    parts.append("</div><h2>Ranking</h2><table><tr><th>#</th><th>score</th><th>issue pixels</th><th>file</th><th>confusions</th></tr>")
    for i, r in enumerate(rows, 1):
        parts.append(
            f"<tr><td>{i}</td><td>{r['score']:.4f}</td><td>{r['issue_pixels']}</td>"
            f"<td>{html.escape(str(r['filepath']))}</td><td>{html.escape(r['top_confusions'] or '')}</td></tr>"
        )
    parts.append("</table></body></html>")
    return "\n".join(parts)
