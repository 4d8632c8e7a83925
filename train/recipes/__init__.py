"""One recipe per model; importing this package registers them."""
from . import cefgan, cet2, exprgan, gcgan, lmklabel  # noqa: F401
