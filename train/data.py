"""Batches for training, drawn from a prepared dataset (``reenact prepare``).

All sampling goes through a ``torch.Generator`` that the loop seeds from (seed, rank, step), so
a run resumed from a checkpoint draws exactly the batches the uninterrupted run would have.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from reenact.errors import ReenactError

from .dataset import Dataset


@dataclass
class Batch:
    """img: [B,3,R,R] in [-1,1]; lmk68: [B,68,2] crop px; aus: [B,17]; blend: [B,52]; label: [B] int64
    (index into EXPRESSION_CLASSES); neutral: [B] bool; person: [B] int64; index: [B] dataset rows."""

    img: torch.Tensor
    lmk68: torch.Tensor
    aus: torch.Tensor
    blend: torch.Tensor
    label: torch.Tensor
    neutral: torch.Tensor
    person: torch.Tensor
    index: torch.Tensor


class TrainData:
    """One split of a dataset at one crop size, held in memory as tensors on ``device``."""

    def __init__(self, ds: Dataset, size: int, split: str = "train", device: str | torch.device = "cpu",
                 limit: int | None = None):
        if size not in ds.sizes:
            raise ReenactError(f"the dataset has crops of {list(ds.sizes)} px, this model needs {size}: prepare it "
                               f"again with --sizes including {size}")
        idx = np.asarray(ds.split(split))
        if len(idx) == 0 and split == "train":
            raise ReenactError(f"the dataset at {ds.path} has no training frames")
        if limit is not None:
            idx = idx[:limit]
        self.ds = ds
        self.rows = idx
        self.size = size
        self.device = torch.device(device)
        crops = ds.crops(size)[idx]
        self.img = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).contiguous().to(self.device)
        self.lmk68 = torch.from_numpy(np.asarray(ds.landmarks68(size)[idx], np.float32)).to(self.device)
        self.aus = torch.from_numpy(np.asarray(ds["aus"][idx], np.float32)).to(self.device)
        self.blend = torch.from_numpy(np.asarray(ds["blendshapes"][idx], np.float32)).to(self.device)
        self.label = torch.from_numpy(np.asarray(ds["label"][idx], np.int64)).to(self.device)
        self.neutral = torch.from_numpy(np.asarray(ds["neutral"][idx], bool)).to(self.device)
        self.person = torch.from_numpy(np.asarray(ds["person"][idx], np.int64)).to(self.device)
        self._by_person = [np.nonzero(self.person.cpu().numpy() == p)[0] for p in np.unique(self.person.cpu().numpy())]

    def __len__(self) -> int:
        return len(self.rows)

    def target_input(self, index: torch.Tensor):
        """Frames as the models' ``TargetInput`` (batched)."""
        from reenact.models.base import TargetInput

        b = self.batch(index)
        return TargetInput(b.img, b.lmk68, b.aus, b.blend, b.label, b.neutral)

    def batch(self, index: torch.Tensor) -> Batch:
        i = index.to(self.device)
        img = self.img[i].float() * (2.0 / 255.0) - 1.0
        return Batch(img, self.lmk68[i], self.aus[i], self.blend[i], self.label[i], self.neutral[i], self.person[i], i)

    # -- sampling ---------------------------------------------------------------------------
    def frames(self, n: int, g: torch.Generator) -> torch.Tensor:
        """``n`` frame indices drawn uniformly (with replacement)."""
        return torch.randint(len(self), (n,), generator=g)

    def require_pairs(self, model_id: str) -> None:
        if not any(len(p) >= 2 for p in self._by_person):
            raise ReenactError(f"{model_id} trains on pairs of frames of the same person, but every person in this "
                               f"dataset has a single frame: prepare it from videos (or folders of one person's "
                               f"photos) instead of single photos")

    def pairs(self, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` pairs (a, b) of distinct frames of the same person."""
        groups = [p for p in self._by_person if len(p) >= 2]
        gi = torch.randint(len(groups), (n,), generator=g).tolist()
        a, b = [], []
        for k in gi:
            grp = groups[k]
            i, j = torch.randperm(len(grp), generator=g)[:2].tolist()
            a.append(grp[i])
            b.append(grp[j])
        return torch.tensor(a), torch.tensor(b)

    def where(self, mask: torch.Tensor, n: int, g: torch.Generator, what: str) -> torch.Tensor:
        pool = torch.nonzero(mask.cpu()).flatten()
        if len(pool) == 0:
            raise ReenactError(f"the dataset has no {what} frames, which this model needs")
        return pool[torch.randint(len(pool), (n,), generator=g)]
