r"""The overdispersed model of Zheng, Salganik & Gelman (2006).

.. math::
    y_{ik} &\sim \mathrm{NegBin}\big(\text{mean } e^{a_i + b_k},\ \text{variance }
        \omega_k e^{a_i+b_k}\big) \\
    a_i &= a^*_i - \bar a^*, \quad a^*_i \sim \mathrm{Normal}(0, \sigma_\alpha), \qquad
    b_k \sim \mathrm{Normal}(\mu_\beta, \sigma_\beta), \qquad 1/\omega_k \sim U(0, 1)

The respondent effects a_i sum to zero (Zheng et al. fix the location of a and b only after
sampling; fixing the mean of a exactly removes the one direction the data cannot see and lets NUTS
mix).
After sampling the known groups fix the scale: with
:math:`C = \log\sum_{k\,known} N_k/N - \log\sum_{k\,known} e^{b_k}`, the visible prevalence of a
hidden group is :math:`e^{b_H + C}` and respondent degrees are :math:`e^{a_i - C}`. Sizes then
divide by the transmission rate and degree ratio, whose posteriors equal their priors.
:math:`\omega_k` measures how unevenly group k is spread across networks (1 = Poisson).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pymc as pm
import xarray as xr

from ..priors import Prior, PriorConfig, create_group_param
from .base import NSUMModel, draws_array
from .components import negbin_overdispersed_loglik
from .latent import LatentModel


class OverdispersedModel(NSUMModel):
    """Zheng et al. (2006) overdispersed NSUM with post-hoc scaling by the known groups."""

    name: ClassVar[str] = "overdispersed"
    calibration_targets = ("sigma_alpha", "mu_beta", "sigma_beta", "beta", "inv_omega")
    #: the defaults (mu_beta ~ N(0, 5), sigma_beta ~ HalfNormal(5), ...) simulate surveys with
    #: expected answers from e^-15 to e^15; these keep them in the range real surveys show
    #: (about 0.05 to 30), the spreads away from 0 and omega mostly below 3
    calibration_priors = {
        "sigma_alpha": {"dist": "Gamma", "mu": 0.8, "sigma": 0.3},
        "mu_beta": {"dist": "Normal", "mu": 0.0, "sigma": 0.7},
        "sigma_beta": {"dist": "Gamma", "mu": 0.8, "sigma": 0.3},
        "inv_omega": {"dist": "Beta", "alpha": 3.0, "beta": 1.5},
    }

    def param_groups(self) -> dict[str, list[str] | None]:
        hidden = list(self.data.hidden)
        return {
            "sigma_alpha": None,
            "mu_beta": None,
            "sigma_beta": None,
            "inv_omega": self.data.groups,
            "tau": hidden,
            "delta": hidden,
        }

    def default_priors(self) -> PriorConfig:
        return {
            "sigma_alpha": Prior("HalfNormal", {"sigma": 2.0}),
            "mu_beta": Prior("Normal", {"mu": 0.0, "sigma": 5.0}),
            "sigma_beta": Prior("HalfNormal", {"sigma": 5.0}),
            "inv_omega": Prior("Uniform", {"lower": 0.0, "upper": 1.0}),
            "tau": Prior.fixed(1.0),
            "delta": Prior.fixed(1.0),
        }

    def _build(self) -> pm.Model:
        with pm.Model(coords=self.coords) as model:
            stats = self.stats.register()
            sigma_alpha = self.priors["sigma_alpha"].create("sigma_alpha")
            mu_beta = self.priors["mu_beta"].create("mu_beta")
            sigma_beta = self.priors["sigma_beta"].create("sigma_beta")
            # Centred effects: every respondent answers about every group, so the data inform
            # each effect well. The respondent effects are centred at exactly zero (sum-to-zero),
            # which removes the ridge "all alpha down, all beta up" that the likelihood cannot
            # see; with only a soft N(0, sigma_alpha) pin, or non-centred effects, the example
            # survey mixed badly (R-hat 1.04-1.06, bulk ESS 34-57).
            alpha_raw = pm.Normal("alpha_raw", 0.0, sigma_alpha, dims="respondent")
            self.weight_latent_prior(alpha_raw, 0.0, sigma_alpha)
            alpha = pm.Deterministic("alpha", alpha_raw - alpha_raw.mean(), dims="respondent")
            beta = pm.Normal("beta", mu_beta, sigma_beta, dims="group")
            inv_omega = create_group_param("inv_omega", self.priors["inv_omega"], "group")
            omega = pm.Deterministic("omega", 1 / inv_omega, dims="group")
            create_group_param("tau", self.priors["tau"], "hidden")
            create_group_param("delta", self.priors["delta"], "hidden")
            log_mean = alpha[:, None] + beta[None, :]
            pm.Potential("loglik", negbin_overdispersed_loglik(stats, log_mean, omega))
        return model

    def _scale(self, beta: xr.DataArray, known: list[str]) -> xr.DataArray:
        """C = log sum_k N_k/N - log sum_k e^{b_k} over the given known groups."""
        d = self.data
        m = d.known_sizes.loc[known].to_numpy(float) / d.total_population
        return np.log(m.sum()) - np.log(np.exp(beta.sel(group=known)).sum("group"))

    def _derive(self, post: xr.Dataset) -> xr.Dataset:
        d = self.data
        known, hidden = list(d.known), list(d.hidden)
        if "beta" not in post or "group" not in post["beta"].dims:
            return post
        beta = post["beta"].assign_coords(group=d.groups)
        scale = self._scale(beta, known)
        post["scale_c"] = scale
        tau = self.param_draws(post, "tau", "hidden")
        delta = self.param_draws(post, "delta", "hidden")
        post["tau"], post["delta"] = tau, delta
        log_vis = (beta.sel(group=hidden) + scale).rename(group="hidden")
        post["log_visible"] = log_vis
        if "alpha" in post:
            post["degree"] = np.exp(post["alpha"] - scale)
        return self._hidden_outputs(post, log_vis - np.log(tau) - np.log(delta))

    # -- the story at given draws ---------------------------------------------------------
    def latent(self, draws: xr.Dataset) -> LatentModel:
        """Respondent effect a ~ N(0, sigma_alpha); NB answers with log-mean a + beta_k and
        variance omega_k times the mean; network size e^(a - C)."""
        groups = self.data.groups
        sigma_alpha = self.param_draws(draws, "sigma_alpha").values.astype(float)
        beta = draws["beta"].assign_coords(group=groups)
        z_fit = None
        if "alpha" in draws and "respondent" in draws["alpha"].dims:
            z_fit = draws_array(draws, "alpha", ("respondent",))
        return LatentModel(
            family="zheng",
            log_rate=draws_array(draws, "beta", ("group",), groups)[:, None, :],
            shape=draws_array(draws, "omega", ("group",), groups)[:, None, :],
            prior="normal",
            prior_a=np.zeros_like(sigma_alpha),
            prior_b=sigma_alpha,
            groups=groups,
            z_fitted=z_fit,
            log_degree_shift=np.asarray(self._scale(beta, list(self.data.known)).values, float),
        )

    def known_share_from_rate(self, draws: xr.Dataset, group: str, rate: np.ndarray) -> np.ndarray:
        """Rescale with the other known groups, as the model does (e^C times the rate)."""
        beta = draws["beta"].assign_coords(group=self.data.groups)
        others = [k for k in self.data.known if k != group]
        return rate * np.exp(np.asarray(self._scale(beta, others).values, float))
