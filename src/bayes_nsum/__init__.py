"""Bayesian network scale-up (NSUM) estimation with PyMC."""

__version__ = "0.1.0"
