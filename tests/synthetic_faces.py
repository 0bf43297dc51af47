"""Random synthetic frontal 68-point faces for tests (no data needed)."""

from __future__ import annotations

import math

import torch


def frontal_faces(
    n: int, size: int = 48, jitter: float = 0.6, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(n, 68, 2) float32 frontal faces in a size x size image; image-left brow at 17-21."""
    pts = torch.zeros(68, 2, dtype=torch.float64)
    cx = (size - 1) / 2
    t = torch.linspace(math.pi, 0, 17, dtype=torch.float64)
    pts[0:17] = torch.stack([cx + 15 * t.cos(), 20 + 20 * t.sin()], 1)
    bx = torch.linspace(-12.5, -3.5, 5, dtype=torch.float64)
    pts[17:22] = torch.stack([cx + bx, 14 - 2 * torch.sin((bx + 12.5) / 9 * math.pi)], 1)
    pts[22:27] = torch.stack([cx - bx.flip(0), pts[17:22, 1].flip(0)], 1)
    pts[27:31] = torch.stack([torch.full((4,), cx), torch.linspace(18, 27, 4)], 1)
    pts[31:36] = torch.stack(
        [cx + torch.linspace(-3.5, 3.5, 5), torch.tensor([29.0, 29.6, 30, 29.6, 29])], 1
    )
    e = torch.linspace(math.pi, -math.pi, 7, dtype=torch.float64)[:-1]
    eye = torch.stack([-3.5 * e.cos(), -1.5 * e.sin()], 1)
    pts[36:42] = eye + torch.tensor([cx - 8, 19.0])
    pts[42:48] = eye + torch.tensor([cx + 8, 19.0])
    lip = torch.linspace(math.pi, -math.pi, 13, dtype=torch.float64)[:-1]
    pts[48:60] = torch.stack([cx + 8 * lip.cos(), 36 - 3.5 * lip.sin()], 1)
    inner = torch.linspace(math.pi, -math.pi, 9, dtype=torch.float64)[:-1]
    pts[60:68] = torch.stack([cx + 5 * inner.cos(), 36 - 1.2 * inner.sin()], 1)
    pts = (pts - cx) * (size / 48) + cx
    scale = 0.85 + 0.2 * torch.rand(n, 1, 1, generator=generator, dtype=torch.float64)
    move = (torch.rand(n, 1, 2, generator=generator, dtype=torch.float64) - 0.5) * 3
    noise = torch.randn(n, 68, 2, generator=generator, dtype=torch.float64) * jitter
    return ((pts - cx) * scale + cx + move + noise).float()
