"""Placeholder until the exprgan model wrapper lands."""
