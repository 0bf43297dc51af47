"""SyntheticFaces: a procedurally drawn face data set, shipped with the package (no download).

Every face is drawn from a 68-point template in the iBUG layout. The seven expression classes
(FER2013's order: Angry, Disgust, Fear, Happy, Sad, Surprise, Neutral) differ *only* in the
geometry of the brows and the mouth; everything else — identity (face shape, feature
spacing), pose (rotation, scale, shift), brightness and contrast, background clutter, blur and
pixel noise — is a nuisance factor drawn independently of the class. Because expression is pure
geometry, the brow/mouth label maps of the paper carry exactly the information the classifier
needs, which makes this set a controlled test bed for the auxiliary task.

Rendering is vectorised in torch (signed distances to polygons, thick polylines and ellipses,
anti-aliased over one pixel), so a few thousand 48×48 faces take about a second on one core.
The set is fully determined by ``(num_samples, size, seed, options)``.
"""

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ._base import FaceDataset

__all__ = ["SyntheticFaces", "SYNTHETIC_CLASSES", "synthetic_landmarks"]

SYNTHETIC_CLASSES: tuple[str, ...] = (
    "Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral",
)

# Expression = displacement of brow/mouth parameters from a neutral face, in pixels at 48×48.
# Columns: brow raise, brow inner-end drop (+ lowers the inner end: furrow; − raises it: worry),
# brows drawn together, brow arch, mouth-corner lift (+ smile, − frown), mouth opening,
# mouth width change, upper-lip raise on one side (a sneer).
_PARAM_NAMES = ("raise", "inner_drop", "together", "arch", "corner", "open", "width", "sneer")
_EXPRESSIONS = torch.tensor([
    # raise inner together arch corner open  width sneer
    [-1.2,  2.2,  1.4,  -0.4, -0.6,  0.0, -1.0,  0.0],  # Angry: low, furrowed brows; pressed lips
    [-0.8,  1.2,  0.8,  -0.2, -1.0,  0.8, -0.4,  2.2],  # Disgust: low brows; one-sided upper lip
    [ 1.6, -1.4,  1.2,   0.2, -0.6,  1.8,  1.4,  0.0],  # Fear: raised, worried brows; wide mouth
    [ 0.3,  0.0,  0.0,   0.2,  2.4,  0.8,  1.6,  0.0],  # Happy: smile
    [ 0.0, -1.8,  0.4,  -0.2, -2.0,  0.0, -0.6,  0.0],  # Sad: inner brows up; frown
    [ 2.6,  0.0, -0.3,   1.4,  0.0,  4.2, -1.0,  0.0],  # Surprise: high, arched brows; open mouth
    [ 0.0,  0.0,  0.0,   0.0,  0.0,  0.0,  0.0,  0.0],  # Neutral
])


def _canonical_landmarks() -> torch.Tensor:
    """The neutral 68-point template at 48×48 (iBUG order): (68, 2) (x, y), centred at x = 23.5.

    The jaw is the lower half of an ellipse (centre (23.5, 21), semi-axes 16 × 21) and the eyes
    are ellipses (semi-axes 3.5 × 1.6): the renderer draws those shapes analytically.
    """
    cx = 23.5
    t = torch.linspace(math.pi, 0.0, 17)
    jaw = torch.stack([cx + 16.0 * torch.cos(t), 21.0 + 21.0 * torch.sin(t)], -1)
    s = torch.linspace(0.0, 1.0, 5)
    brow_l = torch.stack([cx - 13.0 + 10.0 * s, 14.0 - 1.5 * torch.sin(math.pi * s)], -1)
    brow_r = torch.stack([2 * cx - brow_l[:, 0], brow_l[:, 1]], -1).flip(0)
    bridge = torch.stack([torch.full((4,), cx), torch.linspace(19.0, 27.0, 4)], -1)
    nose = torch.tensor([[cx - 3.5, 29.0], [cx - 1.8, 29.8], [cx, 30.2], [cx + 1.8, 29.8],
                         [cx + 3.5, 29.0]])
    ang = torch.tensor([180.0, 120.0, 60.0, 0.0, -60.0, -120.0]) * math.pi / 180
    # y grows downwards, so the "upper" eyelid points have negative sin offsets.
    eye_shape = torch.stack([3.5 * torch.cos(ang), -1.6 * torch.sin(ang)], -1)
    eye_l = eye_shape + torch.tensor([cx - 8.0, 19.5])
    # Mirror the left eye so that 42 is the inner corner and 45 the outer, as in iBUG.
    eye_r = torch.stack([2 * cx - eye_l[[3, 2, 1, 0, 5, 4], 0], eye_l[[3, 2, 1, 0, 5, 4], 1]], -1)
    mouth = torch.zeros(20, 2)  # filled by the expression geometry
    return torch.cat([jaw, brow_l, brow_r, bridge, nose, eye_l, eye_r, mouth])


