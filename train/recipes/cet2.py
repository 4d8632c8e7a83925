"""Training recipe for cet2 (placeholder until it lands)."""
