"""Self-supervised warp pairs for the warp-guided generators (as first-order motion trains).

A pair is two frames u, v of one clip. In u's aligned crop (u plays the target photo):

* ``target``: frame u's crop, what the per-target engine encodes;
* ``warped``: u's crop moved by the mesh warp to v's mesh (both meshes mapped into u's crop), its
  opened mouth filled as the runtime fills it (``mouth``): with the driver's own interior (the
  runtime's default, ``reenact.geometry.warp.DriverMouth``; here the driver is v itself, so the
  interior is v's, as a live driver's mouth is that driver's), or with the ``warp`` model's plain
  dark one (``mouth="dark"``); with ``hole``, the warp's hole mask (where v opens a mouth u shows
  closed);
* ``truth``: frame v in u's crop (v's own crop re-aligned by the similarity between the two);
* ``free``: where the recipes let the attention generate at little cost (training only, never a
  network input): the hole, and at 80% the regions that carry expression a warp cannot show,
  v's mouth and eyes (their hulls, dilated). Elsewhere (skin, hair, background) what differs
  between two frames of a clip (light, hair, the background) cannot be predicted for a new
  person: a generator that learns it there learns its training people, not expressions;
* ``lmk68``: v's 68 points in u's crop pixels (the landmark models' condition), and v's labels,
  AUs and blendshapes for the other conditions.

The generator learns to turn ``warped`` into ``truth``: to keep what the warp got right and to
paint what it cannot show. Nothing beyond the prepared dataset's tracking is needed. The warp is
the runtime's own (``reenact.geometry.warp``), so training and inference see the same inputs.

With ``augment`` (training), every pair gets its own colour jitter (a gain per channel and an
offset, the same for target, warped and truth): with a few dozen people to learn from, the
generators must not learn their skin tones and lighting as the only ones there are.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from reenact.errors import ReenactError
from reenact.geometry import apply_affine, to_ibug68
from reenact.choices import MOUTH_MODES
from reenact.geometry.warp import (MouthColours, backward_map, blend_interior, extend_mesh, fill_mouth, hole_mask,
                                   lips_box, mouth_height, remap)

from .data import TrainData
from .dataset import Dataset


@dataclass
class WarpBatch:
    """target / warped / truth: [B,3,R,R] in [-1,1]; hole, free: [B,1,R,R] in [0,1]; lmk68: [B,68,2] crop px
    (v in u's crop); label [B] int64, aus [B,17], blend [B,52]: frame v's; a, b: [B] the pair's rows."""

    target: torch.Tensor
    warped: torch.Tensor
    hole: torch.Tensor
    truth: torch.Tensor
    free: torch.Tensor
    lmk68: torch.Tensor
    label: torch.Tensor
    aus: torch.Tensor
    blend: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor


def _h(M: np.ndarray) -> np.ndarray:
    return np.vstack([np.asarray(M, np.float64), [0.0, 0.0, 1.0]])


class WarpPairs:
    """Pairs of frames of one clip and their warps, for one split of a dataset (``TrainData``)."""

    def __init__(self, data: TrainData, ds: Dataset, augment: bool = False, mouth: str = "driver"):
        if mouth not in MOUTH_MODES:
            raise ValueError(f"mouth must be one of {', '.join(MOUTH_MODES)}, got {mouth!r}")
        self.augment, self.mouth = augment, mouth
        rows = np.asarray(data.rows)
        self.data = data
        self.size = data.size
        self.mesh = np.asarray(ds.landmarks[rows][:, :, :2], np.float64)
        self.M = np.asarray(ds[f"affine_{data.size}"][rows], np.float64)
        self.crops = data.img.permute(0, 2, 3, 1).cpu().numpy()  # [N,R,R,3] uint8
        clip = np.asarray(ds["clip"])[rows]
        self.groups = [np.flatnonzero(clip == c) for c in np.unique(clip)]
        self.groups = [g for g in self.groups if len(g) >= 2]
        if not self.groups:
            raise ReenactError("warp-guided training needs clips with at least two frames")
        self.step = 1 if self.size <= 64 else 2

    def sample(self, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` pairs (u, v) of distinct frames of one clip (clips drawn uniformly)."""
        gi = torch.randint(len(self.groups), (n,), generator=g).tolist()
        a, b = [], []
        for k in gi:
            grp = self.groups[k]
            i, j = torch.randperm(len(grp), generator=g)[:2].tolist()
            a.append(int(grp[i]))
            b.append(int(grp[j]))
        return torch.tensor(a), torch.tensor(b)

    def partners(self, index: torch.Tensor, offset: int = 7) -> torch.Tensor:
        """For each frame, the frame ``offset`` places later in its own clip (wrapping): fixed pairs
        for sample grids."""
        out = []
        for i in index.tolist():
            grp = next(g for g in self.groups if i in g)
            k = int(np.flatnonzero(grp == i)[0])
            out.append(int(grp[(k + offset) % len(grp)]))
        return torch.tensor(out)

    def one(self, u: int, v: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(warped [R,R,3] uint8, hole [R,R] float32, truth [R,R,3] uint8, lmk68 [68,2]) of the pair (u, v)."""
        R = self.size
        Mu = self.M[u]
        src = apply_affine(Mu, self.mesh[u])
        dst = apply_affine(Mu, self.mesh[v])
        s, d = extend_mesh(src, dst)
        mx, my = backward_map(s, d, (R, R), (0, 0), self.step)
        warped = remap(self.crops[u], mx, my)
        hole = hole_mask(src, dst, (R, R))
        T = (_h(Mu) @ np.linalg.inv(_h(self.M[v])))[:2]  # v's crop -> u's crop
        truth = cv2.warpAffine(self.crops[v], T, (R, R), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if hole.any():  # the opened mouth filled, as the runtime's warped crop is
            fill_mouth(warped, hole, MouthColours.from_photo(self.crops[u], src), mouth_height(dst))
            box = lips_box(dst, (R, R))
            if self.mouth == "driver" and box[2] > box[0] and box[3] > box[1]:
                # the driver is v, already in u's crop: DriverMouth's fan maps v's opening onto
                # itself, so its interior is v's own pixels there
                blend_interior(warped, hole, truth[box[1]:box[3], box[0]:box[2]].astype(np.float32), 1.0, box)
        lmk = apply_affine(Mu, to_ibug68(self.mesh[v]))
        return warped, hole, truth, lmk.astype(np.float32)

    def free(self, lmk68: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """[R,R] float32: 1 in the hole, 0.8 in the dilated hulls of the mouth and the eyes of
        ``lmk68`` (crop pixels), 0 elsewhere."""
        R = self.size
        m = np.zeros((R, R), np.uint8)
        for part in (lmk68[48:60], np.concatenate([lmk68[17:22], lmk68[36:42]]),
                     np.concatenate([lmk68[22:27], lmk68[42:48]])):  # the mouth; each eye with its brow
            hull = cv2.convexHull(part.astype(np.float32))[:, 0]
            cv2.fillConvexPoly(m, np.round(hull).astype(np.int32), 1)
        k = max(3, (R // 16) | 1)
        m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        return np.maximum(hole, 0.8 * m.astype(np.float32))

    def batch(self, a: torch.Tensor, b: torch.Tensor, g: torch.Generator | None = None) -> WarpBatch:
        """The pairs (a[i], b[i]); with ``augment``, colour-jittered through ``g``."""
        parts = [self.one(int(u), int(v)) for u, v in zip(a.tolist(), b.tolist())]
        dev = self.data.device

        def img(x):
            return torch.from_numpy(np.stack(x)).permute(0, 3, 1, 2).float().to(dev) * (2.0 / 255.0) - 1.0

        bu, bv = self.data.batch(a), self.data.batch(b)
        target, warped, truth = bu.img, img([p[0] for p in parts]), img([p[2] for p in parts])
        if self.augment and g is not None:
            n = len(parts)
            gain = (1.0 + 0.15 * (2 * torch.rand(n, 3, 1, 1, generator=g) - 1)).to(dev)
            offset = (0.16 * (2 * torch.rand(n, 1, 1, 1, generator=g) - 1)).to(dev)
            target, warped, truth = ((x * gain + offset).clamp(-1, 1) for x in (target, warped, truth))
        free = np.stack([self.free(p[3], p[1]) for p in parts])
        return WarpBatch(
            target=target, warped=warped,
            hole=torch.from_numpy(np.stack([p[1] for p in parts]))[:, None].to(dev),
            truth=truth, free=torch.from_numpy(free)[:, None].to(dev), lmk68=torch.from_numpy(np.stack([p[3] for p in parts])).to(dev),
            label=bv.label, aus=bv.aus, blend=bv.blend, a=a, b=b)