def _mouth_points(
    mx: torch.Tensor, my: torch.Tensor, half_width: torch.Tensor, corner: torch.Tensor,
    opening: torch.Tensor, upper: torch.Tensor, lower: torch.Tensor, sneer: torch.Tensor,
) -> torch.Tensor:
    """Outer (48–59) and inner (60–67) lip points, (N, 20, 2), from per-sample mouth parameters."""
    s_outer = torch.tensor([-3, -2, -1, 0, 1, 2, 3, 2, 1, 0, -1, -2]) / 3.0
    is_lower = torch.tensor([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1], dtype=torch.bool)
    s_inner = torch.tensor([-0.8, -0.4, 0.0, 0.4, 0.8, 0.4, 0.0, -0.4])
    inner_lower = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1], dtype=torch.bool)

    def contour(s: torch.Tensor, lower_side: torch.Tensor, lip: bool) -> torch.Tensor:
        s, lower_side = s[None], lower_side[None]
        bulge = 1.0 - s**2
        base = my[:, None] - corner[:, None] * s**2
        half_open = opening[:, None] / 2
        up = base - (half_open + (upper[:, None] if lip else 0.0)) * bulge
        # The sneer lifts the upper lip over the image-right half of the mouth.
        up = up - sneer[:, None] * s.clamp(min=0) * (1.0 - s.clamp(min=0)) * 2.0
        down = base + (half_open + (lower[:, None] if lip else 0.0)) * bulge
        y = torch.where(lower_side, down, up)
        x = mx[:, None] + half_width[:, None] * s
        return torch.stack([x, y], -1)

    return torch.cat([contour(s_outer, is_lower, True), contour(s_inner, inner_lower, False)], 1)


