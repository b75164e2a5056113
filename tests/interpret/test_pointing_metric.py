"""The pointing-game metric against a brute-force reference and hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

import visionkit as vk


def brute_force_hits(maps, masks, tolerance):
    """Distance from the map's maximum to every mask pixel, one image at a time."""
    hits = []
    for heat, mask in zip(maps, masks):
        row, col = divmod(int(np.argmax(heat)), heat.shape[1])
        ys, xs = np.nonzero(mask)
        hits.append(np.sqrt((ys - row) ** 2 + (xs - col) ** 2).min() <= tolerance)
    return np.array(hits)


@pytest.mark.parametrize("tolerance", [0.0, 1.0, 1.5, 3.0])
def test_hits_equal_a_brute_force_distance(tolerance):
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(40, 9, 13))
    masks = np.zeros((40, 9, 13), bool)
    for mask, (top, left, height, width) in zip(masks, rng.integers(0, 5, (40, 4))):
        mask[top:top + height + 1, left:left + width + 1] = True
    hits = vk.interpret.pointing_game(maps, masks, tolerance)
    np.testing.assert_array_equal(hits, brute_force_hits(maps, masks, tolerance))
    assert 0 < hits.mean() < 1  # the random case has both hits and misses


def test_a_maximum_on_the_first_row_of_a_non_square_map():
    """Rows and columns are not swapped: the maximum at row 0, column 5 of a 3x6 map."""
    maps = np.zeros((1, 3, 6))
    maps[0, 0, 5] = 1.0
    masks = np.zeros((1, 3, 6), bool)
    masks[0, 0, 4:] = True
    assert vk.interpret.pointing_game(maps, masks).tolist() == [True]
    assert vk.interpret.pointing_game(maps, masks[:, ::-1]).tolist() == [False]


@pytest.mark.parametrize("maps, masks, tolerance, message", [
    (np.zeros((2, 4, 4)), np.ones((2, 4, 5)), 0, r"same shape.*\(2, 4, 4\).*\(2, 4, 5\)"),
    (np.zeros((4, 4)), np.ones((4, 4)), 0, r"\[B, H, W\]"),
    (np.zeros((2, 4, 4)), np.ones((2, 4, 4)), -1, "tolerance=-1"),
    (np.zeros((2, 4, 4)), np.stack([np.ones((4, 4)), np.zeros((4, 4))]), 0, r"masks \[1\]"),
])
def test_bad_input_is_named(maps, masks, tolerance, message):
    with pytest.raises(ValueError, match=message):
        vk.interpret.pointing_game(maps, masks, tolerance)
