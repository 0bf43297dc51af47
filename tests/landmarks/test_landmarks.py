from __future__ import annotations

import pytest
import torch

from mtl_heads.landmarks import (
    FACE_GROUPS,
    FLIP_INDEX_68,
    MIRROR_PAIRS,
    PAPER_GROUPS,
    LabelMapGroup,
    flip_index_from_pairs,
    landmarks_to_label_maps,
)

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="CUDA not available"))]


def _centroid(maps: torch.Tensor) -> torch.Tensor:
    """(..., H, W) -> (..., 2) as (x, y)."""
    h, w = maps.shape[-2:]
    mass = maps.sum((-2, -1))
    xs = torch.arange(w, dtype=maps.dtype, device=maps.device)
    ys = torch.arange(h, dtype=maps.dtype, device=maps.device)
    return torch.stack([(maps.sum(-2) * xs).sum(-1) / mass, (maps.sum(-1) * ys).sum(-1) / mass], -1)


def test_flip_index_is_an_involution_over_all_points():
    perm = torch.tensor(FLIP_INDEX_68)
    assert sorted(FLIP_INDEX_68) == list(range(68))
    assert torch.equal(perm[perm], torch.arange(68))
    fixed = {i for i in range(68) if FLIP_INDEX_68[i] == i}
    assert fixed == {8, 27, 28, 29, 30, 33, 51, 57, 62, 66}
    assert len(MIRROR_PAIRS) == 29
    assert all(FLIP_INDEX_68[i] == j and FLIP_INDEX_68[j] == i for i, j in MIRROR_PAIRS)
    assert FLIP_INDEX_68[17:22] == (26, 25, 24, 23, 22)


def test_flip_index_from_pairs_rejects_bad_pairs():
    with pytest.raises(ValueError, match="more than one pair"):
        flip_index_from_pairs([(0, 1), (1, 2)], 3)
    with pytest.raises(ValueError, match="outside"):
        flip_index_from_pairs([(0, 5)], 3)


def test_mirrored_face_relabelled_matches_original_maps(frontal_faces):
    # Mirror the points (x -> W - 1 - x), relabel with the flip table: the maps must be the
    # mirrored original maps, channel for channel (left brow stays the image-left brow).
    lm = frontal_faces(8, 0).double()
    mirrored = lm.clone()
    mirrored[..., 0] = 47 - mirrored[..., 0]
    mirrored = mirrored[:, list(FLIP_INDEX_68)]
    maps = landmarks_to_label_maps(lm, 48)
    maps_m = landmarks_to_label_maps(mirrored, 48)
    assert torch.allclose(maps_m, maps.flip(-1)[:, [1, 0, 2]], atol=1 / 16 + 1e-9)
    assert (maps_m - maps.flip(-1)[:, [1, 0, 2]]).abs().mean() < 1e-3


def test_paper_maps_shapes_range_and_layout(frontal_faces):
    lm = frontal_faces(4, 1)
    maps = landmarks_to_label_maps(lm, (48, 40))
    assert maps.shape == (4, 3, 48, 40) and maps.dtype == torch.float32
    assert maps.min() >= 0 and maps.max() <= 1
    c = _centroid(maps)
    assert (c[:, 0, 0] < c[:, 1, 0]).all()  # image-left brow left of image-right brow
    assert (c[:, 2, 1] > c[:, 0, 1]).all()  # mouth below the brows
    # values are multiples of 1/16 (4x4 supersampling) and there is anti-aliasing
    assert torch.equal(maps * 16, (maps * 16).round())
    assert ((maps > 0) & (maps < 1)).any()


