"""Built-in assets: the default target photo and the reference face derived from it."""
from __future__ import annotations

from pathlib import Path

from .errors import InputFileError


def default_target_path() -> Path:
    """The astronaut photo (Eileen Collins, NASA, 1999; public domain), as scikit-image ships it in
    its data folder (a core dependency: the package carries no copy of the photo)."""
    try:
        import skimage
    except ImportError:
        raise InputFileError("the built-in default target photo comes with scikit-image: pip install scikit-image, "
                             "or pass --target PHOTO") from None
    path = Path(skimage.__file__).resolve().parent / "data" / "astronaut.png"
    if not path.is_file():
        raise InputFileError(f"the built-in default target photo is missing ({path}); reinstall scikit-image, "
                             "or pass --target PHOTO")
    return path


REFERENCE_FACE = Path(__file__).resolve().parent / "data" / "reference_face.npz"


def make_reference_face(path: Path = REFERENCE_FACE) -> Path:
    """Write ``reference_face.npz``: the built-in photo's face aligned at 128 pixels (default
    template) with what the models read of it: 68 points in crop pixels, AUs, blendshapes,
    pseudo-label and neutral flag. Engines' parity and precision checks feed realistic inputs
    made from it (``ReenactModel.realistic_inputs``)."""
    import numpy as np

    from .geometry import Aligner, action_units, apply_affine, is_neutral, pseudo_label, to_ibug68
    from .io.images import load_image
    from .tracking import FaceTracker

    img = load_image(default_target_path())
    with FaceTracker(mode="image") as tr:
        face = tr.track(img).primary
    crop = Aligner(128).crop(img, face.landmarks)
    np.savez_compressed(path, crop=crop.image, lmk68=apply_affine(crop.M, to_ibug68(face.landmarks)[:, :2]).astype(np.float32),
                        aus=action_units(face.blendshapes, face.landmarks).astype(np.float32),
                        blendshapes=face.blendshapes.astype(np.float32), label=np.int64(pseudo_label(face.blendshapes)),
                        neutral=np.bool_(is_neutral(face.blendshapes)))
    return path


def reference_face() -> dict:
    """The arrays of ``reference_face.npz`` (crop [128,128,3] uint8, lmk68 [68,2] crop pixels, aus [17],
    blendshapes [52], label, neutral)."""
    import numpy as np

    with np.load(REFERENCE_FACE) as z:
        return {k: z[k] for k in z.files}
