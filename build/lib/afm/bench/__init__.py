"""`python -m afm bench`: training speed beside the peers (`training`) and the app in a browser (`app`)."""
from afm.bench.training import Case, headline_line, run

__all__ = ["Case", "headline_line", "run"]