def test_filled_polygon_matches_area_and_a_square_is_exact():
    # An axis-aligned square whose edges sit on pixel borders covers whole pixels only.
    lm = torch.tensor([[[2.5, 2.5], [6.5, 2.5], [6.5, 5.5], [2.5, 5.5]]], dtype=torch.float64)
    group = LabelMapGroup("box", range(4), "polygon", thickness=0.0)
    m = landmarks_to_label_maps(lm, 10, groups=[group])[0, 0]
    expected = torch.zeros(10, 10, dtype=torch.float64)
    expected[3:6, 3:7] = 1
    assert torch.equal(m, expected)
    # A half-pixel shift splits the border pixels in halves; the area is unchanged.
    m2 = landmarks_to_label_maps(lm + torch.tensor([0.5, 0.0]), 10, groups=[group])[0, 0]
    assert torch.equal(m2[3:6, 3], torch.full((3,), 0.5, dtype=torch.float64))
    assert m2.sum() == 12
    # A disc (many-sided polygon) has area close to pi r^2.
    t = torch.linspace(0, 2 * torch.pi, 65)[:-1]
    disc = torch.stack([20.3 + 7 * t.cos(), 19.7 + 7 * t.sin()], -1)[None]
    g = LabelMapGroup("disc", range(64), "polygon", thickness=0.0)
    area = landmarks_to_label_maps(disc, 40, groups=[g]).sum()
    assert abs(float(area) - torch.pi * 49) < 0.5


def test_polyline_thickness_and_area():
    lm = torch.tensor([[[5.0, 10.0], [25.0, 10.0]]])
    for thickness in (1.0, 2.0, 3.0):
        g = LabelMapGroup("bar", (0, 1), "polyline", thickness=thickness)
        m = landmarks_to_label_maps(lm, 32, groups=[g])[0, 0]
        # a stadium: length * thickness + a disc of diameter thickness
        expected = 20 * thickness + torch.pi * thickness**2 / 4
        assert abs(float(m.sum()) - expected) < 0.06 * expected
        assert m[10, 15] == 1.0 and m[10 + int(thickness), 15] < 1.0


@pytest.mark.parametrize("shift", [(0.25, 0.0), (0.0, 0.5), (0.3, -0.4)])
def test_subpixel_shift_moves_the_centroid(shift, frontal_faces):
    lm = frontal_faces(6, 2).double()
    delta = torch.tensor(shift, dtype=torch.float64)
    c0 = _centroid(landmarks_to_label_maps(lm, 48))
    c1 = _centroid(landmarks_to_label_maps(lm + delta, 48))
    moved = c1 - c0
    # 4 x 4 supersampling quantises edges to 1/4 px: the centroid follows the shift to within
    # half that pitch (the smallest shift here is 0.25 px, so a map that ignored it would fail)
    assert torch.allclose(moved, delta.expand_as(moved), atol=0.125)


def test_user_groups_and_any_number_of_points(frontal_faces):
    lm = frontal_faces(3, 3)
    maps = landmarks_to_label_maps(lm, 48, groups=FACE_GROUPS)
    assert maps.shape == (3, 7, 48, 48)
    assert (maps.flatten(2).sum(-1) > 0).all()
    # 5 points, arbitrary index set, a single-point polyline is a disc
    pts = torch.tensor([[[4.0, 4.0], [12.0, 4.0], [12.0, 12.0], [4.0, 12.0], [8.0, 8.0]]])
    groups = [
        LabelMapGroup("square", (0, 1, 2, 3), "polygon", thickness=0.0),
        LabelMapGroup("dot", (4,), "polyline", thickness=4.0),
    ]
    m = landmarks_to_label_maps(pts, 16, groups=groups)
    assert abs(float(m[0, 0].sum()) - 64) < 1e-6
    assert abs(float(m[0, 1].sum()) - torch.pi * 4) < 0.6


def test_closed_eye_polygon_with_thickness_still_draws():
    pts = torch.tensor([[[4.0, 8.0], [8.0, 8.0], [12.0, 8.0], [8.0, 8.0]]])
    filled = LabelMapGroup("eye", range(4), "polygon", thickness=0.0)
    stroked = LabelMapGroup("eye", range(4), "polygon", thickness=1.0)
    assert landmarks_to_label_maps(pts, 16, groups=[filled]).sum() == 0
    assert landmarks_to_label_maps(pts, 16, groups=[stroked]).sum() > 7


