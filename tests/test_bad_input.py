"""Bad input: each case gives a clear error or an empty result, never a crash or a hang."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from reenact.cli import main
from reenact.errors import ImageError, InputFileError, VideoError
from reenact.io.images import as_rgb, load_image
from reenact.io.video import VideoReader

from .conftest import FIXTURE_VIDEO, IMAGES


def test_image_without_a_face_gives_an_empty_result(image_tracker):
    import skimage.data

    assert not image_tracker.track(skimage.data.coffee()).ok
    assert not image_tracker.track(np.full((480, 640, 3), 127, np.uint8)).ok


def test_zero_byte_files(tmp_path):
    for name in ("empty.png", "empty.mp4"):
        (tmp_path / name).touch()
    with pytest.raises(InputFileError, match="empty"):
        load_image(tmp_path / "empty.png")
    with pytest.raises(InputFileError, match="empty"):
        VideoReader(tmp_path / "empty.mp4")


def test_not_an_image(tmp_path):
    p = tmp_path / "fake.png"
    p.write_text("hello")
    with pytest.raises(ImageError, match="fake.png"):
        load_image(p)
    with pytest.raises(InputFileError, match="not found"):
        load_image(tmp_path / "missing.jpg")


@pytest.mark.timeout(120)
def test_truncated_video_via_cli(tmp_path, capsys):
    data = FIXTURE_VIDEO.read_bytes()
    # the fixture keeps its index at the end: cut it and nothing decodes -> a clear error
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    assert main(["track", str(cut), "--out", str(tmp_path / "cut.npz")]) == 2
    assert "cut.mp4" in capsys.readouterr().err
    assert not (tmp_path / "cut.npz").exists()
    # a file with its index first, cut: the frames that decode are tracked, with a warning
    from reenact.io.video import VideoWriter, read_all

    src = tmp_path / "faststart.mp4"
    with VideoWriter(src, fps=30) as w:
        for f in read_all(FIXTURE_VIDEO, max_frames=40):
            w.write(f.image, f.t)
    part = tmp_path / "part.mp4"
    b = src.read_bytes()
    part.write_bytes(b[: int(len(b) * 0.7)])
    assert main(["track", str(part), "--out", str(tmp_path / "part.npz")]) == 0
    from reenact.tracking.tracks import TrackSequence

    seq = TrackSequence.load(tmp_path / "part.npz")
    assert 0 < len(seq) < 40 and seq.ok.all()


def test_grayscale_and_rgba_images(tmp_path, image_tracker):
    src = Image.open(IMAGES / "sadtalker_sad.png")
    grey16 = Image.fromarray(np.asarray(src.convert("L")).astype(np.uint16) * 257)  # true 16-bit range
    for mode in ("L", "RGBA", "LA", "P", "I;16", "CMYK"):
        p = tmp_path / f"face_{mode.replace(';', '')}.{'jpg' if mode == 'CMYK' else 'png'}"
        (grey16 if mode == "I;16" else src.convert(mode)).save(p)
        img = load_image(p)
        assert img.shape == (256, 256, 3) and img.dtype == np.uint8, mode
        assert len(image_tracker.track(img).faces) == 1, mode
    # arrays: greyscale and RGBA are converted; float data and odd channel counts are named
    grey = np.asarray(src.convert("L"))
    assert image_tracker.track(grey).ok and image_tracker.track(np.dstack([np.asarray(src.convert("RGB")),
                                                                           np.full(grey.shape, 255, np.uint8)])).ok
    with pytest.raises(ImageError, match="uint8"):
        as_rgb(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ImageError, match="shape"):
        as_rgb(np.zeros((64, 64, 2), np.uint8))


def test_tiny_images_give_an_empty_result(image_tracker, tmp_path):
    for shape in ((1, 1, 3), (1, 500, 3), (15, 15, 3)):
        assert not image_tracker.track(np.zeros(shape, np.uint8)).ok
    Image.new("RGB", (1, 1)).save(tmp_path / "one.png")
    assert main(["track", str(tmp_path / "one.png"), "--out", str(tmp_path / "one.npz")]) == 0


def test_huge_image_is_refused_before_decoding(tmp_path, capsys):
    p = tmp_path / "huge.png"
    Image.new("L", (12000, 10000)).save(p)  # 120 MP, compresses to ~100 KB
    with pytest.raises(ImageError, match="too large"):
        load_image(p)
    assert main(["track", str(p), "--out", str(tmp_path / "h.npz")]) == 2
    assert "too large" in capsys.readouterr().err


def test_missing_input_and_bad_options(tmp_path, capsys):
    assert main(["track", str(tmp_path / "nope.mp4")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["track", str(FIXTURE_VIDEO), "--max-faces", "0"]) == 2
    assert "reenact track: error: --max-faces" in capsys.readouterr().err
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("text")
    assert main(["track", str(not_video)]) == 2
    assert "notes.mp4" in capsys.readouterr().err
    with pytest.raises(VideoError):
        VideoReader(not_video)



# -- the CLI's bad-input matrix -------------------------------------------------------------------
# Every case: exit status 2, exactly one "reenact CMD: error: ..." line naming the problem, no
# traceback, nothing left behind in the working folder and every input byte-for-byte unchanged.

import hashlib  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402


WEIGHTS = Path(__file__).resolve().parents[1] / "reenact" / "weights" / "gcgan.safetensors"


def _snapshot(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def bad_env(tmp_path_factory):
    """A working folder with copies of the inputs the cases read (so "untouched" can be checked)."""
    from reenact.io.video import VideoWriter, read_all

    d = tmp_path_factory.mktemp("bad")
    shutil.copy(FIXTURE_VIDEO, d / "clip.mp4")
    shutil.copy(IMAGES / "sadtalker_sad.png", d / "face.png")
    shutil.copy(WEIGHTS, d / "gcgan.safetensors")
    shutil.copy(WEIGHTS.with_suffix(".json"), d / "gcgan.json")
    frames = read_all(FIXTURE_VIDEO, max_frames=8)
    with VideoWriter(d / "short.mp4", fps=30) as w:          # 8 frames, one face
        for f in frames:
            w.write(f.image, f.t)
    with VideoWriter(d / "blank.mp4", fps=25) as w:          # 8 frames, no face
        for i in range(8):
            w.write(np.full((96, 96, 3), 90 + 10 * i, np.uint8), i / 25)
    (d / "afile").write_text("a file where a folder is expected")
    (d / "folder.mp4").mkdir()
    (d / "notes.txt").write_text("not a model")
    (d / "bad.json").write_text("{not json")
    torch_bad = d / "notvgg.pth"
    torch_bad.write_bytes(b"PK\x03\x04 this is not a torch file")
    ds = d / "ds"
    ds.mkdir()
    shutil.copy(d / "short.mp4", ds / "in_ds.mp4")
    # a gcgan training checkpoint, for resuming the wrong model
    from reenact.models import build_model
    from reenact.train import checkpoint

    m = build_model("gcgan", width=0.125)
    checkpoint.save(d / "gc" / "checkpoints" / "step-0000001.safetensors", model=m, ema={}, optimizers={},
                    info={"model": "gcgan", "step": 1, "model_config": m.cfg.to_dict()})
    return d


def _w(d: Path, name: str) -> str:
    return str(d / name)


# (id, argv with {d} for the working folder, text the error line must hold)
CASES = [
    # run: outputs that are inputs, or cannot be written
    ("run-out-is-driver", "run --driver {d}/clip.mp4 --out {d}/clip.mp4", "is the driver"),
    ("run-stats-is-driver", "run --driver {d}/clip.mp4 --out {d}/o.mp4 --stats {d}/clip.mp4", "is the driver"),
    ("run-stats-is-target", "run --target {d}/face.png --out {d}/o.mp4 --stats {d}/face.png", "is the target"),
    ("run-stats-is-checkpoint", "run --checkpoint {d}/gcgan.safetensors --model gcgan --out {d}/o.mp4 "
                                "--stats {d}/gcgan.safetensors", "is the checkpoint"),
    ("run-out-folder", "run --out {d}/folder.mp4", "existing folder"),
    ("run-stats-folder", "run --out none --stats {d}/ds", "existing folder"),
    ("run-out-under-file", "run --out {d}/afile/o.mp4", "is a file, not a folder"),
    ("run-stats-under-file", "run --out none --stats {d}/afile/s.json", "is a file, not a folder"),
    ("run-out-extension", "run --out {d}/o.xyz", ".mp4"),
    ("run-width-negative", "run --width -1", "--width"),
    ("run-width-huge", "run --width 100", "--width"),
    ("run-fps-zero", "run --fps 0 --out none", "--fps"),
    ("run-fps-huge", "run --fps 100000 --out none", "--fps"),
    ("run-face-index-negative", "run --face-index -1 --out none", "--face-index"),
    ("run-intensity", "run --intensity 10 --out none", "intensity"),
    ("run-calibrate-longer", "run --driver {d}/short.mp4 --calibrate 5 --out {d}/o.mp4", "--calibrate"),
    ("run-face-model-missing", "run --face-model {d}/nope.task --out none", "(from --face-model)"),
    ("run-driver-missing", "run --driver {d}/nope.mp4 --out {d}/o.mp4", "nope.mp4"),
    ("run-webcam-index", "run --driver webcam:abc --out none", "webcam index"),
    ("run-script-unknown", "run --driver script:nosuch --out none", "nosuch"),
    ("run-target-face", "run --target {d}/face.png --target-face 3 --out {d}/o.mp4", "--target-face 3"),
    ("run-no-face-driver", "run --driver {d}/blank.mp4 --calibrate 0.1 --out {d}/o.mp4 --no-progress",
     "no face was found"),
    ("run-face-index-beyond", "run --driver {d}/short.mp4 --calibrate 0.1 --face-index 2 --out {d}/o.mp4 "
                              "--no-progress", "--face-index 2"),
    ("run-cet2-script-untrained", "run --model cet2 --width 0.125 --backend pytorch --out {d}/o.mp4", "cet2"),
    ("run-unknown-option", "run --widht 2", "unrecognized"),
    ("run-mouth-unknown", "run --mouth teeth --out none", "unknown mouth 'teeth'"),
    # track
    ("track-max-faces", "track {d}/clip.mp4 --max-faces 0 --out {d}/t.npz", "--max-faces"),
    ("track-face-index", "track {d}/clip.mp4 --face-index 3 --out {d}/t.npz", "--face-index"),
    ("track-out-is-input", "track {d}/clip.mp4 --out {d}/clip.mp4", "is the input"),
    ("track-preview-is-input", "track {d}/clip.mp4 --out {d}/t.npz --preview {d}/clip.mp4", "is the input"),
    ("track-preview-extension", "track {d}/clip.mp4 --out {d}/t.npz --preview {d}/p.xyz", "--preview"),
    ("track-preview-photo-kind", "track {d}/face.png --out {d}/t.npz --preview {d}/p.mp4", "--preview"),
    ("track-out-folder", "track {d}/clip.mp4 --out {d}/ds", "existing folder"),
    ("track-out-under-file", "track {d}/clip.mp4 --out {d}/afile/t.npz", "is a file, not a folder"),
    ("track-input-missing", "track {d}/nope.mp4 --out {d}/t.npz", "not found"),
    # eval
    ("eval-out-is-driver", "eval --model gcgan --driver {d}/clip.mp4 --self --out {d}/clip.mp4", "is the driver"),
    ("eval-out-is-file", "eval --model gcgan --driver {d}/clip.mp4 --self --out {d}/afile", "existing file"),
    ("eval-out-under-file", "eval --model gcgan --driver {d}/clip.mp4 --self --out {d}/afile/r", "not a folder"),
    ("eval-width", "eval --model gcgan --driver {d}/clip.mp4 --self --width 0", "--width"),
    ("eval-self-and-target", "eval --model gcgan --driver {d}/clip.mp4 --self --target {d}/face.png", "--self"),
    # prepare
    ("prepare-out-holds-input", "prepare {d}/ds/in_ds.mp4 --out {d}/ds", "replaced as a whole"),
    ("prepare-out-is-input", "prepare {d}/clip.mp4 --out {d}/clip.mp4", "is the input"),
    ("prepare-out-is-file", "prepare {d}/clip.mp4 --out {d}/afile", "existing file"),
    ("prepare-out-under-file", "prepare {d}/clip.mp4 --out {d}/afile/ds", "not a folder"),
    ("prepare-every", "prepare {d}/clip.mp4 --out {d}/new --every 0", "--every"),
    # train (no dataset is needed: options are checked first)
    ("train-batch-abc", "train gcgan --data {d}/ds --out {d}/runs --set batch=abc", "batch must be an integer"),
    ("train-batch-zero", "train gcgan --data {d}/ds --out {d}/runs --set batch=0", "batch must be >= 1"),
    ("train-lr-negative", "train gcgan --data {d}/ds --out {d}/runs --set lr=-1", "lr must be"),
    ("train-unknown-option", "train gcgan --data {d}/ds --out {d}/runs --set nonsense=1", "nonsense"),
    ("train-set-syntax", "train gcgan --data {d}/ds --out {d}/runs --set batch", "KEY=VALUE"),
    ("train-steps", "train gcgan --data {d}/ds --out {d}/runs --steps -1", "steps must be >= 1"),
    ("train-width", "train gcgan --data {d}/ds --out {d}/runs --width 0", "width"),
    ("train-config-missing", "train gcgan --data {d}/ds --out {d}/runs --config {d}/missing.json", "not found"),
    ("train-config-bad-json", "train gcgan --data {d}/ds --out {d}/runs --config {d}/bad.json", "not valid JSON"),
    ("train-vgg19-not-vgg", "train gcgan --data {d}/ds --out {d}/runs --vgg19 {d}/notvgg.pth", "VGG19"),
    ("train-resume-other-model", "train cefgan --data {d}/ds --out {d}/runs --resume {d}/gc", "gcgan checkpoint"),
    ("train-out-is-file", "train gcgan --data {d}/ds --out {d}/afile --set batch=2", "existing file"),
    ("train-out-is-dataset", "train gcgan --data {d}/ds --out {d}/ds --set batch=2", "dataset"),
    # engines
    ("engines-width", "engines build --width -1", "--width"),
    ("engines-cache-is-file", "engines build gcgan --cache {d}/afile", "existing file"),
    ("engines-cache-under-file", "engines build gcgan --cache {d}/afile/c", "not a folder"),
    ("engines-wrong-checkpoint", "engines build cefgan --checkpoint {d}/gcgan.safetensors", "holds a gcgan model"),
    ("engines-unknown-model", "engines build nosuch", "unknown model"),
    ("engines-no-weights", "engines build cefgan", "no weights for cefgan"),
    ("engines-bad-sidecar", "engines build gcgan --checkpoint {d}/broken.safetensors", "broken.json"),
]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_cli_refuses_bad_input(case, bad_env, capsys, monkeypatch):
    name, argv, expect = case
    d = bad_env
    if name == "engines-bad-sidecar":  # a checkpoint whose JSON sidecar is broken: the sidecar is named
        shutil.copy(d / "gcgan.safetensors", d / "broken.safetensors")
        (d / "broken.json").write_text("{broken")
    if name == "engines-no-weights":  # every model ships weights: a model without them (a new one, a
        # package installed without its weights) is simulated
        monkeypatch.setattr("reenact.commands.engines.default_weights", lambda model_id: None)
    monkeypatch.chdir(d)  # anything written to the current folder would show up in the snapshot
    before = _snapshot(d)
    args = [a.replace("{d}", str(d)) for a in argv.split()]
    rc = main(args)
    err = capsys.readouterr().err
    cmd = args[0] + (" " + args[1] if args[0] == "engines" else "")
    assert rc == 2, (rc, err)
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"reenact {cmd}: error: "), lines[0]
    assert expect in lines[0], lines[0]
    assert _snapshot(d) == before, "a bad-input case left something behind or changed an input"


def test_the_matrix_is_wide():
    kinds = {c[0] for c in CASES}
    assert len(kinds) >= 40
    assert {c[1].split()[0] for c in CASES} >= {"run", "track", "eval", "prepare", "train", "engines"}


def test_train_validates_options_before_making_a_run_folder(bad_env, tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["train", "gcgan", "--data", str(bad_env / "ds"), "--out", str(out), "--set", "batch=0"]) == 2
    assert not out.exists()


def test_recipe_configs_check_types_and_ranges():
    from reenact.train.recipe import recipe_class

    for mid in ("gcgan", "lmklabel", "cet2", "exprgan", "cefgan"):
        cfg = recipe_class(mid).Config
        cfg()  # defaults are valid
        for bad in ({"batch": "abc"}, {"batch": 0}, {"lr": 0}, {"betas": [0.5]}, {"betas": [0.5, 1.0]},
                    {"ema_beta": 2}, {"batch": True}):
            with pytest.raises(ValueError, match="recipe option"):
                cfg.from_dict(bad)
        assert cfg.from_dict({"batch": 4.0}).batch == 4  # a JSON 4.0 is an integer
