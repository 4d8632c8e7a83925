"""Training recipe for lmklabel (placeholder until it lands)."""