def test_invalid_and_nan_samples_give_empty_maps(frontal_faces):
    lm = frontal_faces(4, 4)
    valid = torch.tensor([True, False, True, True])
    lm[2, 50] = float("nan")  # a point the paper groups use
    lm[3, 0] = float("nan")  # jaw: not used by the paper groups -> still drawn
    with pytest.warns(UserWarning, match="1 of 4 samples have NaN"):
        maps = landmarks_to_label_maps(lm, 48, valid=valid)
    assert maps[1].sum() == 0 and maps[2].sum() == 0
    assert maps[0].sum() > 0 and maps[3].sum() > 0
    assert not torch.isnan(maps).any()
    # NaN samples already marked invalid are silent
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        landmarks_to_label_maps(lm, 48, valid=torch.tensor([True, False, False, True]))


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match=r"N >= 68 .*'mouth' uses index 59|N >= 60"):
        landmarks_to_label_maps(torch.zeros(2, 27, 2), 48)
    with pytest.raises(ValueError, match="got shape"):
        landmarks_to_label_maps(torch.zeros(68, 2), 48)
    with pytest.raises(ValueError, match=r"valid must have shape \(2,\)"):
        landmarks_to_label_maps(torch.zeros(2, 68, 2), 48, valid=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="kind"):
        LabelMapGroup("x", (0, 1), "ellipse")
    with pytest.raises(ValueError, match="thickness > 0"):
        LabelMapGroup("x", (0, 1), "polyline", thickness=0.0)
    with pytest.raises(TypeError, match="LabelMapGroup"):
        landmarks_to_label_maps(torch.zeros(1, 68, 2), 48, groups=[("x", (0, 1))])


def test_only_validates_indices_used(frontal_faces):
    # N only needs to exceed the largest index the groups use (here 59 for the mouth).
    lm = frontal_faces(2, 5)[:, :60]
    assert landmarks_to_label_maps(lm, 48).shape == (2, 3, 48, 48)


def test_thickness_scale_per_sample(frontal_faces):
    lm = frontal_faces(2, 6)
    lm = torch.cat([lm[:1], lm[:1]])
    m = landmarks_to_label_maps(lm, 48, thickness_scale=torch.tensor([1.0, 2.0]))
    assert m[1, 0].sum() > 1.6 * m[0, 0].sum()
    assert torch.equal(m[1, 2], m[0, 2])  # the mouth fill has no stroke


@pytest.mark.parametrize("device", DEVICES)
def test_runs_on_the_landmarks_device(device, frontal_faces):
    lm = frontal_faces(3, 7)
    maps = landmarks_to_label_maps(lm.to(device), 48)
    assert maps.device.type == device
    torch.testing.assert_close(maps.cpu(), landmarks_to_label_maps(lm, 48))


def test_paper_groups_layout():
    assert [g.name for g in PAPER_GROUPS] == ["left_brow", "right_brow", "mouth"]
    assert PAPER_GROUPS[0].indices == tuple(range(17, 22))
    assert PAPER_GROUPS[2].indices == tuple(range(48, 60)) and PAPER_GROUPS[2].kind == "polygon"


def test_mirror_channels_follow_the_groups(frontal_faces) -> None:
    from mtl_heads.landmarks import (
        FACE_GROUPS,
        FLIP_INDEX_68,
        LEFT_BROW,
        PAPER_GROUPS,
        LabelMapGroup,
        mirror_channels,
    )

    assert mirror_channels(PAPER_GROUPS) == (1, 0, 2)
    assert mirror_channels(FACE_GROUPS) == (1, 0, 2, 4, 3, 5, 6)
    reordered = (PAPER_GROUPS[2], PAPER_GROUPS[1], PAPER_GROUPS[0])
    assert mirror_channels(reordered) == (0, 2, 1)
    # the flip of the drawn maps equals the maps of the flipped landmarks
    lm = frontal_faces(2, 0).double()
    mirrored = lm.clone()
    mirrored[..., 0] = 47 - lm[..., 0]
    mirrored = mirrored[:, list(FLIP_INDEX_68)]
    perm = list(mirror_channels(PAPER_GROUPS))
    torch.testing.assert_close(landmarks_to_label_maps(mirrored, 48),
                               landmarks_to_label_maps(lm, 48).flip(-1)[:, perm])
    with pytest.raises(ValueError, match="'lone_brow' .channel 0.: its mirror image"):
        mirror_channels((LabelMapGroup("lone_brow", LEFT_BROW),))
