"""The version of rftcost (one place; the package root and every document read it here)."""

__all__ = ["__version__"]

__version__ = "0.1.0"
