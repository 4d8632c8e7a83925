"""Placeholder until the cet2 model wrapper lands."""
