"""Data files shipped with the package (expression basis)."""
