"""The base class every Bayesian NSUM model derives from.

A model object holds data, options and merged priors; it builds its PyMC model lazily (never in
``__init__``) and fits it through :func:`bayes_nsum.fit.sample`. Derived quantities (sizes,
prevalences, "1 in X") are computed from the posterior draws after sampling, in numpy, so they
cost nothing during sampling.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from ..data import ARD
from ..errors import BayesNsumError
from ..priors import PriorConfig, describe_priors, load_prior_set, merge_priors, parse_priors
from .components import CountStats


class NSUMModel(ABC):
    """Common machinery: priors, lazy model building, fitting, derived quantities.

    Subclasses define :attr:`name`, :meth:`default_priors`, :meth:`param_groups`,
    :meth:`_build` and :meth:`_derive`.
    """

    name: ClassVar[str] = "base"
    #: options accepted by the constructor (besides data and priors)
    options_allowed: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        data: ARD,
        priors: PriorConfig | dict | None = None,
        prior_set: str | PriorConfig | None = None,
        prior_search: list | None = None,
        **options: Any,
    ) -> None:
        unknown = [k for k in options if k not in self.options_allowed]
        if unknown:
            raise BayesNsumError(
                f"model '{self.name}' has no option(s) {', '.join(unknown)}; options: "
                f"{', '.join(self.options_allowed) or 'none'}"
            )
        self.options = {**self.options_allowed, **options}
        self.data = data
        self._check_data()
        if isinstance(prior_set, str):
            set_layer = load_prior_set(prior_set, prior_search)
            self.prior_set_name = prior_set
        else:
            set_layer = prior_set
            self.prior_set_name = None if prior_set is None else "custom"
        # Prior sets hold priors for several models: keep only this model's parameters.
        defaults = self.default_priors()
        if set_layer:
            set_layer = {k: v for k, v in set_layer.items() if k in defaults}
            groups = self.param_groups()
            set_layer = {
                k: (
                    {g: p for g, p in v.items() if g in (groups.get(k) or [])}
                    if isinstance(v, dict)
                    else v
                )
                for k, v in set_layer.items()
            }
        user = parse_priors(priors) if priors else None
        self.priors = merge_priors(
            defaults, self.param_groups(), set_layer, user, model_name=self.name
        )
        self._model = None
        self._stats: CountStats | None = None

    # -- to override ----------------------------------------------------------------------
    @abstractmethod
    def default_priors(self) -> PriorConfig:
        """The model's default priors."""

    @abstractmethod
    def param_groups(self) -> dict[str, list[str] | None]:
        """Parameter -> the groups it is indexed by (None: scalar)."""

    @abstractmethod
    def _build(self):
        """Build and return the PyMC model."""

    @abstractmethod
    def _derive(self, post: xr.Dataset) -> xr.Dataset:
        """Add derived quantities to a copy of the posterior."""

    def _check_data(self) -> None:
        if self.data.n == 0:
            raise BayesNsumError("the survey has no respondents")

    # -- shared helpers -------------------------------------------------------------------
    @property
    def stats(self) -> CountStats:
        if self._stats is None:
            self._stats = CountStats.from_matrix(
                self.data.counts[self.data.groups].to_numpy(float), n_known=len(self.data.known)
            )
        return self._stats

    @property
    def coords(self) -> dict[str, list[str]]:
        return {
            "respondent": [str(i) for i in self.data.counts.index],
            "group": self.data.groups,
            "known": list(self.data.known),
            "hidden": list(self.data.hidden),
        }

    @property
    def model(self):
        """The PyMC model (built on first access)."""
        if self._model is None:
            self._model = self._build()
        return self._model

    def describe_priors(self) -> dict[str, Any]:
        return describe_priors(self.priors)

    def config(self) -> dict[str, Any]:
        """Model id, options and priors (stored in the result's attrs)."""
        return {
            "model": self.name,
            "options": dict(self.options),
            "prior_set": self.prior_set_name,
            "priors": self.describe_priors(),
            "known": list(self.data.known),
            "hidden": list(self.data.hidden),
        }

    # -- derived quantities ---------------------------------------------------------------
    @staticmethod
    def _constant_draws(post: xr.Dataset, value: float) -> xr.DataArray:
        """A fixed parameter as draws shaped like the posterior's (chain, draw)."""
        dims = tuple(d for d in ("chain", "draw") if d in post.sizes)
        return xr.DataArray(
            np.full(tuple(post.sizes[d] for d in dims), float(value)),
            dims=dims,
            coords={d: post[d].values for d in dims if d in post.coords},
        )

    def _hidden_param_draws(self, post: xr.Dataset, name: str) -> xr.DataArray:
        """Draws of a per-hidden-group parameter, constants broadcast when fixed."""
        if name in post:
            return post[name]
        hidden = list(self.data.hidden)
        vals = []
        for h in hidden:
            key = f"{name}_{h}"
            if key in post:
                vals.append(post[key])
            else:
                vals.append(self._constant_draws(post, self.priors[name][h].params["value"]))
        return xr.concat(vals, dim=xr.DataArray(hidden, dims="hidden", name="hidden"))

    def _hidden_outputs(self, post: xr.Dataset, log_prev: xr.DataArray) -> xr.Dataset:
        """Add ``size``, ``prevalence`` and ``one_in_x`` per hidden group from log N_H / N."""
        d = self.data
        size = np.exp(log_prev) * d.total_population
        den = xr.DataArray(
            [d.denominator(h) for h in d.hidden], dims="hidden", coords={"hidden": list(d.hidden)}
        )
        prevalence = size / den
        post["size"] = size
        post["prevalence"] = prevalence
        post["one_in_x"] = 1 / prevalence
        return post

    def derive(self, post: xr.Dataset) -> xr.Dataset:
        """Return the posterior with derived quantities added (a new Dataset)."""
        return self._derive(post.copy())

    # -- fitting --------------------------------------------------------------------------
    def fit(self, **sampler: Any):
        """Sample the posterior and return an :class:`~bayes_nsum.result.NSUMResult`.

        Keyword arguments are sampler settings (``draws``, ``tune``, ``chains``, ``seed``,
        ``backend``, ``target_accept``, ``cores``, ``progress``); see :func:`bayes_nsum.fit.sample`.
        """
        from ..fit import fit_model

        return fit_model(self, **sampler)

    def observed_dataset(self) -> xr.Dataset:
        y = self.data.counts[self.data.groups].to_numpy(float)
        return xr.Dataset(
            {"y": (("respondent", "group"), y)},
            coords={"respondent": self.coords["respondent"], "group": self.data.groups},
        )

    def true_sizes(self) -> pd.Series:
        return self.data.known_sizes
