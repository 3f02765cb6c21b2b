"""Reference integrals for the tests: ``scipy.integrate.quad`` around the integrand's peak."""

from __future__ import annotations

import numpy as np
from scipy import integrate


def log_integral(logf, lo: float, hi: float, grid_points: int = 2001) -> float:
    """log of the integral of exp(logf(x)) over [lo, hi].

    The peak is located on a grid and passed to quad as a break point; the integrand is scaled
    by its peak value so that exp() cannot overflow. Relative accuracy about 1e-12.
    """
    grid = np.linspace(lo, hi, grid_points)
    vals = np.array([logf(x) for x in grid])
    mode, top = grid[vals.argmax()], vals.max()
    val, _ = integrate.quad(
        lambda x: np.exp(logf(x) - top),
        lo,
        hi,
        points=[mode],
        epsabs=0,
        epsrel=1e-12,
        limit=500,
    )
    return top + np.log(val)
