"""``reenact demo``: the browser demo (webcam, video and script tabs), served with Gradio."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from ..choices import DEFAULT_MODEL, BackendName, ModelName
from ..cli import Command, CommandOptions, Range, register
from ..errors import ReenactError


@dataclass(kw_only=True)
class DemoOptions(CommandOptions):
    """``reenact demo``; ``reenact.demo.app.config_from_args`` turns it into ``DemoConfig``."""

    host: str = "127.0.0.1"
    """address to listen on (0.0.0.0 serves the local network - browsers allow the webcam only on localhost or over HTTPS)"""
    port: Annotated[int, Range(0, 65535)] = 7860
    """port (0 picks a free one)"""
    share: bool = False
    """also serve through a temporary public gradio.live link (HTTPS, so remote webcams work)"""
    model: ModelName = DEFAULT_MODEL
    """model selected when the page opens"""
    backend: BackendName = "auto"
    """backend selected when the page opens"""
    checkpoint: str | None = None
    """weights for --model (a run folder or .safetensors from `reenact train`)"""
    width: Annotated[float | None, Range(0, 4, lo_open=True)] = None
    """run an untrained network of this width (for trying the demo without weights)"""
    target: str | None = None
    """photo preloaded as the target (default: the built-in photo)"""
    max_streams: Annotated[int, Range(1)] = 4
    """webcam streams served at once"""
    time_limit: Annotated[int, Range(1)] = 600
    """seconds a webcam stream runs before it stops"""


def run(args: DemoOptions) -> int:
    from ..backends import available_backends

    if args.backend != "auto" and args.backend not in available_backends():
        raise ReenactError(f"backend {args.backend!r} is not available here; available: auto, "
                           f"{', '.join(available_backends())}")
    if args.target:
        from ..io.images import load_image

        load_image(args.target)  # fail early on a bad photo
    from ..demo.app import config_from_args, launch

    cfg = config_from_args(args)
    cfg.validate()
    launch(cfg, host=args.host, port=args.port, share=args.share, block=True)
    return 0


register(Command("demo", "Browser demo: drive a photo from your webcam, a video or an expression script.",
                 DemoOptions, run,
                 "examples:\n  reenact demo                        # then open http://127.0.0.1:7860\n"
                 "  reenact demo --model lmklabel --target me.jpg\n"
                 "  reenact demo --host 0.0.0.0 --port 8080 --max-streams 2"))
