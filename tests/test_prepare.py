"""``train.dataset`` / ``reenact prepare`` on real data: the training-data cache."""
from __future__ import annotations

import json

import numpy as np
import pytest

from reenact.cli import main
from reenact.errors import InputFileError, NoFaceError, ReenactError
from reenact.geometry import AU_NAMES, DEFAULT_TEMPLATE, EXPRESSION_CLASSES, to_ibug68
from reenact.geometry.align import warp_to_crop
from reenact.io.images import load_image
from reenact.io.video import VideoReader, VideoWriter
from reenact.tracking import BLENDSHAPE_NAMES, FaceTracker
from reenact.train.dataset import FORMAT, VERSION, _split_persons, load_dataset, prepare_dataset

from .conftest import FIXTURE_VIDEO, IMAGES

PHOTO = IMAGES / "sadtalker_sad.png"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("prep") / "ds"
    info = prepare_dataset([FIXTURE_VIDEO, PHOTO], out, every=4, progress=False)
    return info, load_dataset(out)


@pytest.fixture(scope="module")
def grey_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("grey") / "grey.mp4"
    with VideoWriter(path, fps=30) as w:
        for _ in range(10):
            w.write(np.full((256, 256, 3), 128, np.uint8))
    return path


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if ".partial-" in p.name or ".old-" in p.name]


def test_counts_shapes_and_dtypes(prepared):
    info, ds = prepared
    n = 54 + 1  # the fixture has a face in all 216 frames; every 4th -> 54, plus the photo
    assert (info.clips, info.persons, info.frames_kept, info.frames_skipped) == (2, 2, n, 0)
    assert len(ds) == n and ds.sizes == (64, 128)
    expect = {"crops_64": ((n, 64, 64, 3), np.uint8), "crops_128": ((n, 128, 128, 3), np.uint8),
              "crops_64_offsets": ((n + 1,), np.int64), "crops_128_offsets": ((n + 1,), np.int64),
              "landmarks": ((n, 478, 3), np.float32), "blendshapes": ((n, 52), np.float32),
              "aus": ((n, 17), np.float32), "pose": ((n, 3), np.float32), "pose44": ((n, 4, 4), np.float32),
              "label": ((n,), np.int8), "neutral": ((n,), np.bool_), "clip": ((n,), np.int32),
              "person": ((n,), np.int32), "frame": ((n,), np.int32), "t": ((n,), np.float64)}
    for key, (shape, dtype) in expect.items():
        assert ds[key].shape == shape and ds[key].dtype == dtype, key
    assert isinstance(ds["crops_128.jpg.bin"], np.memmap)  # memory-mapped, not read
    crops = ds.crops(128)  # decoded once, then cached (read-only)
    assert ds.crops(128) is crops and ds["crops_128"] is crops and not crops.flags.writeable
    for i in (0, n - 1):
        np.testing.assert_array_equal(ds.crop(128, i), crops[i])
    video = ds.clip == 0
    np.testing.assert_array_equal(ds.frame[video], np.arange(0, 216, 4))
    np.testing.assert_allclose(ds.t[video], np.arange(0, 216, 4) / 30.0, atol=2e-3)
    assert ds.frame[~video].tolist() == [0] and ds.clip[~video].tolist() == [1]
    # landmarks are in source-frame pixels (480x480 video)
    lm = ds.landmarks[video]
    assert lm[..., :2].min() > 0 and lm[..., :2].max() < 480


def test_crops_are_aligned_faces(prepared):
    _, ds = prepared
    crops, lmk68 = ds.crops(128), ds.landmarks68(128)
    with FaceTracker(mode="image", max_faces=1) as tr:
        for i in (0, 30, len(ds) - 1):  # two video frames and the photo
            face = tr.track(np.array(crops[i])).primary
            assert face is not None, f"no face in crop {i}"
            # the stored crop-space 68 points match a fresh tracking of the crop
            err = np.linalg.norm(to_ibug68(face.landmarks)[:, :2] - lmk68[i], axis=-1)
            assert np.median(err) < 4.0, (i, np.median(err))
    # the eyes sit where the template puts them, at both sizes
    for size in (64, 128):
        eyes = ds.landmarks68(size)[:, 36:48].reshape(-1, 2, 6, 2).mean(2)  # right, left eye centres
        np.testing.assert_allclose(np.median(eyes, 0) / size, DEFAULT_TEMPLATE[:2], atol=0.04)
    # the crops hold image content (not a replicated border)
    assert float(np.asarray(crops[:, 32:96, 32:96]).std()) > 20