def _min_segment_distance(
    points: torch.Tensor, line: torch.Tensor, closed: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance from pixel centres (N or 1, P, 2) to a polyline (N, V, 2), and polygon insideness.

    Loops over the V segments with (N, P) tensors: a few thousand 48×48 images fit in cache
    this way, where an (N, V, P) intermediate would not.
    """
    px, py = points[..., 0], points[..., 1]
    best = None
    shape = torch.broadcast_shapes(px.shape, line[:, :1, 0].shape)
    crossings = torch.zeros(shape, dtype=torch.bool)
    num = line.shape[1] if closed else line.shape[1] - 1
    for i in range(num):
        ax, ay = line[:, i, 0:1], line[:, i, 1:2]
        bx, by = line[:, (i + 1) % line.shape[1], 0:1], line[:, (i + 1) % line.shape[1], 1:2]
        dx, dy = bx - ax, by - ay
        t = (((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy).clamp(min=1e-6)).clamp(0, 1)
        d2 = (px - ax - t * dx) ** 2 + (py - ay - t * dy) ** 2
        best = d2 if best is None else torch.minimum(best, d2)
        if closed:
            # Even-odd rule: count the edges a ray towards +x crosses.
            straddles = (ay > py) != (by > py)
            x_cross = ax + (py - ay) * dx / torch.where(dy == 0, torch.ones_like(dy), dy)
            crossings ^= straddles & (px < x_cross)
    return best.sqrt(), crossings


def _polygon_coverage(points: torch.Tensor, poly: torch.Tensor) -> torch.Tensor:
    """Anti-aliased coverage (N, P) of closed polygons (N, V, 2) at pixel centres (N|1, P, 2)."""
    dist, inside = _min_segment_distance(points, poly, closed=True)
    return (torch.where(inside, dist, -dist) + 0.5).clamp(0.0, 1.0)


def _polyline_coverage(
    points: torch.Tensor, line: torch.Tensor, width: torch.Tensor,
) -> torch.Tensor:
    """Coverage (N, P) of open polylines (N, V, 2) drawn `width` (N,) pixels thick."""
    dist, _ = _min_segment_distance(points, line, closed=False)
    return (width[:, None] / 2 + 0.5 - dist).clamp(0.0, 1.0)


def _ellipse_coverage(
    points: torch.Tensor, centre: torch.Tensor, axes: torch.Tensor, angle: torch.Tensor,
    lower_axis: torch.Tensor | None = None,
) -> torch.Tensor:
    """Approximate anti-aliased coverage (N, P) of rotated ellipses.

    ``centre``/``axes`` are (N, 2), ``angle`` (N,) in radians. With ``lower_axis`` (N,) the half
    below the major axis (in the ellipse's own frame) uses that semi-axis instead: a face is a
    short forehead arc over a longer jaw.
    """
    d = points - centre[:, None]
    c, s = torch.cos(angle)[:, None], torch.sin(angle)[:, None]
    u = d[..., 0] * c + d[..., 1] * s
    v = -d[..., 0] * s + d[..., 1] * c
    b = axes[:, 1:2]
    if lower_axis is not None:
        b = torch.where(v > 0, lower_axis[:, None], b)
    r = torch.sqrt((u / axes[:, 0:1]) ** 2 + (v / b) ** 2)
    return ((1.0 - r) * torch.minimum(axes[:, 0:1], b) + 0.5).clamp(0.0, 1.0)


def _over(canvas: torch.Tensor, alpha: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Paint `value` (N,) or (N, P) over `canvas` (N, P) with coverage `alpha` (N, P)."""
    if value.dim() == 1:
        value = value[:, None]
    return canvas * (1.0 - alpha) + value * alpha


class _Window:
    """A square pixel window per image, placed around a feature, on a margin-padded canvas.

    Small features (brows, mouth, nose) are drawn only inside their window: about a tenth of
    the pixels of the full frame.
    """

    def __init__(self, centre: torch.Tensor, half: int, side: int, margin: int) -> None:
        offsets = torch.arange(-half, half + 1, dtype=torch.float32)
        oy, ox = torch.meshgrid(offsets, offsets, indexing="ij")
        base = centre.round().clamp(-margin + half, side + margin - 1 - half)
        self.points = base[:, None] + torch.stack([ox.flatten(), oy.flatten()], -1)[None]
        padded = side + 2 * margin
        self.index = ((self.points[..., 1] + margin) * padded + self.points[..., 0] + margin).long()

    def paint(self, canvas: torch.Tensor, alpha: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        patch = canvas.gather(1, self.index)
        return canvas.scatter(1, self.index, _over(patch, alpha, value))


class SyntheticFaces(FaceDataset):
    """Procedurally drawn grayscale faces whose expression is encoded only in brow/mouth geometry.

    A deterministic stand-in for FER2013 that needs no download: 7 classes (FER2013's names and
    order), 68 exact iBUG landmarks per face, random identity, pose, lighting, background clutter
    and noise. Items follow the package's data set contract, so everything that trains on
    FER2013 trains on this set unchanged.

    Args:
        num_samples: number of faces.
        size: image side in pixels (the template is drawn for 48 and scaled).
        seed: seed of the generator; the same arguments always give the same pixels.
        invalid_fraction: fraction of faces whose landmarks are reported missing (NaN rows,
            ``landmarks_valid`` False), like a detector that misses some faces. The faces
            themselves are drawn normally.
        expression_strength: (low, high) range of the per-face expression intensity; 1.0 is the
            class prototype, lower values move the face towards neutral and make classes overlap.
        rotation: maximum in-plane rotation in degrees (uniform in ±rotation).
        scale: (low, high) range of the face scale.
        shift: maximum translation in pixels (uniform in ±shift, each axis).
        noise: (low, high) range of the per-image Gaussian pixel-noise std in grey levels.
        identity: spread of the per-face shape variation (face size, feature positions) in pixels.
        class_weights: optional relative class frequencies (7 values); uniform by default.
        transform: callable applied to each item dict.

    Attributes:
        images: uint8 (N, size, size).
        labels: int64 (N,) 0..6.
        landmarks: float32 (N, 68, 2), (x, y) with pixel centres at integers; NaN rows where
            reported invalid.
        landmarks_valid: bool (N,).
        classes: the class names (FER2013's).

    Examples:
        >>> ds = SyntheticFaces(8, seed=0)
        >>> item = ds[0]
        >>> item["image"].shape, item["image"].dtype, item["landmarks"].shape
        (torch.Size([1, 48, 48]), torch.uint8, torch.Size([68, 2]))
        >>> bool(item["landmarks_valid"]), ds.classes[int(item["label"])] in SYNTHETIC_CLASSES
        (True, True)
        >>> import numpy as np
        >>> np.array_equal(ds.images, SyntheticFaces(8, seed=0).images)
        True
    """

    def __init__(
        self,
        num_samples: int,
        size: int = 48,
        seed: int = 0,
        *,
        invalid_fraction: float = 0.0,
        expression_strength: tuple[float, float] = (0.35, 1.0),
        rotation: float = 15.0,
        scale: tuple[float, float] = (0.85, 1.1),
        shift: float = 3.0,
        noise: tuple[float, float] = (4.0, 16.0),
        identity: float = 1.0,
        class_weights: Sequence[float] | None = None,
        transform: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        super().__init__(transform)
        _check_options(num_samples, size, expression_strength, scale, class_weights, noise)
        if not 0.0 <= invalid_fraction <= 1.0:
            raise ValueError(f"invalid_fraction must be in [0, 1], got {invalid_fraction}")
        self.size, self.seed = size, seed
        g = torch.Generator().manual_seed(seed)
        labels, params = self._draw_parameters(
            g, num_samples, expression_strength, rotation, scale, shift, noise, identity,
            class_weights,
        )
        # Noise is drawn once for the whole set so that rendering in chunks changes nothing.
        pixel_noise = torch.randn(num_samples, size * size, generator=g)
        landmarks, images = [], []
        for start in range(0, num_samples, 256):
            chunk = {k: v[start:start + 256] for k, v in params.items()}
            pts, img = self._render(chunk, pixel_noise[start:start + 256], size)
            landmarks.append(pts)
            images.append(img)
        points = torch.cat(landmarks)
        invalid = torch.rand(num_samples, generator=g) < invalid_fraction
        points[invalid] = float("nan")
        self._set_arrays(torch.cat(images)[:, 0].numpy(), labels.numpy(), SYNTHETIC_CLASSES)
        self.landmarks = points.numpy().astype(np.float32)
        self.landmarks_valid = (~invalid).numpy()

    @staticmethod
    def _draw_parameters(
        g: torch.Generator, n: int, strength: tuple[float, float], rotation: float,
        scale: tuple[float, float], shift: float, noise: tuple[float, float], identity: float,
        class_weights: Sequence[float] | None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
            return lo + (hi - lo) * torch.rand(n, *shape, generator=g)

        weights = torch.ones(len(SYNTHETIC_CLASSES)) if class_weights is None else torch.tensor(
            class_weights, dtype=torch.float32)
        labels = torch.multinomial(weights, n, replacement=True, generator=g)
        expression = _EXPRESSIONS[labels] * uniform(*strength, 1)
        # Individual faces wear every expression a little differently.
        expression = expression + 0.35 * torch.randn(n, len(_PARAM_NAMES), generator=g)
        return labels, {
            "expression": expression,
            "face": 1.0 + 0.06 * identity * torch.randn(n, 2, generator=g),  # width, height
            "feature_jitter": 0.6 * identity * torch.randn(n, 6, generator=g),
            "angle": uniform(-rotation, rotation) * math.pi / 180,
            "scale": uniform(*scale),
            "shift": uniform(-shift, shift, 2),
            "skin": uniform(70.0, 215.0),
            "contrast": uniform(0.3, 0.7),
            "background": uniform(10.0, 245.0, 2),  # two ends of a linear gradient
            "gradient_angle": uniform(0.0, 2 * math.pi),
            "clutter_centre": uniform(-4.0, 52.0, 4, 2),
            "clutter_axes": uniform(2.0, 12.0, 4, 2),
            "clutter_angle": uniform(0.0, math.pi, 4),
            "clutter_value": uniform(0.0, 255.0, 4),
            "line_ends": uniform(-4.0, 52.0, 3, 2, 2),
            "line_value": uniform(0.0, 255.0, 3),
            "noise": uniform(*noise),
            "brow_width": uniform(1.6, 2.8),
        }

    @staticmethod
    def _landmarks(p: dict[str, torch.Tensor], size: int) -> torch.Tensor:
        """The faces' 68 landmarks (N, 68, 2) at ``size`` from their drawn parameters."""
        n = p["angle"].shape[0]
        k = size / 48.0
        template = _canonical_landmarks().expand(n, -1, -1).clone()
        cx, cy = 23.5, 24.0
        e = dict(zip(_PARAM_NAMES, p["expression"].unbind(1), strict=True))
        jit = p["feature_jitter"]

        # Identity: where the features sit (face proportions are applied with the pose).
        template[:, 36:48, 1] += jit[:, 0:1]  # eye height
        template[:, 36:42, 0] -= jit[:, 1:2] / 2  # eye spacing
        template[:, 42:48, 0] += jit[:, 1:2] / 2
        template[:, 27:36, 1] += jit[:, 2:3] / 2  # nose length

        # Brows: 17–21 run outer → inner on the image-left, 22–26 inner → outer on the right.
        s = torch.linspace(0.0, 1.0, 5)
        brow_y = (
            template[:, 17:22, 1] + jit[:, 3:4] - e["raise"][:, None]
            + e["inner_drop"][:, None] * s - e["arch"][:, None] * torch.sin(math.pi * s)
        )
        template[:, 17:22, 1] = brow_y
        template[:, 22:27, 1] = brow_y.flip(1)
        template[:, 17:22, 0] += e["together"][:, None] * s
        template[:, 22:27, 0] -= e["together"][:, None] * s.flip(0)

        mouth = _mouth_points(
            mx=torch.full((n,), cx),
            my=35.0 + jit[:, 4] * 0.7,
            half_width=6.0 + jit[:, 5] * 0.5 + e["width"] * 0.8,
            corner=e["corner"],
            opening=e["open"].clamp(min=0.0),
            upper=torch.full((n,), 1.4),
            lower=torch.full((n,), 1.9),
            sneer=e["sneer"].clamp(min=0.0),
        )
        template[:, 48:68] = mouth

        # Identity (face proportions), then pose: rotate and scale about the face centre, shift;
        # finally scale to `size`.
        c, sn = torch.cos(p["angle"])[:, None], torch.sin(p["angle"])[:, None]
        x = (template[..., 0] - cx) * p["face"][:, 0:1]
        y = (template[..., 1] - cy) * p["face"][:, 1:2]
        sc = p["scale"][:, None]
        xr = sc * (c * x - sn * y) + cx + p["shift"][:, 0:1]
        yr = sc * (sn * x + c * y) + cy + p["shift"][:, 1:2]
        return torch.stack([(xr + 0.5) * k - 0.5, (yr + 0.5) * k - 0.5], -1)

    @staticmethod
    def _render(
        p: dict[str, torch.Tensor], pixel_noise: torch.Tensor, size: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = p["angle"].shape[0]
        k = size / 48.0
        cx, cy = 23.5, 24.0
        jit = p["feature_jitter"]
        c, sn = torch.cos(p["angle"])[:, None], torch.sin(p["angle"])[:, None]
        sc = p["scale"][:, None]
        pts = SyntheticFaces._landmarks(p, size)

        coords = torch.arange(size, dtype=torch.float32)
        ys, xs = torch.meshgrid(coords, coords, indexing="ij")
        grid = torch.stack([xs.flatten(), ys.flatten()], -1)[None]

        # Background: a linear gradient with a few ellipses and lines of clutter.
        ga = p["gradient_angle"]
        proj = ((grid[..., 0] - size / 2) * torch.cos(ga)[:, None]
                + (grid[..., 1] - size / 2) * torch.sin(ga)[:, None]) / size + 0.5
        bg = p["background"]
        canvas = bg[:, 0:1] + (bg[:, 1:2] - bg[:, 0:1]) * proj.clamp(0, 1)
        for i in range(p["clutter_centre"].shape[1]):
            alpha = _ellipse_coverage(grid, p["clutter_centre"][:, i] * k,
                                      p["clutter_axes"][:, i] * k, p["clutter_angle"][:, i])
            canvas = _over(canvas, alpha, p["clutter_value"][:, i])
        for i in range(p["line_ends"].shape[1]):
            alpha = _polyline_coverage(grid, p["line_ends"][:, i] * k, torch.full((n,), 1.5 * k))
            canvas = _over(canvas, alpha, p["line_value"][:, i])

        # Face and eyes are ellipses in the template, so after the (affine) identity and pose
        # maps they are exactly ellipses again: drawn analytically, their landmarks on the edge.
        def to_image(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            x = (x - cx) * p["face"][:, 0]
            y = (y - cy) * p["face"][:, 1]
            xr = sc[:, 0] * (c[:, 0] * x - sn[:, 0] * y) + cx + p["shift"][:, 0]
            yr = sc[:, 0] * (sn[:, 0] * x + c[:, 0] * y) + cy + p["shift"][:, 1]
            return torch.stack([(xr + 0.5) * k - 0.5, (yr + 0.5) * k - 0.5], -1)

        size_k = sc[:, 0] * k
        skin = p["skin"]
        dark = skin * (1.0 - p["contrast"])
        face_centre = to_image(torch.full((n,), cx), torch.full((n,), 21.0))
        face = _ellipse_coverage(
            grid, face_centre, torch.stack([16.0 * p["face"][:, 0], 19.0 * p["face"][:, 1]], -1)
            * size_k[:, None], p["angle"], lower_axis=21.0 * p["face"][:, 1] * size_k,
        )
        canvas = _over(canvas, face, skin)

        # Small features are drawn in windows on a canvas padded by a margin (discarded after),
        # so that a window never leaves the canvas.
        margin = int(16 * k) + 1
        side = size + 2 * margin
        canvas = torch.nn.functional.pad(canvas.view(n, size, size), (margin,) * 4).view(n, -1)
        eye_axes = torch.stack([3.5 * p["face"][:, 0], 1.6 * p["face"][:, 1]], -1) * size_k[:, None]
        for side_sign in (-1.0, 1.0):
            centre = to_image(cx + side_sign * (8.0 + jit[:, 1] / 2), 19.5 + jit[:, 0])
            eye = _Window(centre, int(math.ceil(6 * k)), size, margin)
            canvas = eye.paint(canvas, _ellipse_coverage(eye.points, centre, eye_axes, p["angle"]),
                               dark * 0.7)

        half = int(math.ceil(16 * k))
        brows = _Window(pts[:, 17:27].mean(1), half, size, margin)
        for brow in (pts[:, 17:22], pts[:, 22:27]):
            alpha = _polyline_coverage(brows.points, brow, p["brow_width"] * k)
            canvas = brows.paint(canvas, alpha, dark)
        nose_window = _Window(pts[:, 27:36].mean(1), int(math.ceil(9 * k)), size, margin)
        nose = torch.cat([pts[:, 27:28], pts[:, 30:36]], 1)
        canvas = nose_window.paint(
            canvas, 0.5 * _polyline_coverage(nose_window.points, nose, torch.full((n,), 1.0 * k)),
            dark)
        mouth_window = _Window(pts[:, 48:60].mean(1), int(math.ceil(13 * k)), size, margin)
        lips = _polygon_coverage(mouth_window.points, pts[:, 48:60])
        canvas = mouth_window.paint(canvas, lips, skin * (1.0 - 0.8 * p["contrast"]))
        opening = _polygon_coverage(mouth_window.points, pts[:, 60:68])
        canvas = mouth_window.paint(canvas, opening, dark * 0.35)
        canvas = canvas.view(n, side, side)[:, margin:margin + size, margin:margin + size]

        # A slight blur (a camera, not a vector drawing), then sensor noise.
        img = canvas.reshape(n, 1, size, size)
        blur = torch.tensor([0.25, 0.5, 0.25])
        img = torch.nn.functional.pad(img, (1, 1, 1, 1), mode="replicate")
        img = torch.nn.functional.conv2d(img, (blur[:, None] * blur[None]).view(1, 1, 3, 3))
        img = img + p["noise"].view(n, 1, 1, 1) * pixel_noise.view(n, 1, size, size)
        images = img.round().clamp(0, 255).to(torch.uint8)
        return pts.contiguous(), images

    def extra_repr(self) -> str:
        return f"seed={self.seed}"


def _check_options(
    num_samples: int, size: int, expression_strength: tuple[float, float],
    scale: tuple[float, float], class_weights: Sequence[float] | None,
    noise: tuple[float, float] = (0.0, 0.0),
) -> None:
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive int, got {num_samples!r}")
    if not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an int >= 16 pixels, got {size!r}")
    for name, rng in (("expression_strength", expression_strength), ("scale", scale),
                      ("noise", noise)):
        if len(rng) != 2 or rng[0] > rng[1] or rng[0] < 0:
            raise ValueError(
                f"{name} must be a (low, high) pair with 0 <= low <= high, got {rng}")
    if class_weights is not None and (
        len(class_weights) != len(SYNTHETIC_CLASSES) or min(class_weights) < 0
        or sum(class_weights) <= 0
    ):
        raise ValueError(
            f"class_weights must hold {len(SYNTHETIC_CLASSES)} non-negative values with a "
            f"positive sum, got {class_weights}"
        )


def synthetic_landmarks(
    num_samples: int,
    size: int = 48,
    seed: int = 0,
    *,
    expression_strength: tuple[float, float] = (0.35, 1.0),
    rotation: float = 15.0,
    scale: tuple[float, float] = (0.85, 1.1),
    shift: float = 3.0,
    identity: float = 1.0,
    class_weights: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The landmarks and labels of :class:`SyntheticFaces`, without drawing the images.

    For code that needs plausible 68-point faces and not pixels (testing an augmentation, a
    rasteriser or a metric): the same arguments give the same landmarks and labels as
    ``SyntheticFaces(num_samples, size, seed, ...)``, in a fraction of its time.

    Args:
        num_samples: number of faces.
        size: image side in pixels.
        seed: seed of the generator.
        expression_strength: as for :class:`SyntheticFaces`.
        rotation: as for :class:`SyntheticFaces`.
        scale: as for :class:`SyntheticFaces`.
        shift: as for :class:`SyntheticFaces`.
        identity: as for :class:`SyntheticFaces`.
        class_weights: as for :class:`SyntheticFaces`.

    Returns:
        ``(landmarks, labels)``: float32 ``(N, 68, 2)`` (x, y) with pixel centres at integers, and
        int64 ``(N,)`` class ids.

    Examples:
        >>> landmarks, labels = synthetic_landmarks(4, seed=1)
        >>> landmarks.shape, labels.shape
        ((4, 68, 2), (4,))
        >>> bool((landmarks == SyntheticFaces(4, seed=1).landmarks).all())
        True
    """
    _check_options(num_samples, size, expression_strength, scale, class_weights)
    g = torch.Generator().manual_seed(seed)
    labels, params = SyntheticFaces._draw_parameters(
        g, num_samples, expression_strength, rotation, scale, shift, (0.0, 0.0), identity,
        class_weights,
    )
    points = SyntheticFaces._landmarks(params, size)
    return points.numpy().astype(np.float32), labels.numpy()
