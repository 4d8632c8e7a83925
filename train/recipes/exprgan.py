"""Training recipe for exprgan (placeholder until it lands)."""