def test_jpeg_crops_are_close_and_small(prepared):
    _, ds = prepared
    video = np.flatnonzero(ds.clip == 0)
    with VideoReader(ds.clips[0]["source"]) as r:
        frames = {fr.index: fr.image for fr in r if fr.index in (0, 100)}
    sources = [(int(video[0]), frames[0]), (int(video[25]), frames[100]), (len(ds) - 1, load_image(PHOTO))]
    assert [int(ds.frame[i]) for i, _ in sources[:2]] == [0, 100]
    for size in (64, 128):
        for i, image in sources:  # a fresh crop with the stored affine vs the stored (JPEG) crop
            fresh = warp_to_crop(image, ds[f"affine_{size}"][i].astype(np.float64), size)
            err = np.abs(fresh.astype(np.int16) - ds.crop(size, i).astype(np.int16)).mean()
            assert err < 3.0, (size, i, err)
    per_frame = (ds.path / "crops_128.jpg.bin.npy").stat().st_size / len(ds)
    per_frame += (ds.path / "crops_128_offsets.npy").stat().st_size / len(ds)
    assert per_frame < 10_000, per_frame


def test_labels_in_range(prepared):
    _, ds = prepared
    for key in ("blendshapes", "aus"):
        assert 0.0 <= ds[key].min() and ds[key].max() <= 1.0, key
    assert np.isfinite(ds.pose).all() and np.abs(ds.pose).max() < 90
    assert set(np.unique(ds.label)) <= set(range(len(EXPRESSION_CLASSES)))
    video = ds.clip == 0
    # a clip with a scream and a rest: some frames are expressive, some neutral
    assert (ds.label[video] != 0).any() and (ds.label[video] == 0).any()
    assert ds.neutral[video].any() and not ds.neutral[video].all()
    assert not (ds.neutral & (ds.label != 0)).any()  # neutral frames carry the neutral class


def test_meta(prepared):
    info, ds = prepared
    meta = json.loads((ds.path / "meta.json").read_text())
    assert meta["format"] == FORMAT == "reenact-dataset" and meta["version"] == VERSION == 3
    assert meta["sizes"] == [64, 128] and meta["every"] == 4
    c = meta["counts"]
    assert (c["clips"], c["frames_kept"], c["frames_skipped"], c["train"] + c["val"]) == (2, 55, 0, 55)
    v, p = meta["clips"]
    assert v["source"] == str(FIXTURE_VIDEO) and v["kind"] == "video"
    assert (v["frames_total"], v["frames_seen"], v["frames_kept"], v["frames_skipped"]) == (216, 54, 54, 0)
    assert p["source"] == str(PHOTO) and p["kind"] == "photo" and p["frames_kept"] == 1
    assert len(v["baseline"]) == 52 and not v["no_face"]
    assert meta["blendshape_names"] == list(BLENDSHAPE_NAMES) and meta["au_names"] == list(AU_NAMES)
    assert meta["class_names"] == list(EXPRESSION_CLASSES)
    np.testing.assert_allclose(meta["template"], DEFAULT_TEMPLATE)
    assert sorted(meta["split"]) == sorted(meta["persons"]) == sorted([v["person"], p["person"]])
    assert info.bytes == sum(f.stat().st_size for f in ds.path.iterdir())


def test_split_is_identity_disjoint(prepared):
    info, ds = prepared
    tr, va = ds.split("train"), ds.split("val")
    assert len(tr) and len(va) and len(tr) + len(va) == len(ds)
    assert not set(ds.person[tr]) & set(ds.person[va])
    assert (len(tr), len(va)) == (info.train_frames, info.val_frames)
    with pytest.raises(ValueError):
        ds.split("test")
    persons = [f"p{i}" for i in range(10)]
    s = _split_persons(persons, 0.2, seed=3)
    assert s == _split_persons(persons, 0.2, seed=3) and sum(v == "val" for v in s.values()) == 2
    assert sorted(_split_persons(["a", "b"], 0.01, 0).values()) == ["train", "val"]  # one person each side
    assert list(_split_persons(["a"], 0.2, 0).values()) == ["train"]


