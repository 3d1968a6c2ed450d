"""Training access: standardised frames, consecutive windows, discriminator offset pairs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from climdiff.data.spectral import SpectralGrid
from climdiff.data.windows import (
    FOREIGN_CHANGE,
    OTHER_LARGE_SCALES,
    ConsecutiveWindows,
    FrameSource,
    OffsetPairs,
    offset_distribution,
)
from climdiff.errors import ClimdiffError, StoreError


def test_frames_are_standardised_with_training_statistics(turbulence_store: Path) -> None:
    train = FrameSource(turbulence_store, "train")
    assert len(train) == 24
    values = train.frames(list(range(len(train)))).double().numpy()
    assert values.shape == (24, 1, 32, 32)
    assert values.mean() == pytest.approx(0.0, abs=1e-5)
    assert values.std() == pytest.approx(1.0, rel=1e-5)
    raw = xr.open_zarr(turbulence_store)["vorticity"].values
    np.testing.assert_allclose(train.destandardise(train[3]).numpy()[0], raw[3], rtol=1e-5, atol=1e-5)


def test_lazy_and_in_memory_access_agree(turbulence_store: Path) -> None:
    eager = FrameSource(turbulence_store, "validation")
    lazy = FrameSource(turbulence_store, "validation", memory_cap=0)
    assert lazy._memory is None and eager._memory is not None
    for i in (0, 3, len(eager) - 1):
        np.testing.assert_array_equal(eager[i].numpy(), lazy[i].numpy())
    raw = xr.open_zarr(turbulence_store)["vorticity"].values
    np.testing.assert_allclose(eager.destandardise(eager[0]).numpy()[0], raw[24], rtol=1e-5, atol=1e-5)


def test_consecutive_windows_are_consecutive(turbulence_store: Path) -> None:
    source = FrameSource(turbulence_store, "train")
    windows = ConsecutiveWindows(source, length=3)
    assert len(windows) == 22
    w = windows[5]
    assert w.shape == (3, 1, 32, 32)
    for j in range(3):
        np.testing.assert_array_equal(w[j].numpy(), source[5 + j].numpy())


def test_offset_pairs_are_balanced_and_never_the_true_next_day(turbulence_store: Path) -> None:
    source = FrameSource(turbulence_store, "train")
    pairs = OffsetPairs(source, std=2.0, seed=3)
    labels, offsets = [], []
    for epoch in range(20):
        pairs.set_epoch(epoch)
        for i in range(len(pairs)):
            offset = pairs.offset(i)
            n = i // 2 + 1
            assert 0 <= n + offset < len(source)
            labels.append(offset == 1)
            offsets.append(offset)
    assert np.mean(labels) == 0.5
    negatives = Counter(o for o in offsets if o != 1)
    assert negatives[0] > 0 and negatives[-1] > 0 and negatives[2] > 0 and negatives[3] > 0
    window, label, offset = pairs[1]
    np.testing.assert_array_equal(window[0].numpy(), source[0].numpy())
    np.testing.assert_array_equal(window[1].numpy(), source[1].numpy())
    np.testing.assert_array_equal(window[2].numpy(), source[1 + offset].numpy())
    assert float(label) == 0.0


def test_offsets_follow_the_truncated_discretised_normal() -> None:
    offsets, probs = offset_distribution(n=50, length=200, std=2.0)
    assert 1 not in offsets and probs.sum() == pytest.approx(1.0)
    # far from the edges: P(l) proportional to P(round(N(1, 2)) = l); l = 0 and l = 2 equally likely
    p = dict(zip(offsets.tolist(), probs.tolist(), strict=True))
    assert p[0] == pytest.approx(p[2]) and p[-1] == pytest.approx(p[3])
    assert p[0] > p[-1] > p[-2]
    # at the start of a split only offsets that stay inside are possible
    edge, _ = offset_distribution(n=1, length=200, std=2.0)
    assert edge.min() == -1
    rng = np.random.default_rng(0)
    draws = rng.choice(offsets, size=40_000, p=probs)
    assert np.mean(draws == 0) == pytest.approx(p[0], abs=0.01)


@pytest.mark.parametrize(
    ("negatives", "allowed"), [("no-copies", lambda o: o not in (-1, 0, 1)), ("later", lambda o: o >= 2)]
)
def test_limited_negatives_keep_to_their_offsets(turbulence_store: Path, negatives: str, allowed) -> None:
    offsets, probs = offset_distribution(n=50, length=200, std=2.0, negatives=negatives)
    everything = dict(zip(*offset_distribution(n=50, length=200, std=2.0), strict=True))
    assert all(allowed(o) for o in offsets.tolist()) and probs.sum() == pytest.approx(1.0)
    # the allowed offsets keep their relative weights
    p = dict(zip(offsets.tolist(), probs.tolist(), strict=True))
    assert p[2] / p[3] == pytest.approx(everything[2] / everything[3])
    source = FrameSource(turbulence_store, "train")
    pairs = OffsetPairs(source, std=2.0, seed=3, negatives=negatives)
    assert len(pairs) == 2 * (len(source) - (3 if negatives == "later" else 2))
    for i in range(1, len(pairs), 2):
        window, label, offset = pairs[i]
        assert allowed(offset) and float(label) == 0.0
        n = i // 2 + 1
        for day in (n - 1, n):
            assert not np.array_equal(window[2].numpy(), source[day].numpy())
    with pytest.raises(ClimdiffError, match="no day of the split"):
        offset_distribution(n=198, length=200, std=2.0, negatives="later")


def test_a_day_without_a_reachable_negative_is_skipped(turbulence_store: Path) -> None:
    # a narrow offset law cannot reach two days back from the split's last day, where no later day is left
    source = FrameSource(turbulence_store, "train")
    narrow = OffsetPairs(source, std=0.1, seed=3, negatives="no-copies")
    assert len(narrow) == 2 * (len(source) - 3)
    assert all(narrow.offset(i) not in (-1, 0, 1) for i in range(1, len(narrow), 2))
    assert len(OffsetPairs(source, std=2.0, seed=3, negatives="no-copies")) == 2 * (len(source) - 2)


def test_same_seed_same_negatives(turbulence_store: Path) -> None:
    source = FrameSource(turbulence_store, "train")
    a, b = OffsetPairs(source, seed=1), OffsetPairs(source, seed=1)
    assert [a.offset(i) for i in range(len(a))] == [b.offset(i) for i in range(len(b))]
    c = OffsetPairs(source, seed=2)
    assert [a.offset(i) for i in range(len(a))] != [c.offset(i) for i in range(len(c))]


def test_foreign_changes_add_another_days_change_to_today(turbulence_store: Path) -> None:
    source = FrameSource(turbulence_store, "train")
    plain = OffsetPairs(source, seed=3)
    mixed = OffsetPairs(source, seed=3, foreign_changes=0.5)
    negatives = range(1, len(mixed), 2)
    drawn = [mixed.draw(i) for i in negatives]
    foreign = [(i, m) for i, (offset, m) in zip(negatives, drawn, strict=True) if offset == FOREIGN_CHANGE]
    assert 0.25 < len(foreign) / len(drawn) < 0.75  # about half of 23 negatives
    for i, m in foreign:
        n = i // 2 + 1
        assert m is not None and m != n and 0 <= m and m + 1 < len(source)
        window, label, offset = mixed[i]
        expected = source[n] + (source[m + 1] - source[m])
        np.testing.assert_allclose(window[2].numpy(), expected.numpy(), rtol=0, atol=1e-6)
        np.testing.assert_array_equal(window[1].numpy(), source[n].numpy())
        assert float(label) == 0.0 and offset == FOREIGN_CHANGE
    # positives are untouched, and without foreign changes the draws are those of earlier versions
    assert all(mixed.offset(i) == 1 for i in range(0, len(mixed), 2))
    for i in negatives:  # the stream of earlier versions: one choice from the offset law, keyed by (seed, epoch, item)
        offsets, probs = offset_distribution(i // 2 + 1, len(source), 2.0)
        assert plain.offset(i) == np.random.default_rng([3, 0, i]).choice(offsets, p=probs)
    with pytest.raises(ClimdiffError, match="fraction of the negatives"):
        OffsetPairs(source, foreign_changes=1.5)


def test_large_scales_keep_the_low_wavenumbers() -> None:
    y, x = torch.meshgrid(*(torch.arange(32) * 2 * np.pi / 32,) * 2, indexing="ij")
    low, high = torch.cos(3 * x) * torch.sin(2 * y), torch.sin(9 * x) + torch.cos(5 * y)
    grid = SpectralGrid(32, dtype=torch.float32)
    np.testing.assert_allclose(grid.large_scales(low + high, 4).numpy(), low.numpy(), atol=1e-5)
    np.testing.assert_allclose(grid.large_scales(low + high, 9).numpy(), (low + high).numpy(), atol=1e-5)


def test_large_scale_negatives_are_the_next_day_with_another_days_large_scales(turbulence_store: Path) -> None:
    source = FrameSource(turbulence_store, "train")
    pairs = OffsetPairs(source, seed=3, foreign_changes=0.25, large_scale_negatives=0.5, large_scale_cutoff=3)
    kinds = Counter(pairs.draw(i)[0] for i in range(1, len(pairs), 2))
    assert (
        kinds[FOREIGN_CHANGE] > 0
        and kinds[OTHER_LARGE_SCALES] > 0
        and sum(kinds.values()) > kinds[FOREIGN_CHANGE] + kinds[OTHER_LARGE_SCALES]
    )
    large_scales = SpectralGrid(32, dtype=torch.float32).large_scales
    for i in range(1, len(pairs), 2):
        offset, other = pairs.draw(i)
        if offset != OTHER_LARGE_SCALES:
            continue
        n = i // 2 + 1
        assert 2 <= abs(other - (n + 1)) <= 10
        candidate = pairs[i][0][2]
        nxt, far = source[n + 1], source[other]
        np.testing.assert_allclose(large_scales(candidate, 3).numpy(), large_scales(far, 3).numpy(), atol=1e-5)
        np.testing.assert_allclose(
            (candidate - large_scales(candidate, 3)).numpy(), (nxt - large_scales(nxt, 3)).numpy(), atol=1e-5
        )
    with pytest.raises(ClimdiffError, match="together at most 1"):
        OffsetPairs(source, foreign_changes=0.6, large_scale_negatives=0.6)
    with pytest.raises(ClimdiffError, match="at least 1"):
        OffsetPairs(source, large_scale_negatives=0.5, large_scale_cutoff=0)


def test_bad_access_is_refused(turbulence_store: Path, tmp_path: Path) -> None:
    with pytest.raises(ClimdiffError, match="unknown split"):
        FrameSource(turbulence_store, "holdout")
    with pytest.raises(StoreError, match="does not exist"):
        FrameSource(tmp_path / "missing.zarr")
    (tmp_path / "junk").mkdir()
    with pytest.raises(StoreError, match="not a climdiff store"):
        FrameSource(tmp_path / "junk")


def test_change_std_is_the_rms_one_day_change(turbulence_store: Path) -> None:
    source = FrameSource(turbulence_store, "train")
    frames = source.frames(list(range(len(source)))).double().numpy()
    expected = np.sqrt(np.mean(np.square(np.diff(frames, axis=0))))
    assert source.change_std() == pytest.approx(expected, rel=1e-6)
    assert 0 < source.change_std(max_pairs=5) < 2 * expected
