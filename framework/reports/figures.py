"""The pictures of a run, each written atomically as one PNG: sample grids, path strips (the source post's
figures), latent scatter plots and hit rate along a path (`cell_figures` draws them for one cell).

Matplotlib is used through `matplotlib.figure.Figure` with the Agg canvas, never pyplot, so no
global figure state leaks between calls and no display is needed.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from aebench.errors import AebenchError
from aebench.infra.io import atomic_path

MIN_TILE = 64  # images smaller than this are upscaled (nearest) so faces stay visible in the grid
MAX_SCALE = 8
PAD = 2
PAD_VALUE = 255
SCATTER_SEED = 0  # which points a crowded scatter plot shows: the same ones in every run
TRAIN_COLOUR, SAMPLE_COLOUR, ORIGIN_COLOUR, CENTRE_COLOUR = "tab:blue", "red", "yellow", "orange"


class FigureError(AebenchError):
    """Input a figure cannot be drawn from (wrong shape, dtype or length)."""


def _as_images(images: Any) -> np.ndarray:
    """uint8 [n, c, h, w] (c = 1 or 3) as a numpy array, or a one-line error."""
    arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if arr.dtype != np.uint8:
        raise FigureError(f"Images must be uint8 [n, c, h, w], got dtype {arr.dtype}; convert with (x * 255).round().to(torch.uint8).")
    if arr.ndim != 4 or arr.shape[1] not in (1, 3) or arr.shape[0] == 0:
        raise FigureError(f"Images must be a non-empty [n, c, h, w] array with c = 1 or 3, got shape {tuple(arr.shape)}.")
    return arr


def _as_vector(values: Any, n: int, name: str, dtype: Any) -> np.ndarray:
    arr = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    arr = arr.reshape(-1).astype(dtype)
    if arr.shape[0] != n:
        raise FigureError(f"{name} has {arr.shape[0]} entries but there are {n} images; pass one per image.")
    return arr


def _as_matrix(values: Any, name: str) -> np.ndarray:
    arr = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if arr.ndim != 2:
        raise FigureError(f"{name} must be a [n, N] matrix of latent vectors, got shape {tuple(arr.shape)}.")
    return arr.astype(np.float64)



def upscale_factor(height: int) -> int:
    """Nearest-neighbour factor that brings a small image to at least MIN_TILE pixels high."""
    return 1 if height >= MIN_TILE else min(MAX_SCALE, math.ceil(MIN_TILE / height))


def grid_array(images: Any, *, ncols: int = 8, scale: int = 1, pad: int = PAD) -> np.ndarray:
    """Images tiled row-major into one uint8 [H, W, c] array, `pad` pixels of white between and around tiles."""
    arr = _as_images(images)
    n, c, h, w = arr.shape
    if ncols < 1 or scale < 1:
        raise FigureError(f"ncols and scale must be >= 1, got {ncols} and {scale}.")
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    th, tw = h * scale, w * scale
    grid = np.full((pad + nrows * (th + pad), pad + ncols * (tw + pad), c), PAD_VALUE, dtype=np.uint8)
    tiles = arr.transpose(0, 2, 3, 1).repeat(scale, axis=1).repeat(scale, axis=2)
    for i, tile in enumerate(tiles):
        r, col = divmod(i, ncols)
        y, x = pad + r * (th + pad), pad + col * (tw + pad)
        grid[y:y + th, x:x + tw] = tile
    return grid


def _pil_image(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(arr[..., 0], mode="L") if arr.shape[-1] == 1 else Image.fromarray(arr, mode="RGB")


def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)  # a scalable font where Pillow has FreeType
    except (TypeError, OSError):  # pragma: no cover - old Pillow or no FreeType
        return ImageFont.load_default()


def _with_title(img: Image.Image, title: str, caption: str | None = None) -> Image.Image:
    """`img` under a bold-ish title line and an optional smaller caption line saying what it shows."""
    lines = [(title, _font(13))] + ([(caption, _font(11))] if caption else [])
    band = 6 + 17 * len(lines)
    white = 255 if img.mode == "L" else (255, 255, 255)
    black = 0 if img.mode == "L" else (0, 0, 0)
    width = max(img.width, *(int(f.getlength(t)) + 2 * PAD + 6 for t, f in lines))
    out = Image.new(img.mode, (width, img.height + band), white)
    out.paste(img, (0, band))
    draw = ImageDraw.Draw(out)
    for k, (text, font) in enumerate(lines):
        draw.text((PAD + 2, 3 + 17 * k), text, fill=black if k == 0 else (90 if img.mode == "L" else (90, 90, 90)),
                  font=font)
    return out


def sample_grid(images: Any, path: str | Path, *, ncols: int = 8, max_images: int = 64, title: str | None = None) -> Path:
    """A grid of decoded samples (grey or RGB), the first `max_images`, small images upscaled (nearest);
    with a `title`, under it a caption says how many of how many samples are shown and in which order."""
    full = _as_images(images)
    arr = full[:max_images]
    img = _pil_image(grid_array(arr, ncols=ncols, scale=upscale_factor(arr.shape[2])))
    caption = (f"decoded samples: the first {arr.shape[0]} of {full.shape[0]}, in sampling order, row by row"
               if arr.shape[0] < full.shape[0] else f"all {arr.shape[0]} decoded samples, in sampling order, row by row")
    if title:
        img = _with_title(img, title, caption)
    path = Path(path)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return path


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    return path


def pick_along_t(t: np.ndarray, count: int) -> np.ndarray:
    """Indices of the points nearest to `count` evenly spaced t values over [min t, max t], in t order
    (all points when a path has no more than `count`)."""
    order = np.argsort(t, kind="stable")
    if len(t) <= count:
        return order
    targets = np.linspace(t.min(), t.max(), count)
    sorted_t = t[order]
    picked: list[int] = []
    for target in targets:
        free = [i for i in range(len(order)) if i not in picked]
        picked.append(min(free, key=lambda i: abs(sorted_t[i] - target)))
    return order[sorted(picked)]


def _path_label(labels: Sequence[str] | Mapping[int, str] | None, pid: int) -> str:
    if isinstance(labels, Mapping):
        return str(labels.get(pid, f"path {pid}"))
    if labels is not None and 0 <= pid < len(labels):
        return str(labels[pid])
    return f"path {pid}"


def image_rows(rows: Sequence[tuple[str, Any, Sequence[str] | None]], path: str | Path, *, title: str,
               xlabel: str) -> Path:
    """Labelled rows of images: each row is (row label, uint8 images [k, c, h, w], a caption under each
    image or None); the figure gets `title` on top and `xlabel` under the columns."""
    if not rows:
        raise FigureError("No rows of images to draw; pass at least one (label, images, captions) row.")
    arrays = [(label, _as_images(images), captions) for label, images, captions in rows]
    ncols = max(a.shape[0] for _, a, _ in arrays)
    width = 1.25 * ncols + 1.2
    fig = _new_figure(width, 1.45 * len(arrays) + 0.7)
    axes = fig.subplots(len(arrays), ncols, squeeze=False)
    for r, (label, arr, captions) in enumerate(arrays):
        grey = arr.shape[1] == 1
        for col in range(ncols):
            ax = axes[r][col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= arr.shape[0]:
                ax.set_axis_off()
                continue
            img = arr[col].transpose(1, 2, 0)
            ax.imshow(img[..., 0] if grey else img, cmap="gray" if grey else None, vmin=0, vmax=255)
            if captions is not None and col < len(captions):
                ax.set_xlabel(str(captions[col]), fontsize=8)
        axes[r][0].set_ylabel(label, fontsize=8)
    chars = max(16, int(width * 11))  # a narrow figure (one image per row) wraps its texts instead of cutting them
    fig.suptitle(textwrap.fill(title, chars), fontsize=10)
    fig.supxlabel(textwrap.fill(xlabel, chars), fontsize=9)
    fig.tight_layout(pad=0.4)
    return _save(fig, path)


def path_strips(
    images: Any,
    path_index: Any,
    t: Any,
    path: str | Path,
    *,
    per_path: int = 8,
    max_paths: int = 8,
    labels: Sequence[str] | Mapping[int, str] | None = None,
    title: str | None = None,
) -> Path:
    """One row per path (the first `max_paths` path ids), images at evenly spaced t with t under each.

    `labels` names rows by path id (a mapping, or a sequence indexed by path id), e.g. "angle 45°".
    """
    arr = _as_images(images)
    n = arr.shape[0]
    pids = _as_vector(path_index, n, "path_index", np.int64)
    ts = _as_vector(t, n, "t", np.float64)
    if not np.isfinite(ts).all():
        raise FigureError("t contains NaN or infinite values; path samplers must give every point a finite t.")
    if per_path < 1 or max_paths < 1:
        raise FigureError(f"per_path and max_paths must be >= 1, got {per_path} and {max_paths}.")
    picks = [(int(pid), idx[pick_along_t(ts[idx], per_path)])
             for pid, idx in ((pid, np.flatnonzero(pids == pid)) for pid in np.unique(pids)[:max_paths])]
    rows = [(_path_label(labels, pid), arr[idx], [f"t={ts[i]:.2f}" for i in idx]) for pid, idx in picks]
    return image_rows(rows, path, title=title or "Decoded images along each path",
                      xlabel="position t along the path (0 = start, 1 = end)")


def _subsample(points: np.ndarray, max_points: int, rng: np.random.Generator) -> np.ndarray:
    if len(points) <= max_points:
        return points
    return points[np.sort(rng.choice(len(points), size=max_points, replace=False))]


def latent_scatter(
    train_latents: Any,
    sample_latents: Any,
    axes: tuple[int, int],
    centre: Any,
    path: str | Path,
    *,
    title: str | None = None,
    max_points: int = 5000,
) -> Path:
    """Orthogonal projection onto the plane of coordinate axes (i, j), in the source post's colours: training
    z-points blue, the sampler's points red, origin yellow, centre of the training distribution orange."""
    train = _as_matrix(train_latents, "train_latents")
    samples = _as_matrix(sample_latents, "sample_latents")
    dim = train.shape[1]
    ctr = (centre.detach().cpu().numpy() if isinstance(centre, torch.Tensor) else np.asarray(centre)).reshape(-1)
    if samples.shape[1] != dim or ctr.shape[0] != dim:
        raise FigureError(
            f"Latent dimensions differ: train {dim}, samples {samples.shape[1]}, centre {ctr.shape[0]}; "
            "plot latents of the same model."
        )
    i, j = (int(a) for a in axes)
    if not (0 <= i < dim and 0 <= j < dim) or i == j:
        raise FigureError(f"axes must be two different components in [0, {dim}), got {tuple(axes)}.")
    rng = np.random.default_rng(SCATTER_SEED)
    train = _subsample(train, max_points, rng)
    samples = _subsample(samples, max_points, rng)
    finite = np.isfinite(samples[:, [i, j]]).all(axis=1)
    fig = _new_figure(5.5, 5.0)
    ax = fig.subplots()
    ax.scatter(train[:, i], train[:, j], s=5, c=TRAIN_COLOUR, alpha=0.5, linewidths=0, label=f"training z ({len(train)})")
    ax.scatter(samples[finite, i], samples[finite, j], s=7, c=SAMPLE_COLOUR, alpha=0.7, linewidths=0,
               label=f"samples ({int(finite.sum())})")
    ax.scatter([0], [0], s=70, c=ORIGIN_COLOUR, edgecolors="black", linewidths=0.6, zorder=5, label="origin")
    ax.scatter([ctr[i]], [ctr[j]], s=70, c=CENTRE_COLOUR, edgecolors="black", linewidths=0.6, zorder=5, label="centre")
    ax.set_xlabel(f"component {i}")
    ax.set_ylabel(f"component {j}")
    dropped = int((~finite).sum())
    ax.set_title((title or "") + (f" ({dropped} non-finite points not shown)" if dropped else ""), fontsize=10)
    ax.legend(loc="best", fontsize=8, markerscale=1.5)
    ax.grid(alpha=0.2)
    return _save(fig, path)


