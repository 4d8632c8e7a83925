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


# -- the typed command line ----------------------------------------------------------------------
import time  # noqa: E402

COMMAND_NAMES = ["run", "track", "eval", "prepare", "train", "engines build", "demo"]


def test_version():
    import reenact

    r = subprocess.run([sys.executable, "-m", "reenact", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == f"reenact {reenact.__version__}"


def test_help_is_fast_and_imports_nothing_heavy():
    code = ("import sys, time; t = time.perf_counter(); from reenact.cli import main; "
            "argv = sys.argv[1:]; rc = main(argv); dt = time.perf_counter() - t; "
            "heavy = sorted(m for m in ('torch', 'mediapipe', 'gradio', 'cv2', 'onnxruntime', 'matplotlib') "
            "if m in sys.modules); print('HEAVY', heavy, 'SECONDS', dt, file=sys.stderr); sys.exit(rc)")
    for args in ([], ["--help"], *([*c.split(), "--help"] for c in COMMAND_NAMES)):
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
        wall = time.perf_counter() - t0
        assert r.returncode == 0, (args, r.stderr)
        assert "HEAVY []" in r.stderr, (args, r.stderr)
        assert "usage:" in r.stdout, args
        assert wall < 3.0, (args, wall)  # about 0.3 s; generous for a loaded CI machine


def test_choice_registries_match_the_code():
    from reenact.choices import DEFAULT_MODEL, MAX_FPS, MODEL_NAMES, SCRIPT_NAMES, PasteMode
    from reenact.models import list_models
    from reenact.runtime import DEFAULT_MODEL as RUNTIME_DEFAULT
    from reenact.runtime.io import MAX_FPS as RUNTIME_MAX_FPS
    from reenact.runtime.scripts import SCRIPTS
    from reenact.runtime.session import PASTE_MODES

    assert sorted(MODEL_NAMES) == sorted(list_models())
    assert DEFAULT_MODEL == RUNTIME_DEFAULT
    assert tuple(SCRIPT_NAMES) == tuple(SCRIPTS)
    assert MAX_FPS == RUNTIME_MAX_FPS
    from typing import get_args

    assert tuple(get_args(PasteMode)) == tuple(PASTE_MODES)


def test_run_defaults_are_the_runtime_defaults():
    from reenact.cli import _load_commands, parse
    from reenact.runtime import RuntimeOptions

    _load_commands()
    a, d = parse("run", []), RuntimeOptions()
    assert (a.intensity, a.smoothing, a.calibrate, a.face_index, a.color_match, a.paste, a.pose, a.gaze) == \
        (d.intensity, d.smoothing, d.calib_s, d.face_index, d.color_match, d.paste, d.pose, d.gaze)


def test_options_parse_into_typed_fields():
    from pathlib import Path

    from reenact.cli import _load_commands, parse

    _load_commands()
    a = parse("run", ["--no-pose", "--gaze", "--paste", "replace", "--width", "0.5", "-v", "--face-index", "1"])
    assert (a.pose, a.gaze, a.paste, a.width, a.verbose, a.face_index) == (False, True, "replace", 0.5, True, 1)
    t = parse("track", ["clip.mp4", "--max-faces", "3", "--face-index", "2"])
    assert t.input == Path("clip.mp4") and (t.max_faces, t.face_index) == (3, 2)
    e = parse("engines build", ["gcgan", "exprgan", "--checkpoint", "a", "--checkpoint", "b"])
    assert e.models == ("gcgan", "exprgan") and e.checkpoint == (Path("a"), Path("b"))
    tr = parse("train", ["gcgan", "--data", "d", "--set", "batch=2", "--set", "lr=1e-4", "--no-amp"])
    assert tr.set == ("batch=2", "lr=1e-4") and tr.amp is False and tr.model == "gcgan"


def test_verbose_before_or_after_the_command(tmp_path, monkeypatch):
    import logging

    monkeypatch.chdir(tmp_path)
    for argv in (["-v", "track", "--out", "a.npz"], ["track", "-v", "--out", "b.npz"]):
        logging.getLogger().handlers.clear()
        assert main(argv) == 0
        assert logging.getLogger().level == logging.DEBUG
    assert main(["track", "--verbose", "--help"]) == 0


def test_usage_errors_are_one_line(capsys):
    for argv, expect in ((["run", "--model", "nosuch"], "unknown model 'nosuch'"),
                         (["run", "--paste", "glue"], "unknown paste"),
                         (["run", "--intensity", "abc"], "--intensity"),
                         (["run", "--smoothing", "9"], "--smoothing must be in [0, 5], got 9"),
                         (["train"], "required"),
                         (["engines"], "choose an action: build"),
                         (["nosuch"], "unknown command 'nosuch'")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "error:" in err and expect in err, (argv, err)
        assert "╭" not in err and "Traceback" not in err


def test_every_package_folder_is_installed():
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    cfg = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs = cfg["package-dir"]
    found = set()
    for name, d in dirs.items():
        for init in (root / d).rglob("__init__.py"):
            rel = init.parent.relative_to(root / d).parts
            found.add(".".join([name, *rel]))
    assert found == set(cfg["packages"])
