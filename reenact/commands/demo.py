"""``reenact demo``: the browser demo (webcam, video and script tabs), served with Gradio."""
from __future__ import annotations

import argparse

from ..cli import Command, register
from ..errors import ReenactError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 serves the local network - "
                        "browsers allow the webcam only on localhost or over HTTPS)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860; 0 picks a free one)")
    p.add_argument("--share", action="store_true", help="also serve through a temporary public gradio.live "
                                                        "link (HTTPS, so remote webcams work)")
    p.add_argument("--model", default="warp", help="model selected when the page opens (default warp)")
    p.add_argument("--backend", default="auto", help="backend selected when the page opens: auto, pytorch, "
                                                    "onnxruntime, tensorrt (default auto)")
    p.add_argument("--checkpoint", help="weights for --model (a run folder or .safetensors from `reenact train`)")
    p.add_argument("--width", type=float, help="run an untrained network of this width (for trying the demo "
                                               "without weights)")
    p.add_argument("--target", help="photo preloaded as the target (default: the built-in photo)")
    p.add_argument("--max-streams", type=int, default=4, help="webcam streams served at once (default 4)")
    p.add_argument("--time-limit", type=int, default=600,
                   help="seconds a webcam stream runs before it stops (default 600)")


def run(args: argparse.Namespace) -> int:
    from ..models import list_models

    if args.model not in list_models():
        raise ReenactError(f"unknown model {args.model!r}; available: {', '.join(list_models())}")
    from ..backends import available_backends

    if args.backend != "auto" and args.backend not in available_backends():
        raise ReenactError(f"backend {args.backend!r} is not available here; available: auto, "
                           f"{', '.join(available_backends())}")
    if args.target:
        from ..io.images import load_image

        load_image(args.target)  # fail early on a bad photo
    from reenact.demo.app import config_from_args, launch

    cfg = config_from_args(args)
    cfg.validate()
    launch(cfg, host=args.host, port=args.port, share=args.share, block=True)
    return 0


register(Command("demo", "Browser demo: drive a photo from your webcam, a video or an expression script.",
                 add_arguments, run,
                 "examples:\n  reenact demo                        # then open http://127.0.0.1:7860\n"
                 "  reenact demo --model lmklabel --target me.jpg\n"
                 "  reenact demo --host 0.0.0.0 --port 8080 --max-streams 2"))
