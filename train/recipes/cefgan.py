"""Training recipe for cefgan (placeholder until it lands)."""
