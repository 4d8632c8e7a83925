"""Placeholder until the cefgan model wrapper lands."""
