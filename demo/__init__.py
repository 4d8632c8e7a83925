"""The browser demo (Gradio): ``reenact demo`` or ``python demo/app.py``; see ``demo/app.py``."""
