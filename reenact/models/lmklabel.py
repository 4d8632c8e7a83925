"""Placeholder until the lmklabel model wrapper lands."""
