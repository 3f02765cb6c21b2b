r"""Respondent covariates on the log network size, shared by the models that read them.

A model that mixes in :class:`CovariateDesign` adds :math:`x_i^\top\theta` to every
respondent's log network size, where :math:`x_i` are the columns of ``[data] covariates``
standardised inside the model: centred on their survey mean and divided by their standard
deviation. The centre and scale are part of the model's config (``model_config`` of a fit),
so a model rebuilt from a saved fit, or on a few of its respondents, uses the fitted survey's
standardisation (:meth:`CovariateDesign.restore_covariates`). ``theta`` is the change in log
network size per sd of a covariate; ``theta_per_unit`` (derived) per unit as recorded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..errors import BayesNsumError


class CovariateDesign:
    """Mixin: standardised respondent covariates (``self.data.covariates``)."""

    covariate_names: list[str]
    centre: np.ndarray
    scale: np.ndarray

    def setup_covariates(self) -> None:
        """Record the covariates' names, centre and scale (call after the data are set)."""
        cov = self.data.covariates
        names = [] if cov is None else [str(c) for c in cov.columns]
        self.covariate_names = names
        x = self.raw_covariates()
        # a constant column is refused when the design is first used (a model rebuilt on a
        # few respondents takes the fitted survey's standardisation through restore)
        self.centre = x.mean(axis=0) if names else np.zeros(0)
        self.scale = x.std(axis=0) if names else np.zeros(0)

    @property
    def has_covariates(self) -> bool:
        cov = self.data.covariates
        return bool(cov is not None and cov.shape[1])

    def raw_covariates(self) -> np.ndarray:
        """(n, C) covariates as recorded; missing values refused naming the column."""
        cov = self.data.covariates
        if cov is None or cov.shape[1] == 0:
            return np.zeros((self.data.n, 0))
        x = cov.to_numpy(float)
        bad = ~np.isfinite(x)
        if bad.any():
            col = cov.columns[int(np.flatnonzero(bad.any(axis=0))[0])]
            raise BayesNsumError(f"[data] covariates: column '{col}' has missing values")
        return x

    def design(self) -> np.ndarray:
        """(n, C) standardised covariates."""
        if np.any(self.scale <= 0):
            flat = [c for c, v in zip(self.covariate_names, self.scale, strict=True) if v <= 0]
            raise BayesNsumError(
                f"[data] covariates: column '{flat[0]}' is constant (its effect cannot be told "
                "apart from the network sizes' level)"
            )
        return (self.raw_covariates() - self.centre) / self.scale

    def covariate_config(self) -> dict[str, Any]:
        return {
            "names": list(self.covariate_names),
            "centre": [float(v) for v in self.centre],
            "scale": [float(v) for v in self.scale],
        }

    def restore_covariates(self, config: dict) -> None:
        """Take the standardisation of a saved fit's (or another model's) config."""
        cov = config.get("covariates") or {}
        if list(cov.get("names", [])) != list(self.covariate_names):
            raise BayesNsumError("the saved fit's covariates differ from the data's")
        self.centre = np.asarray(cov.get("centre", []), float)
        self.scale = np.asarray(cov.get("scale", []), float)
        self._model = None

    def degree_offset(self, draws: xr.Dataset) -> np.ndarray | None:
        """(S, n) :math:`x_i^\\top\\theta` at stacked draws, or None without covariates."""
        if not self.covariate_names:
            return None
        theta = np.asarray(draws["theta"].transpose("sample", "covariate").values, float)
        return theta @ self.design().T

    def derive_covariates(self, post: xr.Dataset, log_degree: xr.DataArray | None = None):
        """Add ``theta_per_unit`` to ``post``; return ``log_degree`` (draws..., respondent)
        plus :math:`x_i^\\top\\theta` (None without ``log_degree``)."""
        if not self.covariate_names or "theta" not in post:
            return log_degree
        theta = post["theta"]
        unit = xr.DataArray(self.scale, dims="covariate", coords={"covariate": theta["covariate"]})
        post["theta_per_unit"] = theta / unit
        if log_degree is None:
            return None
        x = xr.DataArray(self.design(), dims=("respondent", "covariate"))
        offset = xr.dot(x, theta.drop_vars("covariate", errors="ignore"), dim="covariate")
        return log_degree + offset  # respondents by position
