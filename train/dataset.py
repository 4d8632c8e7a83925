"""Training-data cache: MediaPipe run once over face videos/photos (MODELS.md 7, "Shared preprocessing").

``prepare_dataset`` tracks every ``every``-th frame of each input clip and stores, per kept frame,
aligned crops at each size, the 478-point mesh, blendshapes, AUs (MODELS.md 5.7), head pose,
rule pseudo-labels and the neutral flag (MODELS.md 2.7, baseline = ``clip_baseline`` of the clip),
clip / person / frame index and time. ``load_dataset`` memory-maps it back.

On-disk format (a folder, format "reenact-dataset", version 3)::

    meta.json                 format, version, sizes, counts, clips, persons, split, names, template
    crops_<R>.jpg.bin.npy     [B]       uint8   aligned crops (DEFAULT_TEMPLATE unless given), each a
                                                JPEG (quality 92) of the RGB crop, concatenated
    crops_<R>_offsets.npy     [N+1]     int64   crop i is bytes offsets[i]:offsets[i+1] of the blob
    affine_<R>.npy            [N,2,3]   float32 source-frame pixels -> crop pixels
    landmarks.npy             [N,478,3] int16   mesh in source-frame pixels (z in x-pixel units),
                                                fixed point: value / meta["landmark_scale"] (8 = 1/8 px)
    blendshapes.npy           [N,52]    float32
    aus.npy                   [N,17]    float32 in [0,1], ordered as meta["au_names"]
    pose.npy                  [N,3]     float32 yaw, pitch, roll (degrees)
    pose44.npy                [N,4,4]   float32 MediaPipe facial transformation matrix
    label.npy                 [N]       int8    index into meta["class_names"] (0 = neutral)
    neutral.npy               [N]       bool
    clip.npy, person.npy      [N]       int32   index into meta["clips"] / meta["persons"]
    frame.npy                 [N]       int32   frame index in the source clip
    t.npy                     [N]       float64 seconds in the source clip

Plain ``.npy`` files (not ``.npz``) so ``np.load(mmap_mode="r")`` maps them without reading.
``Dataset.crops(R)`` decodes all crops of a size once (thread pool) into an in-memory
``[N,R,R,3]`` uint8 array; ``Dataset.crop(R, i)`` decodes one. ``Dataset.landmarks`` is the float32
mesh; ``Dataset.landmarks68(R)`` (also ``ds["lmk68_R"]``) derives the crop's iBUG points from it.
The folder is built beside ``out`` and moved into place only when complete.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from reenact.errors import InputFileError, NoFaceError
from reenact.geometry import (AU_NAMES, DEFAULT_TEMPLATE, EXPRESSION_CLASSES, Aligner, action_units, clip_baseline,
                              euler_angles, is_neutral, pose_rotation, pseudo_label, to_ibug68)
from reenact.io.images import is_image_path, load_image
from reenact.io.video import VideoReader, is_video_path, list_images
from reenact.tracking import BLENDSHAPE_NAMES, FaceTracker

log = logging.getLogger(__name__)

FORMAT = "reenact-dataset"
VERSION = 3
LANDMARK_SCALE = 8.0  # landmarks are stored as int16 in 1/8 px (coarser only for frames over 4095 px)
JPEG_QUALITY = 92
META = "meta.json"
FOLDER_FPS = 30.0  # nominal time step for a folder of images
SPLITS = ("train", "val")

# per-frame arrays that do not depend on the crop size: name -> (dtype, trailing shape)
_COMMON = {
    "landmarks": (np.int16, (478, 3)), "blendshapes": (np.float32, (52,)), "aus": (np.float32, (len(AU_NAMES),)),
    "pose": (np.float32, (3,)), "pose44": (np.float32, (4, 4)), "label": (np.int8, ()), "neutral": (np.bool_, ()),
    "clip": (np.int32, ()), "person": (np.int32, ()), "frame": (np.int32, ()), "t": (np.float64, ()),
}


def _sized(size: int) -> dict[str, tuple[type, tuple[int, ...]]]:
    """Per-frame arrays of one crop size (the crops themselves are stored as a JPEG blob)."""
    return {f"affine_{size}": (np.float32, (2, 3))}


def _blob_key(size: int) -> str:
    return f"crops_{size}.jpg.bin"


def _offsets_key(size: int) -> str:
    return f"crops_{size}_offsets"


def _encode_jpeg(rgb: np.ndarray) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding of a crop failed")
    return buf.reshape(-1)


def _decode_jpeg(buf: np.ndarray, size: int, out: np.ndarray | None = None) -> np.ndarray:
    bgr = cv2.imdecode(np.ascontiguousarray(buf), cv2.IMREAD_COLOR)
    if bgr is None or bgr.shape != (size, size, 3):
        raise InputFileError(f"a stored {size}px crop does not decode to {size}x{size}x3; prepare the dataset again")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=out)


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class _Clip:
    kind: str              # "video" | "photo" | "images"
    source: Path           # the video, the photo, or the folder
    files: tuple[Path, ...] = ()  # images of a folder clip


def _discover(inputs: Sequence[str | os.PathLike]) -> list[_Clip]:
    """Clips of the inputs: a video or photo is one clip; folders are searched recursively, each video
    found is a clip and the images directly inside one folder form one clip."""
    clips: list[_Clip] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            found = []
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                files = sorted(f for f in files if not f.startswith("."))
                r = Path(root)
                found += [_Clip("video", r / f) for f in files if is_video_path(f)]
                if any(is_image_path(f) for f in files):
                    found.append(_Clip("images", r, tuple(list_images(r))))  # natural order: img2 < img10
            if not found:
                raise InputFileError(f"folder {p} holds no videos or images")
            clips += found
        elif not p.exists():
            raise InputFileError(f"input not found: {p}")
        elif is_image_path(p):
            clips.append(_Clip("photo", p))
        else:
            if not is_video_path(p):
                log.warning("%s has no known video extension; trying to read it as a video", p)
            clips.append(_Clip("video", p))
    seen: set[Path] = set()
    unique = []
    for c in clips:  # the same file given twice (or a file and its folder) is one clip
        key = c.source.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(c)
    return unique


def _clip_names(clips: list[_Clip]) -> list[str]:
    names, used = [], set()
    for c in clips:
        base = c.source.stem if c.kind != "images" else c.source.name
        name, k = base, 2
        while name in used:
            name, k = f"{base}-{k}", k + 1
        used.add(name)
        names.append(name)
    return names


@dataclass(frozen=True)
class _Item:
    index: int
    t: float
    image: np.ndarray


def _items(clip: _Clip, every: int) -> tuple[int | None, Iterator[_Item]]:
    """(frames in the clip if known, the frames to track)."""
    if clip.kind == "photo":
        return 1, iter([_Item(0, 0.0, load_image(clip.source))])
    if clip.kind == "images":
        files = clip.files
        return len(files), (_Item(i, i / FOLDER_FPS, load_image(f)) for i, f in enumerate(files) if i % every == 0)
    reader = VideoReader(clip.source)

    def gen() -> Iterator[_Item]:
        with reader:
            for fr in reader:
                if fr.index % every == 0:
                    yield _Item(fr.index, fr.t, fr.image)
    return reader.num_frames, gen()


# --------------------------------------------------------------------------- prepare


@dataclass(frozen=True)
class DatasetInfo:
    path: Path
    clips: int
    persons: int
    frames_seen: int           # frames tracked (every ``every``-th)
    frames_kept: int           # with a face
    frames_skipped: int        # no face
    train_frames: int
    val_frames: int
    train_persons: int
    val_persons: int
    clips_without_face: tuple[str, ...]
    bytes: int
    seconds: float

    @property
    def megabytes(self) -> float:
        return self.bytes / 1e6


def _split_persons(persons: list[str], val_fraction: float, seed: int) -> dict[str, str]:
    """Deterministic identity split; with >= 2 persons and 0 < val_fraction < 1 each side gets one."""
    n = len(persons)
    n_val = int(round(val_fraction * n))
    if n >= 2:
        if val_fraction > 0:
            n_val = max(n_val, 1)
        if val_fraction < 1:
            n_val = min(n_val, n - 1)
    order = np.random.default_rng(seed).permutation(n)
    val = {persons[i] for i in order[:n_val]}
    return {p: ("val" if p in val else "train") for p in persons}


def _check_replaceable(out: Path) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise InputFileError(f"{out} exists and is not a dataset folder; choose another --out")
    if any(out.iterdir()) and not (out / META).is_file():
        raise InputFileError(f"{out} is a non-empty folder that is not a reenact dataset (no {META}); "
                             "refusing to replace it, choose another --out")


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def prepare_dataset(inputs: Sequence[str | os.PathLike], out: str | os.PathLike, *, sizes: Sequence[int] = (64, 128),
                    every: int = 1, val_fraction: float = 0.2, seed: int = 0,
                    face_model: str | os.PathLike | None = None, progress: bool = True,
                    persons: Mapping[str, str] | None = None, template: np.ndarray | None = None) -> DatasetInfo:
    """Track ``inputs`` (videos, photos, folders) and write a dataset folder at ``out``.

    ``persons`` maps a clip's name (file stem, or folder name for an image folder) or its source
    path to a person name; by default each clip is its own person. Raises ``NoFaceError`` when no
    frame of any input has a face (nothing is written), ``InputFileError`` for missing inputs.
    """
    t_start = time.perf_counter()
    out = Path(out)
    sizes = tuple(sorted({int(s) for s in sizes}))
    if not sizes or min(sizes) < 8:
        raise ValueError(f"crop sizes must be >= 8, got {sizes}")
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError(f"val_fraction must be in [0, 1], got {val_fraction}")
    if not inputs:
        raise InputFileError("no inputs given")
    clips = _discover(inputs)
    names = _clip_names(clips)
    persons = dict(persons or {})
    person_of = [persons.get(n, persons.get(str(c.source), n)) for c, n in zip(clips, names)]
    _check_replaceable(out)
    aligners = [Aligner(s, template) for s in sizes]
    tmpl = aligners[0].template

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        cols: dict[str, list[np.ndarray]] = {k: [] for k in _COMMON}
        for a in aligners:
            cols.update({k: [] for k in _sized(a.size)})
            cols[_blob_key(a.size)] = []
        clip_meta = []
        image_tracker: FaceTracker | None = None
        try:
            for ci, (clip, name) in enumerate(zip(clips, names)):
                total, items = _items(clip, every)
                if clip.kind == "video":
                    tracker = FaceTracker(face_model, mode="video", max_faces=1)
                else:
                    if image_tracker is None:
                        image_tracker = FaceTracker(face_model, mode="image", max_faces=1)
                    tracker = image_tracker
                seen = 0
                rec: dict[str, list] = {k: [] for k in ("landmarks", "blendshapes", "pose44", "frame", "t")}
                try:
                    bar_total = None if total is None else (total + every - 1) // every
                    for item in tqdm(items, total=bar_total, unit="frame", desc=f"prepare {name}",
                                     disable=None if progress else True, leave=False):
                        seen += 1
                        trk = tracker.track(item.image, item.t if clip.kind == "video" else None)
                        face = trk.primary
                        if face is None:
                            continue
                        lmk = np.asarray(face.landmarks, np.float32)
                        for a in aligners:
                            crop = a.crop(item.image, lmk)
                            cols[_blob_key(a.size)].append(_encode_jpeg(crop.image))
                            cols[f"affine_{a.size}"].append(crop.M.astype(np.float32))
                        rec["landmarks"].append(lmk)
                        rec["blendshapes"].append(np.asarray(face.blendshapes, np.float32))
                        rec["pose44"].append(np.asarray(face.transform, np.float32))
                        rec["frame"].append(item.index)
                        rec["t"].append(item.t)
                finally:
                    if tracker is not image_tracker:
                        tracker.close()
                kept = len(rec["frame"])
                entry = {"id": ci, "name": name, "source": str(clip.source), "kind": clip.kind,
                         "person": person_of[ci], "frames_total": total, "frames_seen": seen,
                         "frames_kept": kept, "frames_skipped": seen - kept, "no_face": kept == 0}
                if kept == 0:
                    msg = f"no face found in {clip.source} ({seen} frame(s) tracked); it adds nothing to the dataset"
                    warnings.warn(msg, stacklevel=2)
                    log.warning(msg)
                    entry["baseline"] = None
                    clip_meta.append(entry)
                    continue
                lmk = np.stack(rec["landmarks"])
                blend = np.stack(rec["blendshapes"])
                pose44 = np.stack(rec["pose44"])
                base = clip_baseline(blend)
                entry["baseline"] = [round(float(v), 6) for v in base]
                clip_meta.append(entry)
                cols["landmarks"].append(lmk)
                cols["blendshapes"].append(blend)
                cols["aus"].append(action_units(blend, lmk))
                cols["pose"].append(np.array([euler_angles(pose_rotation(m)) for m in pose44], np.float32))
                cols["pose44"].append(pose44)
                cols["label"].append(pseudo_label(blend, base).astype(np.int8))
                cols["neutral"].append(is_neutral(blend, base))
                cols["clip"].append(np.full(kept, ci, np.int32))
                cols["person"].append(np.full(kept, -1, np.int32))  # filled below, once persons are known
                cols["frame"].append(np.asarray(rec["frame"], np.int32))
                cols["t"].append(np.asarray(rec["t"], np.float64))
        finally:
            if image_tracker is not None:
                image_tracker.close()

        n = sum(len(x) for x in cols["frame"])
        if n == 0:
            raise NoFaceError(f"no face was found in any frame of {len(clips)} input clip(s) "
                              f"({', '.join(str(c.source) for c in clips[:5])}{', ...' if len(clips) > 5 else ''}); "
                              f"nothing was written to {out}")

        person_names = sorted({m["person"] for m in clip_meta if m["frames_kept"]})
        pid = {p: i for i, p in enumerate(person_names)}
        clip_arr = np.concatenate(cols["clip"])
        cols["person"] = [np.array([pid[clip_meta[c]["person"]] for c in clip_arr], np.int32)]
        split = _split_persons(person_names, val_fraction, seed)
        arrays_meta = {}
        spec = dict(_COMMON)
        for a in aligners:
            spec.update(_sized(a.size))
        lmk_scale = LANDMARK_SCALE
        for key, (dtype, shape) in spec.items():
            parts = cols[key]
            arr = np.concatenate(parts) if key in _COMMON else np.stack(parts)  # per clip / per frame
            if key == "landmarks":  # fixed point: 1/8 px, or coarser if a frame is over 4095 px
                lmk_scale = min(LANDMARK_SCALE, 32767.0 / max(1.0, float(np.abs(arr).max())))
                arr = np.round(arr * lmk_scale)
            arr = np.ascontiguousarray(arr.reshape((n, *shape)).astype(dtype, copy=False))
            np.save(tmp / f"{key}.npy", arr, allow_pickle=False)
            arrays_meta[key] = {"shape": list(arr.shape), "dtype": arr.dtype.str}
            cols[key] = []  # free memory as we go
        for a in aligners:
            bufs = cols.pop(_blob_key(a.size))
            offsets = np.zeros(n + 1, np.int64)
            offsets[1:] = np.cumsum([len(b) for b in bufs])
            blob = np.concatenate(bufs) if bufs else np.zeros(0, np.uint8)
            for key, arr in ((_blob_key(a.size), blob), (_offsets_key(a.size), offsets)):
                np.save(tmp / f"{key}.npy", arr, allow_pickle=False)
                arrays_meta[key] = {"shape": list(arr.shape), "dtype": arr.dtype.str}
        person_arr = np.load(tmp / "person.npy")
        in_val = np.array([split[p] == "val" for p in person_names], bool)[person_arr]
        kept_total = int(n)
        skipped_total = sum(m["frames_skipped"] for m in clip_meta)
        counts = {"clips": len(clips), "persons": len(person_names), "frames_seen": kept_total + skipped_total,
                  "frames_kept": kept_total, "frames_skipped": skipped_total,
                  "train": int((~in_val).sum()), "val": int(in_val.sum()),
                  "train_persons": sum(v == "train" for v in split.values()),
                  "val_persons": sum(v == "val" for v in split.values()),
                  "clips_without_face": sum(m["no_face"] for m in clip_meta)}
        meta = {
            "format": FORMAT, "version": VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "sizes": list(sizes), "every": every, "val_fraction": val_fraction, "seed": seed,
            "face_model": None if face_model is None else str(face_model),
            "counts": counts, "clips": clip_meta, "persons": person_names, "split": split,
            "blendshape_names": list(BLENDSHAPE_NAMES), "au_names": list(AU_NAMES),
            "class_names": list(EXPRESSION_CLASSES), "template": np.asarray(tmpl, float).tolist(),
            "template_is_default": bool(np.allclose(tmpl, DEFAULT_TEMPLATE)),
            "arrays": arrays_meta, "crops": {"codec": "jpeg", "quality": JPEG_QUALITY},
            "landmark_scale": lmk_scale,
        }
        (tmp / META).write_text(json.dumps(meta, indent=1))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes an owner-only folder
        nbytes = _du(tmp)
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return DatasetInfo(out, len(clips), len(person_names), counts["frames_seen"], kept_total, skipped_total,
                       counts["train"], counts["val"], counts["train_persons"], counts["val_persons"],
                       tuple(m["name"] for m in clip_meta if m["no_face"]), nbytes, time.perf_counter() - t_start)


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def _move_into_place(tmp: Path, out: Path) -> None:
    """``os.replace`` the finished folder onto ``out``; an existing dataset is first moved aside
    (a directory cannot be renamed onto a non-empty one) and deleted only after the swap."""
    _check_replaceable(out)  # again: it may have appeared while we were tracking
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / "d")
    try:
        os.replace(tmp, out)
    except BaseException:
        if old is not None:
            with contextlib.suppress(OSError):
                os.replace(old / "d", out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- load


@dataclass
class Dataset:
    """A prepared dataset; arrays are memory-mapped (read-only). Crops are JPEG-decoded on demand:
    ``crops(R)`` (also ``ds["crops_R"]``) decodes all of a size once and keeps them in memory."""

    path: Path
    meta: dict
    arrays: dict[str, np.ndarray] = field(repr=False)
    _decoded: dict[int | str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.meta["counts"]["frames_kept"])

    def _crop_size(self, name: str) -> int | None:
        if name.startswith("crops_") and name[6:].isdigit() and int(name[6:]) in self.meta.get("sizes", ()):
            return int(name[6:])
        return None

    def __getitem__(self, name: str) -> np.ndarray:
        if name == "landmarks":
            return self.landmarks
        if name.startswith("lmk68_") and name[6:].isdigit():
            return self.landmarks68(int(name[6:]))
        try:
            return self.arrays[name]
        except KeyError:
            size = self._crop_size(name)
            if size is not None:
                return self.crops(size)
            raise KeyError(f"no array {name!r} in {self.path}; have {sorted(self.arrays)}") from None

    def __getattr__(self, name: str) -> np.ndarray:
        d = self.__dict__
        arrays = d.get("arrays", {})
        if name in arrays:
            return arrays[name]
        if "meta" in d and self._crop_size(name) is not None:
            return self.crops(int(name[6:]))
        raise AttributeError(name)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(self.meta["sizes"])

    @property
    def persons(self) -> list[str]:
        return list(self.meta["persons"])

    @property
    def clips(self) -> list[dict]:
        return list(self.meta["clips"])

    @property
    def template(self) -> np.ndarray:
        return np.asarray(self.meta["template"], np.float64)

    def _blob(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        key = _blob_key(size)
        if key not in self.arrays:
            raise KeyError(f"no crops of size {size} in {self.path}; have sizes {list(self.sizes)}")
        return self.arrays[key], self.arrays[_offsets_key(size)]

    def crop(self, size: int, i: int) -> np.ndarray:
        """Crop ``i`` of size ``size`` as a fresh ``[R,R,3]`` uint8 RGB array (one JPEG decode)."""
        if size in self._decoded:
            return self._decoded[size][i].copy()
        blob, off = self._blob(size)
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"crop index {i} out of range for {n} frames")
        i %= n
        return _decode_jpeg(blob[off[i]:off[i + 1]], size)

    def crops(self, size: int) -> np.ndarray:
        """All crops of size ``size``, ``[N,R,R,3]`` uint8 RGB (read-only), decoded on first access and cached."""
        cached = self._decoded.get(size)
        if cached is not None:
            return cached
        blob, off = self._blob(size)
        blob = np.asarray(blob)  # one sequential read of the mapped file
        off = np.asarray(off)
        n = len(self)
        out = np.empty((n, size, size, 3), np.uint8)

        def run(lo_hi: tuple[int, int]) -> None:
            for i in range(*lo_hi):
                _decode_jpeg(blob[off[i]:off[i + 1]], size, out[i])

        workers = max(1, min(16, os.cpu_count() or 1, n // 64))
        step = -(-n // (workers * 4)) if n else 1
        chunks = [(lo, min(lo + step, n)) for lo in range(0, n, step)]
        if workers == 1:
            for c in chunks:
                run(c)
        else:  # cv2 releases the GIL while decoding
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(run, chunks))
        out.flags.writeable = False
        self._decoded[size] = out
        return out

    @property
    def landmarks(self) -> np.ndarray:
        """``[N,478,3]`` float32 mesh in source-frame pixels (stored as int16 fixed point)."""
        if "landmarks" not in self._decoded:
            self._decoded["landmarks"] = self.arrays["landmarks"].astype(np.float32) / self.meta["landmark_scale"]
        return self._decoded["landmarks"]

    def landmarks68(self, size: int) -> np.ndarray:
        """``[N,68,2]`` float32 iBUG points in crop pixels of ``size`` (derived from the mesh and the crop's affine)."""
        key = f"lmk68_{size}"
        if key not in self._decoded:
            p = to_ibug68(self.landmarks)[..., :2]
            A = np.asarray(self.arrays[f"affine_{size}"], np.float32)
            self._decoded[key] = np.einsum("nij,nkj->nki", A[:, :, :2], p) + A[:, None, :, 2]
        return self._decoded[key]

    def split(self, name: str) -> np.ndarray:
        """Frame indices of the "train" or "val" split (identity-disjoint)."""
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        of_person = np.array([self.meta["split"][p] == name for p in self.meta["persons"]], bool)
        return np.flatnonzero(of_person[np.asarray(self["person"])]) if len(of_person) else np.zeros(0, np.int64)


def load_dataset(path: str | os.PathLike, mmap: bool = True) -> Dataset:
    path = Path(path)
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise InputFileError(f"dataset {path} {what}; make one with `reenact prepare`")
    mf = path / META
    if not mf.is_file():
        raise InputFileError(f"{path} is not a reenact dataset: {META} is missing")
    try:
        meta = json.loads(mf.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputFileError(f"cannot read {mf}: {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise InputFileError(f"{mf} has format {found!r}, expected {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise InputFileError(f"{path} is a {FORMAT} of version {meta.get('version')!r}; this reenact reads "
                             f"version {VERSION}: prepare the dataset again")
    arrays = {}
    n = meta["counts"]["frames_kept"]
    for key, info in meta.get("arrays", {}).items():
        f = path / f"{key}.npy"
        if not f.is_file():
            raise InputFileError(f"dataset {path} is incomplete: {f.name} is missing")
        try:
            arr = np.load(f, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InputFileError(f"cannot read {f}: {e}") from e
        expect_len = n + 1 if key.endswith("_offsets") else None if key.endswith(".jpg.bin") else n
        if list(arr.shape) != info["shape"] or (expect_len is not None and len(arr) != expect_len):
            raise InputFileError(f"{f} has shape {arr.shape}, meta.json says {info['shape']}")
        arrays[key] = arr
    for size in meta.get("sizes", []):
        bk, ok = _blob_key(size), _offsets_key(size)
        if bk not in arrays or ok not in arrays:
            raise InputFileError(f"dataset {path} is incomplete: crops of size {size} are missing")
        off = np.asarray(arrays[ok])
        if off[0] != 0 or off[-1] != len(arrays[bk]) or (np.diff(off) <= 0).any():
            raise InputFileError(f"dataset {path}: {ok}.npy does not match {bk}.npy; prepare the dataset again")
    return Dataset(path, meta, arrays)


__all__ = ["FORMAT", "VERSION", "Dataset", "DatasetInfo", "load_dataset", "prepare_dataset"]