def hits_along_t(along_t: Mapping[str, Sequence[Sequence[float]]], path: str | Path, *, target: float = 0.95,
                 title: str | None = None) -> Path:
    """Hit rate vs path position t, one line per region, the calibration target dashed; y in [0, 1].
    Bins holding no points are left out."""
    if not along_t:
        raise FigureError("No hit rates along t to plot; this figure is for path samplers with fitted regions.")
    fig = _new_figure(6.0, 3.6)
    ax = fig.subplots()
    for region, bins in along_t.items():
        pts = [(float(b[0]), float(b[1])) for b in bins if len(b) < 3 or int(b[2]) > 0]
        if not pts:
            continue
        ts, rates = zip(*sorted(pts))
        ax.plot(ts, rates, marker="o", markersize=3, label=region)
    ax.axhline(target, linestyle="--", color="grey", linewidth=1, label=f"target {target:.0%}")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("t (position along the path: 0 = start, 1 = end)")
    ax.set_ylabel("hit rate (share of points inside the region)")
    ax.set_title(title or "Region hit rate along the path", fontsize=10)
    ax.legend(loc="best", fontsize=8, title="region", title_fontsize=8)
    ax.grid(alpha=0.2)
    return _save(fig, path)


def cell_figures(fake: Any, folder: Path, *, stem: str, name: str, path_labels: Sequence[str] | None,
                 axes: tuple[int, int], train_latents: Any, centre: Any, along_t: Mapping[str, Any],
                 target: float) -> dict[str, Path]:
    """One cell's figures (a sampler's first seed; `fake` holds its images, latents, path and t): the sample
    grid, the path strips (path samplers), the latent scatter on `axes` and the hit rate along t, as
    `folder/<stem>_<kind>.png`. The runner hands this function to the cells (aebench.run.cells.FigureDrawer)."""
    seed = f"seed {fake.seed}"
    made = {"grid": sample_grid(fake.images, folder / f"{stem}_grid.png", title=f"{name}, {seed}")}
    if fake.path is not None and fake.t is not None:
        made["strips"] = path_strips(fake.images, fake.path, fake.t, folder / f"{stem}_strips.png", labels=path_labels,
                                     title=f"{name}: decoded images along each path ({seed})")
    made["scatter"] = latent_scatter(train_latents, fake.latents, axes, centre, folder / f"{stem}_scatter.png",
                                     title=f"{name}: latent components {axes[0]} and {axes[1]} ({seed})")
    if along_t:
        made["along_t"] = hits_along_t(along_t, folder / f"{stem}_along_t.png", target=target,
                                       title=f"{name}: share of points inside each region along the path")
    return made
