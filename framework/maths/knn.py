"""Chunked exact k-nearest-neighbour primitives for regions and PRDC-style metrics.

Memory stays bounded: distances are formed one block of about `block_bytes` of float32 at a time
(default `DEFAULT_BLOCK_BYTES` on the CPU, `CUDA_BLOCK_BYTES` on a GPU), never as a whole n x m
matrix. Speed comes from one float32 matrix product per block on centred data, with the row and
column terms folded into the product (``[-2q, a_i, 1] . [r, 1, b_j]``), followed by a single cheap
reduction. Exactness comes from a proven error bound: every entry of the float32 block lies within
`margin` of the true value, so entries that could fall on either side of a decision are recomputed
in float64 from the original coordinates. Results therefore equal a float64 brute force, not just
float32 precision. TF32/bf16 matrix products are switched off around the float32 stage, since they
would void the bound. Points are centred on a coordinate-wise median (a few huge points cannot pull it)
and squared norms are formed in float64; points too far for float32 entries (a normalizing flow's tail
draws at 1e25) always take the float64 path, so their radii stay finite and the others stay exact.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from aebench.errors import DataError

DEFAULT_BLOCK_BYTES = 64 * 2**20  # CPU: few enough blocks that per-operation overhead stays small
CUDA_BLOCK_BYTES = 512 * 2**20
_U32 = 2.0 ** -24  # unit roundoff of float32
_CANDIDATE_SLACK = 4  # extra neighbours kept per row so that the k-th is almost always settled at once
_FLOAT32_SAFE = 1e30  # squared norms (about the centre) above this go to the float64 path: their float32 entries would overflow
_CENTRE_ROWS = 2048  # the centre is the coordinate-wise median of at most this many evenly spaced rows
_TILES_PER_SIDE = 8  # kth_neighbour_distance: tiles per side of the n x n triangle once n is large
_MIN_TILE = 256  # ... but no tile smaller than this (per-tile overhead)  # |values| below this stay finite through the float32 stage


def tolerance(dim: int) -> float:
    """Relative error bound of a float32 block entry, in units of |q|^2 + |r|^2 (+ the folded terms):
    a (dim + 2)-term dot product in float32 errs by at most (dim + 2) u times the sum of the absolute
    products; rounding the inputs and the centring adds a few u. Generous by a constant."""
    return (2 * dim + 64) * _U32


def block_bytes_for(device: torch.device | str, block_bytes: int | None = None) -> int:
    """The block size used on `device` when the caller gives none."""
    if block_bytes is not None:
        if block_bytes < 1:
            raise DataError(f"block_bytes must be positive, got {block_bytes}; pass a size in bytes or None.")
        return int(block_bytes)
    return CUDA_BLOCK_BYTES if torch.device(device).type == "cuda" else DEFAULT_BLOCK_BYTES


@contextmanager
def full_precision_matmul() -> Iterator[None]:
    """float32 products in true float32 (no TF32 / bf16 shortcuts) for the error bound to hold, also inside a
    run's `--precision tf32` mode."""
    from aebench.infra.device import ieee_matmul

    with ieee_matmul():
        yield


# ----------------------------------------------------------------------------------------------
# preparation

def _check_points(x: torch.Tensor, who: str) -> torch.Tensor:
    """Validate [n, d] float points (a float64 sum finds any NaN or inf in one pass instead of isfinite's
    several); returns their float64 centre (`_robust_centre`)."""
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or not x.is_floating_point():
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise DataError(f"k-NN {who} must be a float tensor [n, d], got {got}; pass one point per row.")
    if not torch.isfinite(x.sum(0, dtype=torch.float64)).all():
        raise DataError(f"k-NN {who} contain NaN or inf; remove or fix those points first.")
    return _robust_centre(x)


