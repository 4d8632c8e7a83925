"""Real-time face reenactment engine."""
__version__ = "0.1.0"
