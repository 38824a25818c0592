"""aebench.maths.knn and aebench.maths.prdc against float64 brute force and the prdc package: exact answers
(not float32-close), on random data, integer data full of ties and duplicates, real ORL faces, and
with blocks small enough to force many chunks and tiles."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch

from aebench.errors import DataError
from aebench.maths import knn
from aebench.maths.prdc import compute_prdc

BLOCKS = [None, 3000, 40_000]  # default (one block), and sizes that force many row blocks / tiles


def brute_d2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared distances in float64, by definition (no dot-product shortcut)."""
    return (a.double()[:, None, :] - b.double()[None, :, :]).pow(2).sum(-1)


def brute_kth(x: torch.Tensor, k: int) -> torch.Tensor:
    return torch.sort(brute_d2(x, x), dim=1).values[:, k].sqrt()


def spread(n: int, d: int, seed: int, offset: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=gen) * torch.logspace(0, -1.5, d) * scale + offset


def ties(n: int, d: int, seed: int) -> torch.Tensor:
    """Integer points in a tiny cube: many exact duplicates and exactly equal distances."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 3, (n, d), generator=gen).float()


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    """All 400 ORL faces at 16x16 (256-d grey pixels, integers 0..255): real data with near-ties."""
    from aebench.data.orl_faces import orl_folder, read_face

    folder = orl_folder()
    paths = sorted(folder.glob("s*/*.pgm"))
    return torch.from_numpy(np.stack([read_face(p, 12, 16).reshape(-1) for p in paths])).float()


def with_outliers(x: torch.Tensor, count: int, scale: float) -> torch.Tensor:
    """`x` with its last `count` points pushed `scale` times further out: far points, split off and
    handled in float64 (knn._far_split), next to near points that keep narrow float32 margins."""
    x = x.clone()
    x[-count:] *= scale
    return x


def outlier_clusters() -> tuple[torch.Tensor, torch.Tensor]:
    """Far points in both sets, close to each other, and two points just inside the "near" norm next to
    them: far points are some near rows' nearest neighbours, and some far rows' too."""
    real, fake = spread(180, 10, 12), spread(140, 10, 13)
    gen = torch.Generator().manual_seed(14)
    direction = torch.ones(10) / 10 ** 0.5
    for x in (real, fake):
        typical = float((x - x.mean(0)).norm(dim=1).median())
        x[-6:] = 16.0 * typical * direction + 0.05 * typical * torch.randn(6, 10, generator=gen)  # far
        x[-8:-6] = 12.0 * typical * direction + 0.05 * typical * torch.randn(2, 10, generator=gen)  # near
    return real, fake


SETS = {
    "spread": lambda: (spread(230, 24, 0), spread(170, 24, 1, offset=0.2, scale=1.3)),
    "outliers": lambda: (with_outliers(spread(230, 24, 8), 3, 300.0), with_outliers(spread(170, 24, 9), 5, 40.0)),
    "outliers_near_the_bulk": lambda: (with_outliers(spread(200, 6, 10), 4, 12.0),
                                       with_outliers(spread(150, 6, 11), 6, 11.0)),
    "outlier_clusters": lambda: outlier_clusters(),
    "far_from_origin": lambda: (spread(150, 8, 2, offset=1e4), spread(120, 8, 3, offset=1e4)),
    "ties": lambda: (ties(200, 5, 4), ties(150, 5, 5)),
    "wide": lambda: (spread(60, 700, 6), spread(50, 700, 7)),
}


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("block_bytes", BLOCKS)
def test_kth_neighbour_distance_equals_brute_force(name, block_bytes):
    x, _ = SETS[name]()
    for k in (1, 3, 5):
        got = knn.kth_neighbour_distance(x, k, block_bytes=block_bytes)
        assert got.dtype == torch.float64
        assert torch.allclose(got, brute_kth(x, k), rtol=1e-13, atol=0), f"{name} k={k}"


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("block_bytes", BLOCKS)
def test_several_k_from_one_pass_equal_brute_force(name, block_bytes):
    x, _ = SETS[name]()
    got = knn.kth_neighbour_distances(x, (5, 1, 3), block_bytes=block_bytes)
    assert sorted(got) == [1, 3, 5]
    for k, value in got.items():
        assert torch.allclose(value, brute_kth(x, k), rtol=1e-13, atol=0), f"{name} k={k}"


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("block_bytes", BLOCKS)
def test_query_functions_equal_brute_force(name, block_bytes):
    ref, query = SETS[name]()
    d2 = brute_d2(query, ref)
    radii = brute_kth(ref, 3)
    dist, index = knn.nearest_distance(query, ref, block_bytes=block_bytes)
    want = d2.min(1)
    assert torch.allclose(dist, want.values.sqrt(), rtol=1e-13, atol=0)
    assert torch.equal(index, d2.argmin(1))  # the smallest index among exact ties, like argmin
    floored = radii.clamp_min(1e-6)
    got = knn.min_ratio(query, ref, floored, block_bytes=block_bytes)
    assert torch.allclose(got, (d2.sqrt() / floored[None, :]).min(1).values, rtol=1e-13, atol=0)


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("block_bytes", BLOCKS)
def test_cross_counts_equal_brute_force(name, block_bytes):
    real, fake = SETS[name]()
    rr, fr = brute_kth(real, 5), brute_kth(fake, 5)
    d2 = brute_d2(real, fake)
    got = knn.cross_counts(real, fake, rr, fr, block_bytes=block_bytes)
    assert torch.equal(got.inside_real_balls, (d2 < rr.pow(2)[:, None]).sum(0))
    assert torch.equal(got.ball_covered, (d2 < rr.pow(2)[:, None]).any(1))
    assert torch.equal(got.in_fake_ball, (d2 < fr.pow(2)[None, :]).any(1))
    no_recall = knn.cross_counts(real, fake, rr, None, block_bytes=block_bytes)
    assert not no_recall.in_fake_ball.any()
    assert torch.equal(no_recall.inside_real_balls, got.inside_real_balls)


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("block_bytes", BLOCKS)
def test_cross_counts_multi_equals_brute_force_for_each_radius_set(name, block_bytes):
    real, fake = SETS[name]()
    radii = [brute_kth(real, 3), brute_kth(real, 5)]
    fr = brute_kth(fake, 3)
    d2 = brute_d2(real, fake)
    got = knn.cross_counts_multi(real, fake, radii, fr, block_bytes=block_bytes)
    for counts, rr in zip(got, radii):
        assert torch.equal(counts.inside_real_balls, (d2 < rr.pow(2)[:, None]).sum(0))
        assert torch.equal(counts.ball_covered, (d2 < rr.pow(2)[:, None]).any(1))
        assert torch.equal(counts.in_fake_ball, (d2 < fr.pow(2)[None, :]).any(1))


def test_prdc_two_k_forms_the_real_by_fake_distances_once(monkeypatch):
    """Both k of the published pair come from one real x fake pass: one product per row block."""
    from aebench.maths.prdc import compute_prdc_two_k

    real, fake = spread(300, 16, 20), spread(200, 16, 21, offset=0.1)
    radii = {k: knn.kth_neighbour_distance(real, k) for k in (3, 5)}
    shapes = []
    real_mm = torch.Tensor.__matmul__

    def spy(a, b):
        out = real_mm(a, b)
        shapes.append(tuple(out.shape))
        return out

    monkeypatch.setattr(torch.Tensor, "__matmul__", spy)
    got = compute_prdc_two_k(real, fake, 3, 5, radii.__getitem__)
    monkeypatch.undo()
    cross = [s for s in shapes if s[1] == 200 and s[0] != 200]  # real rows x fake columns
    assert sum(s[0] for s in cross) == 300
    pr, dc = compute_prdc(real, fake, 3), compute_prdc(real, fake, 5)
    assert got == {"precision": pr["precision"], "recall": pr["recall"], "density": dc["density"],
                   "coverage": dc["coverage"]}


def test_a_few_far_points_do_not_send_every_pair_to_float64(monkeypatch):
    """Far points would widen every entry's float32 margin (20 samples at 300x the scale made latent
    coverage 70x slower); split off, only their own pairs (and a few more) are computed in float64."""
    real = spread(1500, 32, 30)
    fake = with_outliers(spread(600, 32, 31), 6, 300.0)
    pairs = []
    exact = knn._exact_d2

    def counting(a, b, rows, cols, block_bytes):
        pairs.append(rows.shape[0])
        return exact(a, b, rows, cols, block_bytes)

    monkeypatch.setattr(knn, "_exact_d2", counting)
    fake_radii = knn.kth_neighbour_distance(fake, 3)
    real_radii = knn.kth_neighbour_distance(real, 3)
    radius_pairs, pairs[:] = sum(pairs), []
    counts = knn.cross_counts(real, fake, real_radii, fake_radii)
    cross_pairs, pairs[:] = sum(pairs), []
    dist, _ = knn.nearest_distance(real, fake)
    nearest_pairs = sum(pairs)
    assert radius_pairs < 6 * 600 + 3 * (1500 + 600)  # the far rows whole, and the usual few per row
    assert cross_pairs < 6 * 1500 + 2000  # the far columns whole; without the split: most of 1500 x 600
    assert nearest_pairs < 6 * 1500 + 2000
    d2 = brute_d2(real, fake)
    assert torch.equal(counts.inside_real_balls, (d2 < real_radii.pow(2)[:, None]).sum(0))
    assert torch.equal(counts.in_fake_ball, (d2 < fake_radii.pow(2)[None, :]).any(1))
    assert torch.allclose(dist, d2.min(1).values.sqrt(), rtol=1e-13, atol=0)


def test_float32_thresholds_round_outwards():
    x = torch.tensor([1.0 + 1e-12, 1.0 - 1e-12, 0.1, -0.1, 3.0], dtype=torch.float64)
    up, down = knn._f32_up(x), knn._f32_down(x)
    assert up.dtype == down.dtype == torch.float32
    assert (up.double() >= x).all() and (down.double() <= x).all()
    assert up[4] == down[4] == 3.0  # exactly representable: unchanged
    assert (up.double() - down.double()).max() <= 2 * 2.0 ** -23


def test_real_faces_with_many_tiles(faces):
    """400 real faces, 256-d integer pixels, tiles of 24 points: every tile path and merge runs."""
    real, fake = faces[::2], faces[1::2]
    for k in (3, 5):
        assert torch.allclose(knn.kth_neighbour_distance(faces, k, block_bytes=4 * 24 * 24), brute_kth(faces, k), rtol=1e-13)
    d2 = brute_d2(real, fake)
    rr = brute_kth(real, 3)
    got = knn.cross_counts(real, fake, rr, brute_kth(fake, 3), block_bytes=20_000)
    assert torch.equal(got.inside_real_balls, (d2 < rr.pow(2)[:, None]).sum(0))
    assert torch.allclose(knn.min_ratio(fake, real, rr, block_bytes=20_000),
                          (d2.sqrt() / rr[:, None]).min(0).values, rtol=1e-13, atol=0)


def test_near_ties_below_float32_resolution_are_refined():
    """Two reference points whose distances to the query differ by ~1e-9 relative: float32 cannot
    tell them apart, the answer must still be the truly nearer one (and the strict radius test exact)."""
    ref = torch.tensor([[1.0, 0.0], [0.0, 1.0 + 1e-9], [5.0, 5.0]], dtype=torch.float64)
    query = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    dist, index = knn.nearest_distance(query, ref)
    assert index.tolist() == [0] and dist.item() == 1.0


def test_duplicates_give_zero_radius_and_min_ratio_handles_it():
    x = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    assert knn.kth_neighbour_distance(x, 1).tolist() == [0.0, 0.0, 1.0, 2.0]
    # radius 0 (duplicate training points): only exact hits of that point score 0, others fall back
    radii = torch.tensor([0.0, 0.0, 1.0, 2.0], dtype=torch.float64)
    got = knn.min_ratio(torch.tensor([[0.0, 0.0], [2.0, 0.0]]), x, radii)
    assert got.tolist() == [0.0, 0.5]


def test_equals_prdc_package_on_features():
    import prdc

    real, fake = spread(400, 32, 10), spread(300, 32, 11, offset=0.1, scale=1.2)
    for k in (3, 5):
        with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the sample counts
            want = prdc.compute_prdc(real.numpy(), fake.numpy(), k)
        got = compute_prdc(real, fake, k, block_bytes=10_000)
        assert got == pytest.approx({key: float(v) for key, v in want.items()}, abs=1e-12)
        cached = compute_prdc(real, fake, k, real_radii=knn.kth_neighbour_distance(real, k))
        assert cached == got


def test_matmul_precision_is_forced_and_restored():
    import torch.backends.mkldnn

    flags = [torch.backends.cuda.matmul, torch.backends.mkldnn.matmul]
    before = [f.fp32_precision for f in flags]
    try:
        torch.backends.cuda.matmul.fp32_precision = "tf32"
        torch.backends.mkldnn.matmul.fp32_precision = "bf16"
        seen = []
        real_mm = torch.Tensor.__matmul__

        def spy(a, b):
            seen.append(tuple(f.fp32_precision for f in flags))
            return real_mm(a, b)

        torch.Tensor.__matmul__ = spy
        try:
            knn.kth_neighbour_distance(spread(50, 4, 12), 2)
        finally:
            torch.Tensor.__matmul__ = real_mm
        assert seen and set(seen) == {("ieee", "ieee")}
        assert [f.fp32_precision for f in flags] == ["tf32", "bf16"]
    finally:
        for f, v in zip(flags, before):
            f.fp32_precision = v


def test_block_memory_is_bounded(monkeypatch):
    """No block ever holds more than block_bytes of float32 distances (n x m is never formed)."""
    sizes = []
    real_mm = torch.Tensor.__matmul__

    def spy(a, b):
        out = real_mm(a, b)
        sizes.append(out.numel() * out.element_size())
        return out

    monkeypatch.setattr(torch.Tensor, "__matmul__", spy)
    real, fake = spread(500, 16, 13), spread(400, 16, 14)
    compute_prdc(real, fake, 3, block_bytes=50_000)
    knn.min_ratio(fake, real, knn.kth_neighbour_distance(real, 3, block_bytes=50_000), block_bytes=50_000)
    assert sizes and max(sizes) <= 50_000 < 500 * 400 * 4


@pytest.mark.parametrize("call", [
    lambda: knn.kth_neighbour_distance(torch.randn(5, 2), 5),
    lambda: knn.kth_neighbour_distance(torch.randn(5, 2), 0),
    lambda: knn.kth_neighbour_distance(torch.tensor([[0.0, float("nan")], [1.0, 1.0], [2.0, 2.0]]), 1),
    lambda: knn.kth_neighbour_distance(torch.randn(5), 1),
    lambda: knn.nearest_distance(torch.randn(4, 3), torch.randn(4, 2)),
    lambda: knn.nearest_distance(torch.randn(4, 3), torch.randn(0, 3)),
    lambda: knn.min_ratio(torch.randn(4, 3), torch.randn(6, 3), -torch.ones(6)),
    lambda: knn.cross_counts(torch.randn(6, 3), torch.randn(4, 3), torch.ones(6), torch.full((4,), float("inf"))),
    lambda: knn.kth_neighbour_distance(torch.randn(5, 2), 1, block_bytes=0),
    lambda: compute_prdc(torch.randn(5, 2), torch.randn(9, 2), k=5),
])
def test_bad_input_raises_one_line_data_error(call):
    with pytest.raises(DataError) as info:
        call()
    assert "\n" not in str(info.value) and ";" in str(info.value)


# ----------------------------------------------------------------------------------------------
# huge but finite points (a flow's tail draws at ~1e25 on a GPU run gave inf radii)

def test_a_few_huge_points_keep_every_radius_finite_and_exact():
    """The mean centre was pulled by a few points at 1e25, so every centred point's float32 square
    overflowed: inf radii ("k-NN radii must be ... finite"). The median centre and float64 squares keep
    the ordinary points exact, the huge ones go to float64."""
    x = spread(600, 32, seed=3)
    x[:4] *= 1e25
    radii = knn.kth_neighbour_distance(x, 3)
    assert torch.isfinite(radii).all()
    assert torch.allclose(radii[4:], brute_kth(x, 3)[4:], rtol=1e-13, atol=0)
    assert (radii[:4] > 1e24).all()


def test_every_point_huge_is_computed_in_float64():
    x = spread(80, 8, seed=4) * 1e25
    assert torch.allclose(knn.kth_neighbour_distance(x, 2), brute_kth(x, 2), rtol=1e-13, atol=0)


def test_prdc_with_huge_fake_points_equals_brute_force_on_the_balls_of_ordinary_points():
    real, fake = spread(200, 16, seed=5), spread(400, 16, seed=6)
    fake[:3] *= 1e25
    got = compute_prdc(real, fake, 3)
    d2 = brute_d2(real, fake)
    inside = d2 < brute_kth(real, 3).pow(2)[:, None]
    assert got["precision"] == inside.any(0).double().mean().item()
    assert got["density"] == inside.sum(0).double().mean().item() / 3
    assert got["coverage"] == inside.any(1).double().mean().item()


def test_huge_real_points_are_counted_in_float64():
    real, fake = spread(150, 16, seed=7), spread(300, 16, seed=8)
    real[:2] *= 1e20
    r_rad, f_rad = knn.kth_neighbour_distance(real, 3), knn.kth_neighbour_distance(fake, 3)
    got = knn.cross_counts(real, fake, r_rad, f_rad)
    d2 = brute_d2(real, fake)
    inside = d2 < r_rad.pow(2)[:, None]
    tame = inside[2:].sum(0)  # the huge balls' own contents are float64 rounding noise: at most one each
    assert ((got.inside_real_balls >= tame) & (got.inside_real_balls <= tame + 2)).all()
    assert torch.equal(got.ball_covered[2:], inside.any(1)[2:])
    assert torch.equal(got.in_fake_ball[2:], (d2 < f_rad.pow(2)[None, :]).any(1)[2:])
