"""Quality evaluation: expression transfer, identity, temporal stability, self-reenactment.

``evaluate`` renders a driver video through a model and writes a report folder; the metric
functions in ``metrics`` are plain numpy and usable on their own. Identity (dlib) needs the
``eval`` extra: ``pip install "reenact[eval]"``.
"""
from .metrics import (EXPRESSIVE_BLENDSHAPES, BlendshapeCorrelation, blendshape_correlation, first_second_baseline,
                      frame_differences, inter_ocular, l1, landmark_nme, psnr, ssim, still_frames,
                      temporal_stability)

__all__ = ["EXPRESSIVE_BLENDSHAPES", "BlendshapeCorrelation", "Evaluation", "blendshape_correlation", "evaluate",
           "first_second_baseline", "frame_differences", "inter_ocular", "l1", "landmark_nme", "psnr", "ssim",
           "still_frames", "temporal_stability"]


def __getattr__(name: str):
    # the protocol pulls in MediaPipe and the runtime: import it only when asked for
    if name in ("evaluate", "Evaluation"):
        from . import protocol

        return getattr(protocol, name)
    raise AttributeError(name)
