"""The latent-plane explorer, a section of report.html only: pick two axes of the training latents (leading
principal axes, or the dominant components the source post uses), see images decoded across that plane,
the training latents' density and every sampler's points on it, and the decoded image of a hovered point.

Everything it shows was computed during the run (`aebench.run.pictures`: the planes' sprites and
explorer.json, each sampler's points file); here those files are read from the output folder and embedded
(images as base64 JPEG data URIs, numbers as JSON inside `<script type="application/json">` with `<`, `>` and
`&` escaped), so the report stays one file that works offline. The script (`explorer_js.SCRIPT`) reads the
data and puts text on the page with `textContent` only.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any, Mapping

from aebench.reports.blocks import embed_image
from aebench.reports.explorer_js import SCRIPT

TITLE = "Latent-plane explorer"
LEAD = ("The source post's planes, for this model: choose two axes, see the images the decoder makes across that "
        "plane (every other coordinate at the centre of the training latents), where the training latents lie on "
        "it and where each sampler's points fall (first seed). Hover a point for its decoded image, or the grid "
        "for the plane's. The view is in the address (#explorer=basis:principal;axes:0,1;hover:LABEL:ROW), so a "
        "link shows it again.")
MARKUP = """<div id="aeb-explorer" class="explorer" data-state="loading">
<p class="ex-error failed" hidden></p>
<div class="ex-controls">
<label>axes <select id="ex-basis"></select></label>
<label>x <select id="ex-x"></select></label>
<label>y <select id="ex-y"></select></label>
<span id="ex-samplers" class="ex-samplers"></span>
</div>
<div class="ex-panels">
<figure><canvas id="ex-grid" width="448" height="448"></canvas><figcaption id="ex-grid-caption"></figcaption></figure>
<figure><canvas id="ex-plot" width="448" height="448"></canvas><figcaption id="ex-plot-caption"></figcaption></figure>
<figure class="ex-hover"><canvas id="ex-hover" width="192" height="192"></canvas><figcaption id="ex-hover-caption"></figcaption></figure>
</div>
<noscript><p class="caption">The explorer needs JavaScript; the figures below show fixed planes.</p></noscript>
</div>"""
CSS = """
.explorer .ex-controls { display: flex; flex-wrap: wrap; gap: 6px 16px; align-items: center; margin: 0.4em 0; }
.explorer .ex-samplers label { margin-right: 12px; white-space: nowrap; }
.explorer .ex-swatch { display: inline-block; width: 10px; height: 10px; border-radius: 5px; margin: 0 4px; }
.explorer .ex-panels { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.explorer canvas { border: 1px solid #ddd; max-width: 100%; }
.explorer figure { max-width: 448px; } .explorer figure.ex-hover { max-width: 192px; }
"""


class ExplorerDataError(ValueError):
    """An explorer file of the output folder is missing or not what the run writes."""


def read_json(out_dir: Path, rel: Any) -> Mapping[str, Any]:
    """A JSON object from a file of the output folder."""
    try:
        data = json.loads((out_dir / str(rel)).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExplorerDataError(f"{rel} is missing or unreadable ({type(exc).__name__})") from None
    if not isinstance(data, Mapping):
        raise ExplorerDataError(f"{rel} is not a JSON object")
    return data


def explorer_data(results: Mapping[str, Any], out_dir: Path) -> dict[str, Any]:
    """What the script reads: the planes (sprites by index into `images`), the training latents' and each
    sampler's projected points, and the embedded images. Raises ExplorerDataError on a damaged folder."""
    planes = read_json(out_dir, results["explorer"])
    images: list[str] = []

    def embed(rel: Any) -> int:
        uri = embed_image(out_dir, str(rel))
        if uri is None:
            raise ExplorerDataError(f"{rel} is missing or not an image")
        images.append(uri)
        return len(images) - 1

    try:
        bases: list[dict[str, Any]] = [{"name": str(b["name"]), "title": str(b["title"]), "labels": [str(x) for x in b["labels"]],
                  "centre": _numbers(b["centre"]), "origin": _numbers(b["origin"]), "low": _numbers(b["low"]),
                  "high": _numbers(b["high"]), "train": [_numbers(p) for p in b["train"]],
                  "planes": {str(k): embed(v) for k, v in b["planes"].items()}} for b in planes["bases"]]
        samplers: list[dict[str, Any]] = []
        for row in results.get("samplers", []):
            if not row.get("explorer"):
                continue
            points = read_json(out_dir, row["explorer"])
            samplers.append({"label": str(row["name"]), "seed": int(points["seed"]), "n": int(points["n"]),
                             "rows": [int(r) for r in points["rows"]], "columns": int(points["columns"]),
                             "tile": [int(t) for t in points["tile"]], "stride": [int(t) for t in points["stride"]],
                             "sprite": embed(points["sprite"]),
                             "points": {str(k): [_numbers(p) for p in v] for k, v in points["points"].items()}})
        data = {"grid": int(planes["grid"]), "reach": float(planes["reach"]), "tile": [int(t) for t in planes["tile"]],
                "stride": [int(t) for t in planes["stride"]],
                "train_n": int(planes["train_n"]), "train_shown": int(planes["train_shown"]), "bases": bases,
                "samplers": samplers, "images": images}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, ExplorerDataError):
            raise
        raise ExplorerDataError(f"the explorer files are not what aebench writes ({type(exc).__name__}: {exc})") from None
    if not bases or any(len(b["labels"]) < 2 for b in bases) or any(
            s["points"].keys() != {b["name"] for b in bases} for s in samplers):
        raise ExplorerDataError("the explorer files do not match each other (bases, axes or points)")
    return data


def _numbers(values: Any) -> list[float]:
    return [float(v) for v in values]


def script_json(data: Any) -> str:
    """JSON safe inside a <script> element: no '<', '>' or '&' (so no '</script>' or '<!--'), no line
    separators that old parsers take for line ends."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def explorer_html(results: Mapping[str, Any], out_dir: Path) -> list[str]:
    """The section's HTML (heading, explanation, canvases, data, script), or nothing without explorer data."""
    if not results.get("explorer"):
        return []
    parts = [f"<h2>{escape(TITLE)}</h2>"]
    try:
        data = explorer_data(results, out_dir)
    except ExplorerDataError as exc:
        return parts + [f'<p class="failed">The explorer cannot be shown: {escape(str(exc))}.</p>']
    parts += [f"<p>{escape(LEAD)}</p>", MARKUP,
              f'<script type="application/json" id="aeb-explorer-data">{script_json(data)}</script>',
              f"<script>{SCRIPT}</script>"]
    return parts
