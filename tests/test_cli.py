"""The ``reenact`` command line on real data."""
from __future__ import annotations

import subprocess
import sys

import numpy as np

from reenact.cli import main
from reenact.io.images import load_image
from reenact.io.video import VideoReader
from reenact.tracking.tracks import TrackSequence

from .conftest import FIXTURE_VIDEO, IMAGES


def test_track_video_with_preview(tmp_path, capsys):
    out, prev = tmp_path / "d18.npz", tmp_path / "overlay.mp4"
    assert main(["track", str(FIXTURE_VIDEO), "--out", str(out), "--preview", str(prev)]) == 0
    assert "216 with a face" in capsys.readouterr().out
    seq = TrackSequence.load(out)
    assert len(seq) == 216 and seq.ok.all() and seq.landmarks.shape == (216, 478, 3)
    with VideoReader(prev) as r:
        frames = list(r)
    assert len(frames) == 216 and r.size == (480, 480)
    # the overlay is drawn: preview differs from the source where the mesh is
    with VideoReader(FIXTURE_VIDEO) as r:
        src = next(iter(r)).image
    assert np.abs(frames[0].image.astype(int) - src).mean() > 2


def test_track_default_photo_and_group_photo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["track", "--preview", "astronaut.png"]) == 0
    seq = TrackSequence.load(tmp_path / "astronaut.tracks.npz")
    assert len(seq) == 1 and seq.ok[0]
    assert load_image(tmp_path / "astronaut.png").shape == (512, 512, 3)
    assert main(["track", str(IMAGES / "insightface_t1.jpg"), "--out", "g.npz", "--face-index", "5",
                 "--max-faces", "8"]) == 0
    g = TrackSequence.load(tmp_path / "g.npz")
    assert g.num_faces[0] == 6 and g.ok[0]


def test_entry_point_help():
    r = subprocess.run([sys.executable, "-m", "reenact", "track", "--help"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "--preview" in r.stdout