def test_cli_rerun_replaces_atomically(tmp_path, capsys, grey_video):
    out = tmp_path / "ds"
    assert main(["prepare", str(PHOTO), "--out", str(out), "--sizes", "64"]) == 0
    text = capsys.readouterr().out
    assert "1 clip(s)" in text and "frames kept 1" in text and "MB on disk" in text
    first = load_dataset(out)
    assert first.sizes == (64,) and len(first) == 1
    # a failing run (no face anywhere) leaves the existing dataset as it was
    with pytest.warns(UserWarning, match="no face"):
        assert main(["prepare", str(grey_video), "--out", str(out)]) == 2
    assert "no face" in capsys.readouterr().err
    assert load_dataset(out).sizes == (64,) and _leftovers(tmp_path) == []
    # a successful run replaces it
    persons = tmp_path / "persons.json"
    persons.write_text(json.dumps({"sadtalker_sad": "woman", "sadtalker_happy": "woman"}))
    assert main(["prepare", str(PHOTO), str(IMAGES / "sadtalker_happy.png"), "--out", str(out),
                 "--sizes", "32,48", "--val-fraction", "0.5", "--persons", str(persons)]) == 0
    second = load_dataset(out)
    assert second.sizes == (32, 48) and len(second) == 2 and second.crops(48).shape == (2, 48, 48, 3)
    assert second.persons == ["woman"] and second.person.tolist() == [0, 0]  # one person, one split
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "persons.json"]
    assert not (out / "crops_64.jpg.bin.npy").exists() and not (out / "crops_64_offsets.npy").exists()
    # a folder that is not a dataset is never replaced
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(InputFileError, match="not a reenact dataset"):
        prepare_dataset([PHOTO], tmp_path / "mine", progress=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_no_face_alone_is_an_error(tmp_path, grey_video):
    out = tmp_path / "ds"
    with pytest.warns(UserWarning, match="no face found in .*grey.mp4"), \
            pytest.raises(NoFaceError, match="no face was found in any frame"):
        prepare_dataset([grey_video], out, progress=False)
    assert issubclass(NoFaceError, ReenactError)
    assert not out.exists() and _leftovers(tmp_path) == []


def test_no_face_video_mixed_is_skipped(tmp_path, grey_video):
    out = tmp_path / "ds"
    with pytest.warns(UserWarning, match="grey.mp4"):
        info = prepare_dataset([FIXTURE_VIDEO, grey_video], out, every=8, sizes=(64,), progress=False)
    assert (info.frames_kept, info.frames_skipped, info.clips_without_face) == (27, 2, ("grey",))
    meta = load_dataset(out).meta
    grey = meta["clips"][1]
    assert grey["no_face"] and (grey["frames_seen"], grey["frames_kept"], grey["frames_skipped"]) == (2, 0, 2)
    assert meta["counts"]["frames_skipped"] == 2 and meta["counts"]["clips_without_face"] == 1
    assert meta["persons"] == ["liveportrait_driving_d18"]  # a person with no frames takes no split slot
    assert len(load_dataset(out).split("train")) == 27  # one person: all in train


def test_load_errors(tmp_path, prepared):
    with pytest.raises(InputFileError, match="does not exist"):
        load_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="meta.json is missing"):
        load_dataset(tmp_path / "empty")
    bad = tmp_path / "v99"
    bad.mkdir()
    meta = json.loads((prepared[1].path / "meta.json").read_text())
    (bad / "meta.json").write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(InputFileError, match=r"version 99.*reads version 3"):
        load_dataset(bad)
    (bad / "meta.json").write_text(json.dumps({**meta, "version": 1}))  # the raw-crops format
    with pytest.raises(InputFileError, match=r"version 1.*reads version 3: prepare the dataset again"):
        load_dataset(bad)
    (bad / "meta.json").write_text(json.dumps({**meta, "format": "something-else"}))
    with pytest.raises(InputFileError, match="something-else"):
        load_dataset(bad)
    with pytest.raises(InputFileError, match="not found"):
        prepare_dataset([tmp_path / "nope.mp4"], tmp_path / "x", progress=False)