def _robust_centre(x: torch.Tensor) -> torch.Tensor:
    """The coordinate-wise median of up to `_CENTRE_ROWS` evenly spaced rows (float64 [d]). Any common
    shift leaves every distance as it is; the shift only has to keep the centred coordinates small. The
    mean does not: one flow sample at 1e25 among 4096 moved every centred point to ~1e21, whose float32
    squares overflow (inf radii on a GPU run). A median ignores a minority of such points."""
    n, d = x.shape
    if n == 0:
        return torch.zeros(d, dtype=torch.float64, device=x.device)
    return x[::max(1, n // _CENTRE_ROWS)].to(torch.float64).median(0).values


def _check_pair(query: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Validate a query and a reference set; returns the reference set's centre."""
    _check_points(query, "query points")
    centre = _check_points(ref, "reference points")
    if query.shape[1] != ref.shape[1]:
        raise DataError(f"k-NN inputs must share their dimension, got [n, {query.shape[1]}] and [m, {ref.shape[1]}]; "
                        f"compute both with one model or extractor.")
    if ref.shape[0] == 0:
        raise DataError("k-NN reference set is empty; pass at least one reference point.")
    return centre.to(query.device)


@dataclass
class _Centred:
    """A point set for the float32 stage: coordinates minus a common centre, in float32, with the
    squared norms of exactly those float32 coordinates. The coordinates live in the first d columns
    of a [n, d + 2] buffer so the set can serve as the reference side of the folded product in place."""

    exact: torch.Tensor  # the caller's points, for float64 refinement
    buffer: torch.Tensor  # [n, d + 2] float32
    sq: torch.Tensor  # [n] float32

    @property
    def f32(self) -> torch.Tensor:
        return self.buffer[:, :-2]

    @property
    def sq_max(self) -> float:
        return float(self.sq.max()) if self.sq.numel() else 0.0


def _centred(x: torch.Tensor, centre: torch.Tensor, block_bytes: int) -> _Centred:
    """float32 input is centred on the float32-rounded centre in float32: a shift common to all points
    leaves every distance as it is, and the subtraction errs by at most u |x - c|. Wider input is
    centred in float64 first, so its own rounding to float32 is relative to |x - c| too."""
    n, d = x.shape
    rows = max(1, block_bytes // (8 * max(1, d)))
    buffer = torch.empty(n, d + 2, dtype=torch.float32, device=x.device)
    sq = torch.empty(n, dtype=torch.float32, device=x.device)
    c32 = centre.to(torch.float32)
    for start in range(0, n, rows):
        part, block = x[start:start + rows], buffer[start:start + rows, :d]
        if part.dtype == torch.float32:
            torch.sub(part, c32, out=block)
        else:
            block.copy_(part.to(torch.float64) - centre)
        # squares in float64 (a float32 square overflows beyond 1.8e19), rounded once to float32: inf when
        # beyond float32, which sends the point to the float64 path (`_far_split`)
        sq[start:start + rows] = block.to(torch.float64).square_().sum(1)
    return _Centred(x, buffer, sq)


def _ref_matrix(ref: _Centred, beta: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """[m, d + 2] float32 rows scale_j * [r_j, 1, beta_j] (the reference side of the folded product).
    Without `scale` this is `ref`'s own buffer, its last two columns overwritten."""
    out = ref.buffer if scale is None else torch.empty_like(ref.buffer)
    if scale is not None:
        out[:, :-2] = ref.f32
    out[:, -2] = 1.0
    out[:, -1] = beta
    if scale is not None:
        out.mul_(scale.to(torch.float32)[:, None])
    return out


def _query_matrix(q32: torch.Tensor, alpha: torch.Tensor, one: float = 1.0) -> torch.Tensor:
    """[b, d + 2] float32 rows [-2 q_i, alpha_i, one]: times `_ref_matrix` gives alpha_i + beta_j - 2 q.r."""
    b, d = q32.shape
    out = torch.empty(b, d + 2, dtype=torch.float32, device=q32.device)
    torch.mul(q32, -2.0, out=out[:, :d])
    out[:, d] = alpha
    out[:, d + 1] = one
    return out


def _row_blocks(n: int, m: int, block_bytes: int) -> Iterator[tuple[int, int]]:
    step = max(1, block_bytes // (4 * max(1, m)))
    for start in range(0, n, step):
        yield start, min(n, start + step)


def _exact_d2(a: torch.Tensor, b: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor,
              block_bytes: int) -> torch.Tensor:
    """float64 squared distances ||a[rows] - b[cols]||^2 for the listed pairs only, in chunks (the
    difference of two float32 values is exact in float64)."""
    out = torch.empty(rows.shape[0], dtype=torch.float64, device=a.device)
    step = max(1, block_bytes // (16 * max(1, a.shape[1])))
    for start in range(0, rows.shape[0], step):
        diff = a[rows[start:start + step]].to(torch.float64).sub_(b[cols[start:start + step]])
        out[start:start + step] = torch.einsum("ij,ij->i", diff, diff)
    return out


def _ragged_kth(rows: torch.Tensor, values: torch.Tensor, n_rows: int, kth: int) -> torch.Tensor:
    """The `kth` smallest (0-based) value of each row, given (row, value) pairs with >= kth + 1 per row."""
    order = torch.argsort(rows, stable=True)
    rows, values = rows[order], values[order]
    counts = torch.bincount(rows, minlength=n_rows)
    offsets = torch.cumsum(counts, 0) - counts
    pos = torch.arange(rows.shape[0], device=rows.device) - offsets[rows]
    padded = torch.full((n_rows, int(counts.max())), math.inf, dtype=values.dtype, device=values.device)
    padded[rows, pos] = values
    return torch.kthvalue(padded, kth + 1, dim=1).values


# ----------------------------------------------------------------------------------------------
# far points: a few points far from the rest would widen every entry's float32 margin

# The float32 error bound of an entry grows with the squared norms of its two points, and the row tests
# use the largest norm in the set: 20 of 2048 samples at 300 times the scale made every entry unsure,
# and latent coverage at N=256 took 76 s instead of 1 s, all in float64 refinement. So points whose
# squared norm (about the centre) exceeds _FAR times the median are split off and handled exactly in
# float64 against everything, which is cheap while they are few; the rest keeps its narrow margins.
_FAR = 100.0
_FAR_SHARE = 0.25  # more far points than this share: not a few outliers, keep the single pass
_NORM_SLACK = 1e-4  # relative slack on norms from float32 squared norms (their error is ~d u)


def _wild(sq: torch.Tensor) -> torch.Tensor:
    """Points whose float32 entries would overflow (squared norm about the centre beyond `_FLOAT32_SAFE`,
    or inf): they must take the float64 path however many they are."""
    return ~(sq <= _FLOAT32_SAFE)


def _far_split(sq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(near, far) indices of a centred set by squared norm, or None when nothing is far (or too much is,
    unless some points are too far for float32 at all: those are always far; near may then be empty)."""
    n = sq.shape[0]
    wild = _wild(sq)
    n_wild = int(wild.sum())
    if n_wild == n:
        return torch.zeros(0, dtype=torch.int64, device=sq.device), torch.arange(n, device=sq.device)
    if n < 8 and not n_wild:
        return None
    median = float(sq[~wild].median())
    far = wild | (sq > _FAR * median if median > 0 else sq > 0)
    count = int(far.sum())
    if count > _FAR_SHARE * n:
        far = wild
        count = n_wild
    if count == 0:
        return None
    return torch.nonzero(~far).flatten(), torch.nonzero(far).flatten()


def _distance_floor(sq_rows: torch.Tensor, sq_far: torch.Tensor) -> torch.Tensor:
    """A lower bound of each row point's distance to every far point: |f| - |q| (triangle inequality about
    the common centre), with slack for the float32 norms. float64 [rows]."""
    nearest_far = float(sq_far.min().double().sqrt()) * (1 - _NORM_SLACK)
    return (nearest_far - sq_rows.double().sqrt() * (1 + _NORM_SLACK)).clamp_min(0)


def _exact_block_rows(a: torch.Tensor, b: torch.Tensor, rows: torch.Tensor,
                      block_bytes: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(row indices, float64 [r, m] squared distances to every point of b) for `rows` of a, in chunks."""
    m = b.shape[0]
    step = max(1, block_bytes // (32 * max(1, m)))  # the [r, m] float64 result and its pair indices
    cols = torch.arange(m, device=a.device)
    for start in range(0, rows.shape[0], step):
        sel = rows[start:start + step]
        d2 = _exact_d2(a, b, sel.repeat_interleave(m), cols.repeat(sel.shape[0]), block_bytes)
        yield sel, d2.reshape(sel.shape[0], m)


# ----------------------------------------------------------------------------------------------
# k-th neighbour distance of a set to itself

def kth_neighbour_distance(x: torch.Tensor, k: int, *, block_bytes: int | None = None) -> torch.Tensor:
    """Distance from each point to its k-th nearest neighbour in `x`, not counting itself
    (the prdc convention: the (k+1)-th smallest distance of the row, self included). float64 [n].

    Symmetric: each pair's float32 distance is formed once (in square tiles of the upper triangle) and
    offered to both rows, halving the matrix products of a row-by-row scan."""
    return kth_neighbour_distances(x, (k,), block_bytes=block_bytes)[k]


def kth_neighbour_distances(x: torch.Tensor, ks: Sequence[int], *,
                            block_bytes: int | None = None) -> dict[int, torch.Tensor]:
    """`kth_neighbour_distance` for several k from one pass over the pairs: {k: float64 [n]}."""
    centre = _check_points(x, "points")
    n = x.shape[0]
    ks = sorted(set(ks))
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < n:
            raise DataError(f"k must be an integer in [1, n-1] = [1, {n - 1}], got {k!r}; lower k or pass more points.")
    if not ks:
        raise DataError("kth_neighbour_distances needs at least one k; pass e.g. ks=(3, 5).")
    bb = block_bytes_for(x.device, block_bytes)
    pts = _centred(x, centre, bb)
    split = _far_split(pts.sq)
    if split is not None and ks[-1] >= split[0].shape[0] and bool(_wild(pts.sq).any()):
        split = (split[0][:0], torch.arange(n, device=x.device))  # too few tame points: every row in float64
    if split is None or (ks[-1] >= split[0].shape[0] and split[0].numel()):
        return _finite_radii(_kth_distances(x, pts, ks, bb))
    # the near points among themselves; a near row's k-th distance stands unless some far point could be
    # closer (its distance floor is not above it); those rows and the far rows are computed exactly
    near, far = split
    if not near.numel():
        every = {k: torch.empty(n, dtype=torch.float64, device=x.device) for k in ks}
        for sel, d2 in _exact_block_rows(x, x, far, bb):
            for k in ks:
                every[k][sel] = torch.kthvalue(d2, k + 1, dim=1).values.sqrt()
        return _finite_radii(every)
    x_near = x[near]
    inner = _kth_distances(x_near, _centred(x_near, _check_points(x_near, "points"), bb), ks, bb)
    floor = _distance_floor(pts.sq[near], pts.sq[far])
    redo = torch.zeros(n, dtype=torch.bool, device=x.device)
    redo[far] = True
    out: dict[int, torch.Tensor] = {}
    for k in ks:
        out[k] = torch.empty(n, dtype=torch.float64, device=x.device)
        out[k][near] = inner[k]
        redo[near[floor <= inner[k]]] = True
    for sel, d2 in _exact_block_rows(x, x, torch.nonzero(redo).flatten(), bb):
        for k in ks:  # the (k+1)-th smallest of the row, itself (0) included
            out[k][sel] = torch.kthvalue(d2, k + 1, dim=1).values.sqrt()
    return _finite_radii(out)


def _finite_radii(out: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
    """The radii, or a DataError when some overflow even float64 (coordinates beyond ~1e154)."""
    for k, radii in out.items():
        if not torch.isfinite(radii).all():
            bad = int((~torch.isfinite(radii)).sum())
            raise DataError(f"k-NN: the k={k} neighbour distance of {bad} of {radii.shape[0]} points overflows "
                            f"float64 (coordinates near 1e154 or beyond); such points are no latents: drop them.")
    return out


def _kth_distances(x: torch.Tensor, pts: _Centred, ks: list[int], bb: int) -> dict[int, torch.Tensor]:
    n = x.shape[0]
    extra = min(n, ks[-1] + 1 + _CANDIDATE_SLACK)
    # square tiles within the block size, and at least ~8 per side once n is large, so that the upper
    # triangle (what is computed) is close to half of the n x n products rather than 2/3 or all of them
    side = max(extra, min(math.isqrt(max(1, bb // 4)), max(_MIN_TILE, math.ceil(n / _TILES_PER_SIDE))))
    tiles = [(s, min(n, s + side)) for s in range(0, n, side)]
    best_val = torch.full((n, extra), math.inf, dtype=torch.float32, device=x.device)
    best_idx = torch.zeros((n, extra), dtype=torch.int64, device=x.device)
    ref_mat = _ref_matrix(pts, pts.sq)

    with full_precision_matmul():
        def tile(a: tuple[int, int], b: tuple[int, int]) -> torch.Tensor:
            q = _query_matrix(pts.f32[a[0]:a[1]], pts.sq[a[0]:a[1]])
            return q @ ref_mat[b[0]:b[1]].T  # squared distances, each within the margin

        order = [(i, i) for i in range(len(tiles))] + [(i, j) for i in range(len(tiles)) for j in range(i + 1, len(tiles))]
        for i, j in order:
            (a0, a1), (b0, b1) = tiles[i], tiles[j]
            d2 = tile(tiles[i], tiles[j])
            # rows a: the tile's smallest entries per row, merged with what the row already has
            v, c = torch.topk(d2, min(extra, b1 - b0), dim=1, largest=False)
            _merge(best_val, best_idx, slice(a0, a1), v, c + b0)
            if i != j:  # rows b: only entries below the row's current extra-th value can matter
                ii, jj = torch.nonzero(d2 < best_val[b0:b1, -1][None, :], as_tuple=True)
                if ii.numel():
                    _merge_ragged(best_val, best_idx, jj + b0, d2[ii, jj], ii + a0, b1 - b0, b0)
            del d2

    # Each candidate's float32 value v lies within `margin` of its true one, so the k-th smallest true
    # value T lies in [v_k - margin, v_k + margin]: candidates with v + margin below that are surely
    # smaller, those with v - margin above it surely larger, and only the band between is computed in
    # float64 (usually the k-th candidate alone; once for all k). T is final when every non-candidate
    # is surely larger.
    margin = (2 * tolerance(x.shape[1]) * (pts.sq.double() + pts.sq_max))[:, None]
    vals = best_val.double()
    bands = {k: (vals - vals[:, k:k + 1]).abs() <= 2 * margin for k in ks}
    union = bands[ks[0]].clone()
    for k in ks[1:]:
        union |= bands[k]
    r, c = torch.nonzero(union, as_tuple=True)
    exact = torch.full_like(vals, math.nan)
    exact[r, c] = _exact_d2(x, x, r, best_idx[r, c], bb)
    out: dict[int, torch.Tensor] = {}
    for k in ks:
        pivot = vals[:, k:k + 1]
        ranked = torch.full_like(vals, math.inf)  # outside the band: surely above, or surely below
        ranked.masked_fill_(vals < pivot, -math.inf)
        ranked = torch.where(bands[k], exact, ranked)
        kth = torch.kthvalue(ranked, k + 1, dim=1).values
        if extra < n:
            unsure = torch.nonzero(vals[:, -1] - margin[:, 0] <= kth).flatten()
            if unsure.numel():
                kth[unsure] = _kth_full_rows(pts, unsure, kth[unsure], k, bb)
        out[k] = kth.sqrt()
    return out


def _merge(best_val: torch.Tensor, best_idx: torch.Tensor, rows: torch.Tensor | slice, vals: torch.Tensor,
           idx: torch.Tensor) -> None:
    """Keep, per row, the `extra` smallest of the row's current best and the new (rectangular) entries."""
    extra = best_val.shape[1]
    v = torch.cat([best_val[rows], vals], 1)
    c = torch.cat([best_idx[rows], idx], 1)
    top_v, top_pos = torch.topk(v, extra, dim=1, largest=False)
    best_val[rows] = top_v
    best_idx[rows] = torch.gather(c, 1, top_pos)


def _merge_ragged(best_val: torch.Tensor, best_idx: torch.Tensor, rows: torch.Tensor, vals: torch.Tensor,
                  idx: torch.Tensor, span: int, first: int) -> None:
    """`_merge` for a ragged list of (row, value, index) entries, rows in [first, first + span)."""
    local = rows - first
    order = torch.argsort(local, stable=True)
    local, vals, idx = local[order], vals[order], idx[order]
    counts = torch.bincount(local, minlength=span)
    touched = torch.nonzero(counts).flatten()
    offsets = torch.cumsum(counts, 0) - counts
    pos = torch.arange(local.shape[0], device=local.device) - offsets[local]
    slot = torch.full((span,), -1, dtype=torch.int64, device=local.device)
    slot[touched] = torch.arange(touched.shape[0], device=local.device)
    width = int(counts.max())
    pad_v = torch.full((touched.shape[0], width), math.inf, dtype=vals.dtype, device=vals.device)
    pad_i = torch.zeros((touched.shape[0], width), dtype=torch.int64, device=vals.device)
    pad_v[slot[local], pos] = vals
    pad_i[slot[local], pos] = idx
    _merge(best_val, best_idx, touched + first, pad_v, pad_i)


def _kth_full_rows(pts: _Centred, rows: torch.Tensor, upper: torch.Tensor, k: int, bb: int) -> torch.Tensor:
    """Exact (k+1)-th smallest squared distance for a few rows, given an upper bound of it per row:
    every point whose float32 distance minus the margin is within the bound is refined in float64."""
    tol = tolerance(pts.f32.shape[1])
    ref_mat = _ref_matrix(pts, pts.sq)
    out = torch.empty(rows.shape[0], dtype=torch.float64, device=rows.device)
    for s, e in _row_blocks(rows.shape[0], pts.f32.shape[0], bb):
        sel = rows[s:e]
        with full_precision_matmul():
            d2 = _query_matrix(pts.f32[sel], pts.sq[sel]) @ ref_mat.T
        margin = 2 * tol * (pts.sq[sel].double() + pts.sq_max)
        r, c = torch.nonzero(d2.double() - margin[:, None] <= upper[s:e, None], as_tuple=True)
        exact = _exact_d2(pts.exact, pts.exact, sel[r], c, bb)
        out[s:e] = _ragged_kth(r, exact, e - s, k)
    return out


# ----------------------------------------------------------------------------------------------
# query set against reference set

def nearest_distance(query: torch.Tensor, ref: torch.Tensor, *,
                     block_bytes: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance [nq] (float64) and index [nq] of each query point's nearest point in `ref`
    (the smallest index among exact ties, like argmin)."""
    centre = _check_pair(query, ref)
    ref = ref.to(query.device)
    bb = block_bytes_for(query.device, block_bytes)
    pts, qs = _centred(ref, centre, bb), _centred(query, centre, bb)
    split = _far_split(pts.sq)
    if split is None:
        best, index = _nearest_sq(query, ref, pts, qs, bb)
        return best.sqrt(), index
    # the near reference points first; far ones only for rows they could be nearer to (exactly)
    near, far = split
    ref_near = ref[near]
    centre_near = _check_points(ref_near, "reference points")  # far points pull the centre: centre again
    best, index = _nearest_sq(query, ref_near, _centred(ref_near, centre_near, bb), _centred(query, centre_near, bb), bb)
    index = near[index]
    floor = _distance_floor(qs.sq, pts.sq[far])
    rows = torch.nonzero(floor.square() <= best).flatten()
    for sel, d2 in _exact_block_rows(query, ref[far], rows, bb):
        value, position = d2.min(1)  # the first of exact ties: the smallest far index
        candidate = far[position]
        better = (value < best[sel]) | ((value == best[sel]) & (candidate < index[sel]))
        best[sel[better]], index[sel[better]] = value[better], candidate[better]
    return best.sqrt(), index


def _nearest_sq(query: torch.Tensor, ref: torch.Tensor, pts: _Centred, qs: _Centred,
                bb: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`nearest_distance` squared, for centred sets (the float32 and float64 stages)."""
    ref_mat = _ref_matrix(pts, pts.sq)
    tol, m = tolerance(ref.shape[1]), ref.shape[0]
    dist = torch.empty(query.shape[0], dtype=torch.float64, device=query.device)
    index = torch.empty(query.shape[0], dtype=torch.int64, device=query.device)
    for s, e in _row_blocks(query.shape[0], m, bb):
        with full_precision_matmul():
            d2 = _query_matrix(qs.f32[s:e], qs.sq[s:e]) @ ref_mat.T
        v, c = torch.topk(d2, min(2, m), dim=1, largest=False)
        rows = torch.arange(s, e, device=query.device)
        best = _exact_d2(query, ref, rows, c[:, 0], bb)
        idx = c[:, 0].clone()
        margin = 2 * tol * (qs.sq[s:e].double() + pts.sq_max)
        if m > 1:  # a second candidate within the margin: refine every such entry of the row
            unsure = torch.nonzero(v[:, 1].double() - margin <= best).flatten()
            if unsure.numel():
                r, cols = torch.nonzero(d2[unsure].double() - margin[unsure, None] <= best[unsure, None], as_tuple=True)
                exact = _exact_d2(query, ref, unsure[r] + s, cols, bb)
                low = torch.full((unsure.shape[0],), math.inf, dtype=torch.float64, device=query.device)
                low.scatter_reduce_(0, r, exact, reduce="amin")
                hit = exact == low[r]
                first = torch.full((unsure.shape[0],), m, dtype=torch.int64, device=query.device)
                first.scatter_reduce_(0, r[hit], cols[hit], reduce="amin")
                best[unsure], idx[unsure] = low, first
        dist[s:e], index[s:e] = best, idx
    return dist, index


def min_ratio(query: torch.Tensor, ref: torch.Tensor, ref_radii: torch.Tensor, *,
              block_bytes: int | None = None) -> torch.Tensor:
    """min_j ||q - r_j|| / radius_j for each query point (float64 [nq]): the k-NN-ball score.

    The float32 stage computes a proven lower bound of every squared ratio in one product (the margin is
    folded into the reference side), so a row whose second-smallest bound exceeds the exact ratio of
    its best candidate is settled without looking at any other entry."""
    centre = _check_pair(query, ref)
    ref = ref.to(query.device)
    radii = _radii(ref_radii, ref.shape[0], query.device).clamp_min(1e-300)
    bb = block_bytes_for(query.device, block_bytes)
    pts, qs = _centred(ref, centre, bb), _centred(query, centre, bb)
    tol = tolerance(ref.shape[1])
    w = radii.pow(-2)
    q_max = qs.sq_max
    normal = torch.isfinite(w) & (w * (q_max + pts.sq.double() + 1.0) < _FLOAT32_SAFE)
    cols = torch.nonzero(normal).flatten()
    extreme = torch.nonzero(~normal).flatten()
    out = torch.full((query.shape[0],), math.inf, dtype=torch.float64, device=query.device)

    if cols.numel():
        sub = pts if extreme.numel() == 0 else _Centred(ref, pts.buffer[cols], pts.sq[cols])
        ws = w[cols]
        # rows w_j * [r_j, 1 - t, (1 - t) |r_j|^2]: entries are w_j (d2 - t (|q|^2 + |r|^2)) <= true ratio^2
        lower = _ref_matrix(sub, ((1 - tol) * sub.sq.double()).to(torch.float32), ws)
        lower[:, -2] = (ws * (1 - tol)).to(torch.float32)
        n_cols = cols.shape[0]
        for s, e in _row_blocks(query.shape[0], n_cols, bb):
            with full_precision_matmul():
                low = _query_matrix(qs.f32[s:e], qs.sq[s:e]) @ lower.T
            v, c = torch.topk(low, min(2, n_cols), dim=1, largest=False)
            rows = torch.arange(s, e, device=query.device)
            best = _exact_d2(query, ref, rows, cols[c[:, 0]], bb) * ws[c[:, 0]]
            if n_cols > 1:
                unsure = torch.nonzero(v[:, 1].double() <= best).flatten()
                if unsure.numel():
                    r, cc = torch.nonzero(low[unsure].double() <= best[unsure, None], as_tuple=True)
                    exact = _exact_d2(query, ref, unsure[r] + s, cols[cc], bb) * ws[cc]
                    settled = torch.full((unsure.shape[0],), math.inf, dtype=torch.float64, device=query.device)
                    settled.scatter_reduce_(0, r, exact, reduce="amin")
                    best[unsure] = settled
            out[s:e] = best.sqrt()
    if extreme.numel():  # radii too small for float32: exact for every query, in chunks
        step = max(1, bb // (8 * max(1, extreme.shape[0])))
        for s in range(0, query.shape[0], step):
            e = min(query.shape[0], s + step)
            r = torch.arange(s, e, device=query.device).repeat_interleave(extreme.shape[0])
            c = extreme.repeat(e - s)
            ratio = (_exact_d2(query, ref, r, c, bb).sqrt() / radii[c]).reshape(e - s, -1)
            out[s:e] = torch.minimum(out[s:e], ratio.min(1).values)
    return out


def _f32_up(x: torch.Tensor) -> torch.Tensor:
    """float64 -> the smallest float32 >= x (a threshold rounded outwards)."""
    y = x.to(torch.float32)
    return torch.where(y.double() < x, torch.nextafter(y, torch.full_like(y, math.inf)), y)


def _f32_down(x: torch.Tensor) -> torch.Tensor:
    """float64 -> the largest float32 <= x."""
    y = x.to(torch.float32)
    return torch.where(y.double() > x, torch.nextafter(y, torch.full_like(y, -math.inf)), y)


def _radii(radii: torch.Tensor, m: int, device: torch.device) -> torch.Tensor:
    radii = torch.as_tensor(radii)
    if radii.shape != (m,) or not torch.isfinite(radii).all() or (radii < 0).any():
        raise DataError(f"k-NN radii must be {m} finite non-negative values (one per reference point), got "
                        f"shape {tuple(radii.shape)}; compute them with kth_neighbour_distance on the reference set.")
    return radii.to(device, torch.float64)


def _radii_sq(radii: torch.Tensor, m: int, device: torch.device) -> torch.Tensor:
    return _radii(radii, m, device).pow(2)


# ----------------------------------------------------------------------------------------------
# everything PRDC needs from the real x fake distances, in one pass

@dataclass
class CrossCounts:
    """Per fake point: how many real k-NN balls contain it; per real point: whether its ball contains a
    fake point (coverage) and whether it lies in some fake point's ball (recall)."""

    inside_real_balls: torch.Tensor  # [n_fake] int64
    ball_covered: torch.Tensor  # [n_real] bool
    in_fake_ball: torch.Tensor  # [n_real] bool


def cross_counts(real: torch.Tensor, fake: torch.Tensor, real_radii: torch.Tensor, fake_radii: torch.Tensor | None, *,
                 block_bytes: int | None = None) -> CrossCounts:
    """The real x fake half of PRDC from one float32 product per block (strict inequalities, as prdc).
    With `fake_radii` None, recall is skipped (`in_fake_ball` all False)."""
    return cross_counts_multi(real, fake, [real_radii], fake_radii, block_bytes=block_bytes)[0]


def cross_counts_multi(real: torch.Tensor, fake: torch.Tensor, real_radii: Sequence[torch.Tensor],
                       fake_radii: torch.Tensor | None, *, block_bytes: int | None = None) -> list[CrossCounts]:
    """`cross_counts` for several sets of real radii (one per k) from a single pass: each block of
    float32 squared distances is formed once and tested against every radius set, so precision/recall
    at k=3 and density/coverage at k=5 cost one real x fake product, not two. Recall (fake radii) is
    the same for every set."""
    centre = _check_pair(fake, real)
    if not real_radii:
        raise DataError("cross_counts_multi needs at least one set of real radii; pass kth_neighbour_distance(real, k).")
    real = real.to(fake.device)
    device = fake.device
    rr2s = [_radii_sq(r, real.shape[0], device) for r in real_radii]
    fr2 = None if fake_radii is None else _radii_sq(fake_radii, fake.shape[0], device)
    bb = block_bytes_for(device, block_bytes)
    rs, fs = _centred(real, centre, bb), _centred(fake, centre, bb)
    wild_real = _wild(rs.sq)
    if bool(wild_real.any()):
        return _cross_counts_wild_real(real, fake, rr2s, fr2, wild_real, bb)
    split = _far_split(fs.sq)
    if split is None:
        return _cross_counts(real, fake, rr2s, fr2, rs, fs, bb)
    if not split[0].numel():
        return _cross_counts_exact(real, fake, rr2s, fr2, torch.arange(fake.shape[0], device=device), bb)
    # the near fake points in one pass; the far ones exactly against every real point
    near, far = split
    fake_near = fake[near]
    parts = _cross_counts(real, fake_near, rr2s, None if fr2 is None else fr2[near], rs,
                          _Centred(fake_near, fs.buffer[near], fs.sq[near]), bb)
    out = []
    for part in parts:
        inside = torch.empty(fake.shape[0], dtype=torch.int64, device=device)
        inside[near] = part.inside_real_balls
        out.append(CrossCounts(inside, part.ball_covered.clone(), part.in_fake_ball.clone()))
    for sel, d2 in _exact_block_rows(fake, real, far, bb):  # [far rows, real points]
        for counts, rr2 in zip(out, rr2s):
            within = d2 < rr2[None, :]
            counts.inside_real_balls[sel] = within.sum(1)
            counts.ball_covered |= within.any(0)
        if fr2 is not None:
            recalled = (d2 < fr2[sel][:, None]).any(0)
            for counts in out:
                counts.in_fake_ball |= recalled
    return out


def _cross_counts_exact(real: torch.Tensor, fake: torch.Tensor, rr2s: list[torch.Tensor], fr2: torch.Tensor | None,
                        rows: torch.Tensor, bb: int) -> list[CrossCounts]:
    """`cross_counts_multi` in float64 for the fake points `rows` alone (the others count nothing)."""
    device = fake.device
    out = [CrossCounts(torch.zeros(fake.shape[0], dtype=torch.int64, device=device),
                       torch.zeros(real.shape[0], dtype=torch.bool, device=device),
                       torch.zeros(real.shape[0], dtype=torch.bool, device=device)) for _ in rr2s]
    for sel, d2 in _exact_block_rows(fake, real, rows, bb):  # [fake rows, real points]
        for counts, rr2 in zip(out, rr2s):
            within = d2 < rr2[None, :]
            counts.inside_real_balls[sel] = within.sum(1)
            counts.ball_covered |= within.any(0)
        if fr2 is not None:
            recalled = (d2 < fr2[sel][:, None]).any(0)
            for counts in out:
                counts.in_fake_ball |= recalled
    return out


def _cross_counts_wild_real(real: torch.Tensor, fake: torch.Tensor, rr2s: list[torch.Tensor],
                            fr2: torch.Tensor | None, wild: torch.Tensor, bb: int) -> list[CrossCounts]:
    """Real points too far for float32 entries: the tame ones as usual, the wild ones in float64."""
    device = fake.device
    tame_idx, wild_idx = torch.nonzero(~wild).flatten(), torch.nonzero(wild).flatten()
    if tame_idx.numel():
        # radii are passed as distances: sqrt of the squared ones is exact enough for the tame part (the
        # squares of float64 roots round back to within an ulp, as the caller's radii did)
        parts = cross_counts_multi(real[tame_idx], fake, [r2[tame_idx].sqrt() for r2 in rr2s],
                                   None if fr2 is None else fr2.sqrt(), block_bytes=bb)
    else:
        parts = [CrossCounts(torch.zeros(fake.shape[0], dtype=torch.int64, device=device),
                             torch.zeros(0, dtype=torch.bool, device=device),
                             torch.zeros(0, dtype=torch.bool, device=device)) for _ in rr2s]
    out = []
    for part, rr2 in zip(parts, rr2s):
        covered = torch.zeros(real.shape[0], dtype=torch.bool, device=device)
        recalled = torch.zeros(real.shape[0], dtype=torch.bool, device=device)
        covered[tame_idx], recalled[tame_idx] = part.ball_covered, part.in_fake_ball
        inside = part.inside_real_balls.clone()
        for sel, d2 in _exact_block_rows(real, fake, wild_idx, bb):  # [wild real rows, fake points]
            within = d2 < rr2[sel][:, None]
            inside += within.sum(0)
            covered[sel] = within.any(1)
            if fr2 is not None:
                recalled[sel] = (d2 < fr2[None, :]).any(1)
        out.append(CrossCounts(inside, covered, recalled))
    return out


def _cross_counts(real: torch.Tensor, fake: torch.Tensor, rr2s: list[torch.Tensor], fr2: torch.Tensor | None,
                  rs: _Centred, fs: _Centred, bb: int) -> list[CrossCounts]:
    """`cross_counts_multi` for centred sets (squared radii), one float32 product per block."""
    device = fake.device
    tol, m = tolerance(real.shape[1]), fake.shape[0]
    fake_mat = _ref_matrix(fs, fs.sq)
    fr2_32 = None if fr2 is None else fr2.to(torch.float32)
    fr2_slack = 0.0 if fr2 is None else 8 * _U32 * float(fr2.max())
    insides = [torch.zeros(m, dtype=torch.int64, device=device) for _ in rr2s]
    covereds = [torch.zeros(real.shape[0], dtype=torch.bool, device=device) for _ in rr2s]
    recalled = torch.zeros(real.shape[0], dtype=torch.bool, device=device)
    for s, e in _row_blocks(real.shape[0], m, bb):
        sq = rs.sq[s:e].double()
        with full_precision_matmul():
            d2 = _query_matrix(rs.f32[s:e], rs.sq[s:e]) @ fake_mat.T  # squared distances, each within `margin`
        margin = tol * (2 * sq + 2 * fs.sq_max)
        # precision, density, coverage: fake j inside real ball i, for each radius set (thresholds rounded
        # outwards to float32, so the float32 comparisons are exactly the float64 ones)
        for rr2, inside, covered in zip(rr2s, insides, covereds):
            row_r2 = rr2[s:e]
            hi = _f32_up(row_r2 + margin)
            r, c = torch.nonzero(d2 <= hi[:, None], as_tuple=True)  # maybe inside: few entries
            if not r.numel():
                continue
            sure = d2[r, c] < _f32_down(row_r2 - margin)[r]
            unsure = torch.nonzero(~sure).flatten()
            if unsure.numel():
                sure[unsure] = _exact_d2(real, fake, r[unsure] + s, c[unsure], bb) < rr2[r[unsure] + s]
            r, c = r[sure], c[sure]
            inside.index_add_(0, c, torch.ones_like(c))
            covered[r + s] = True
        # recall: real i inside fake ball j, i.e. min_j (d2 - fr2_j) < 0
        if fr2 is not None:
            g = d2.sub_(fr2_32[None, :])  # d2 - fr2_j (d2 is not needed any more)
            gmin = g.amin(1).double()
            band = margin + fr2_slack
            recalled[s:e] = gmin < -band
            unsure = torch.nonzero((gmin >= -band) & (gmin <= band)).flatten()
            if unsure.numel():
                r, c = torch.nonzero(g[unsure] <= _f32_up(band[unsure])[:, None], as_tuple=True)
                hit = _exact_d2(real, fake, unsure[r] + s, c, bb) < fr2[c]
                recalled[s + unsure[r[hit]]] = True
        del d2
    return [CrossCounts(inside, covered, recalled) for inside, covered in zip(insides, covereds)]
