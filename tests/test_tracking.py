"""Face tracking on real data: fixture video, photos, a group photo; tracks file round trip."""
from __future__ import annotations

import numpy as np
import pytest

from reenact.io.images import load_image
from reenact.tracking import BLENDSHAPE_NAMES, FaceTracker
from reenact.tracking.tracks import TrackSequence

from .conftest import FIXTURE_VIDEO, IMAGES


def test_one_face_in_every_fixture_frame(video_tracks, fixture_frames):
    assert len(video_tracks) == len(fixture_frames) == 216
    assert all(len(t.faces) == 1 for t in video_tracks)
    ts = np.array([t.t for t in video_tracks])
    assert np.all(np.diff(ts) > 0)
    f = video_tracks[0].primary
    assert f.landmarks.shape == (478, 3) and f.landmarks.dtype == np.float32
    assert f.blendshapes.shape == (52,) and np.all((f.blendshapes >= 0) & (f.blendshapes <= 1))
    assert f.transform.shape == (4, 4)
    # landmarks lie inside the 480x480 frame and the bbox encloses them
    assert np.all(f.landmarks[:, :2] > 0) and np.all(f.landmarks[:, :2] < 480)
    assert f.bbox[0] <= f.landmarks[:, 0].min() and f.bbox[2] >= f.landmarks[:, 0].max()


@pytest.mark.parametrize("name", ["skimage_astronaut.png", "sadtalker_sad.png", "sadtalker_happy.png",
                                  "edtalk_identity_source.jpg", "liveportrait_driving_d8.jpg",
                                  "liveportrait_driving_d9.jpg"])
def test_one_face_in_each_portrait(image_tracker, name):
    trk = image_tracker.track(load_image(IMAGES / name))
    assert len(trk.faces) == 1, name


def test_group_photo_yields_all_faces_sorted_by_size(image_tracker):
    trk = image_tracker.track(load_image(IMAGES / "insightface_t1.jpg"))
    assert len(trk.faces) == 6  # the photo shows six people
    areas = [f.area for f in trk.faces]
    assert areas == sorted(areas, reverse=True)
    centres = np.array([(f.bbox[:2] + f.bbox[2:]) / 2 for f in trk.faces])
    d = np.linalg.norm(centres[:, None] - centres[None], axis=-1) + np.eye(6) * 1e9
    assert d.min() > 50, "the same face was returned twice"


def test_blendshapes_by_name(video_tracks, neutral_and_open):
    neutral, open_ = neutral_and_open
    assert video_tracks[open_].primary.blendshape("jawOpen") > video_tracks[neutral].primary.blendshape("jawOpen") + 0.3
    assert len(BLENDSHAPE_NAMES) == 52 and BLENDSHAPE_NAMES[0] == "_neutral"


def test_large_photo_is_tracked_in_full_resolution_coordinates(image_tracker):
    img = load_image(IMAGES / "skimage_astronaut.png")
    small = image_tracker.track(img).primary
    big_img = np.ascontiguousarray(np.repeat(np.repeat(img, 6, 0), 6, 1))  # 3072x3072
    big = image_tracker.track(big_img)
    assert big.image_size == (3072, 3072) and len(big.faces) == 1
    # same face: 6x the coordinates (pixel centres at integers: x' = 6 (x + 0.5) - 0.5)
    expected = (small.landmarks[:, :2] + 0.5) * 6 - 0.5
    err = np.median(np.linalg.norm(big.primary.landmarks[:, :2] - expected, axis=1))
    assert err < 0.02 * (small.bbox[2] - small.bbox[0]) * 6


def test_video_mode_needs_timestamps():
    with FaceTracker(mode="video") as tr:
        with pytest.raises(ValueError, match="timestamp"):
            tr.track(np.zeros((64, 64, 3), np.uint8))
        # repeated timestamps are nudged forward instead of failing inside MediaPipe
        img = load_image(IMAGES / "sadtalker_sad.png")
        assert tr.track(img, 0.5).ok and tr.track(img, 0.5).ok


def test_tracks_file_round_trip(video_tracks, tmp_path):
    seq = TrackSequence.from_frames(video_tracks, source=str(FIXTURE_VIDEO))
    path = seq.save(tmp_path / "t.npz")
    back = TrackSequence.load(path)
    assert len(back) == 216 and back.image_size == (480, 480)
    np.testing.assert_array_equal(back.landmarks, seq.landmarks)
    np.testing.assert_array_equal(back.t, seq.t)
    assert back.frame(10).primary.blendshape("jawOpen") == video_tracks[10].primary.blendshape("jawOpen")
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"]  # no temporary left behind


def test_tracks_file_from_another_version_is_refused(tmp_path):
    p = tmp_path / "old.npz"
    np.savez(p, format_version=np.int32(99))
    with pytest.raises(Exception, match="format version 99"):
        TrackSequence.load(p)
