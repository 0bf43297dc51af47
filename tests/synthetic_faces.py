import math, torch
def frontal_faces(n, size=48, jitter=0.6, generator=None):
    """Random frontal 68-point faces (x, y), image-left brow at 17-21."""
    g = generator
    pts = torch.zeros(68, 2, dtype=torch.float64)
    cx = (size - 1) / 2
    s = size / 48
    t = torch.linspace(math.pi, 0, 17, dtype=torch.float64)
    pts[0:17] = torch.stack([cx + 15 * t.cos(), 20 + 20 * t.sin()], 1)
    bx = torch.linspace(-12.5, -3.5, 5, dtype=torch.float64)
    pts[17:22] = torch.stack([cx + bx, 14 - 2 * torch.sin((bx + 12.5) / 9 * math.pi)], 1)
    pts[22:27] = torch.stack([cx - bx.flip(0), pts[17:22, 1].flip(0)], 1)
    pts[27:31] = torch.stack([torch.full((4,), cx), torch.linspace(18, 27, 4)], 1)
    pts[31:36] = torch.stack([cx + torch.linspace(-3.5, 3.5, 5), torch.tensor([29.0, 29.6, 30, 29.6, 29])], 1)
    e = torch.linspace(math.pi, -math.pi, 7, dtype=torch.float64)[:-1]
    eye = torch.stack([3.5 * e.cos(), -1.5 * e.sin()], 1)
    pts[36:42] = eye * torch.tensor([-1, 1]) + torch.tensor([cx - 8, 19.0])
    pts[42:48] = eye * torch.tensor([-1, 1]) + torch.tensor([cx + 8, 19.0])
    l = torch.linspace(math.pi, -math.pi, 13, dtype=torch.float64)[:-1]
    pts[48:60] = torch.stack([cx + 8 * l.cos(), 36 - 3.5 * l.sin()], 1)
    il = torch.linspace(math.pi, -math.pi, 9, dtype=torch.float64)[:-1]
    pts[60:68] = torch.stack([cx + 5 * il.cos(), 36 - 1.2 * il.sin()], 1)
    pts = (pts - cx) * s + cx
    scale = 0.85 + 0.2 * torch.rand(n, 1, 1, generator=g, dtype=torch.float64)
    move = (torch.rand(n, 1, 2, generator=g, dtype=torch.float64) - 0.5) * 3
    noise = torch.randn(n, 68, 2, generator=g, dtype=torch.float64) * jitter
    return ((pts - cx) * scale + cx + move + noise).float()
