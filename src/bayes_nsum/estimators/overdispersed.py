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

With ``[data] covariates`` the respondent effect gains a regression on them,
:math:`a_i = x_i^\top\theta + (a^*_i - \bar a^*)`, x standardised in the model
(:mod:`.covariates`; Laga, Bao & Niu 2023 put covariates on the network size the same way);
degrees are then :math:`e^{a_i - C}` with the covariate term included.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from ..priors import Prior, PriorConfig, create_group_param
from .base import NSUMModel, draws_array
from .components import negbin_overdispersed_loglik
from .covariates import CovariateDesign
from .latent import LatentModel


class ZhengScaling:
    """The post-hoc scaling by the known groups (Zheng et al. 2006) of the models with group
    effects ``beta``: shared by :class:`OverdispersedModel` and the correlated model."""

    def _effects(self, raw_name: str):
        """Respondent effects ``alpha`` and group effects ``beta`` with their hyperpriors
        (inside the model's context).

        Centred effects: every respondent answers about every group, so the data inform each
        effect well. The respondent effects are centred at exactly zero (sum-to-zero), which
        removes the ridge "all alpha down, all beta up" that the likelihood cannot see; with
        only a soft N(0, sigma_alpha) pin, or non-centred effects, the example survey mixed
        badly (R-hat 1.04-1.06, bulk ESS 34-57)."""
        sigma_alpha = self.priors["sigma_alpha"].create("sigma_alpha")
        mu_beta = self.priors["mu_beta"].create("mu_beta")
        sigma_beta = self.priors["sigma_beta"].create("sigma_beta")
        raw = pm.Normal(raw_name, 0.0, sigma_alpha, dims="respondent")
        self.weight_latent_prior(raw, 0.0, sigma_alpha)
        alpha = pm.Deterministic("alpha", raw - raw.mean(), dims="respondent")
        beta = pm.Normal("beta", mu_beta, sigma_beta, dims="group")
        return alpha, beta

    def _scale(self, beta: xr.DataArray, known: list[str]) -> xr.DataArray:
        """C = log sum_k N_k/N - log sum_k e^{b_k} over the given known groups."""
        d = self.data
        m = d.known_sizes.loc[known].to_numpy(float) / d.total_population
        return np.log(m.sum()) - np.log(np.exp(beta.sel(group=known)).sum("group"))

    def log_hidden_size(self, pm_model):
        """:math:`\\log N_H = \\log N + b_H + C - \\log\\tau_H - \\log\\delta_H` (symbolic; the
        evidence terms' size, see :mod:`~bayes_nsum.estimators.evidence`)."""
        d = self.data
        nk = len(d.known)
        beta = pm_model["beta"]
        m = d.known_sizes.loc[list(d.known)].to_numpy(float) / d.total_population
        scale = np.log(m.sum()) - pt.logsumexp(beta[:nk])
        log_vis = beta[nk:] + scale
        tau, delta = (self.model_param(pm_model, k, "hidden") for k in ("tau", "delta"))
        return np.log(d.total_population) + log_vis - pt.log(tau) - pt.log(delta), None

    def known_share_from_rate(self, draws: xr.Dataset, group: str, rate: np.ndarray) -> np.ndarray:
        """Rescale with the other known groups, as the model does (e^C times the rate)."""
        beta = draws["beta"].assign_coords(group=self.data.groups)
        others = [k for k in self.data.known if k != group]
        return rate * np.exp(np.asarray(self._scale(beta, others).values, float))

    def _derive(self, post: xr.Dataset) -> xr.Dataset:
        """Scale, visible prevalences, degrees (with the covariates' offset) and sizes."""
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
            post["degree"] = np.exp(self.derive_covariates(post, post["alpha"] - scale))
        else:
            self.derive_covariates(post)
        return self._hidden_outputs(post, log_vis - np.log(tau) - np.log(delta))


class OverdispersedModel(ZhengScaling, CovariateDesign, NSUMModel):
    """Zheng et al. (2006) overdispersed NSUM with post-hoc scaling by the known groups."""

    name: ClassVar[str] = "overdispersed"
    uses_covariates: ClassVar[bool] = True
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

    def __init__(self, data, *args, **options) -> None:
        super().__init__(data, *args, **options)
        self.setup_covariates()

    def param_groups(self) -> dict[str, list[str] | None]:
        hidden = list(self.data.hidden)
        groups: dict[str, list[str] | None] = {
            "sigma_alpha": None,
            "mu_beta": None,
            "sigma_beta": None,
            "inv_omega": self.data.groups,
            "tau": hidden,
            "delta": hidden,
        }
        if self.has_covariates:
            groups["theta"] = None
        return groups

    def default_priors(self) -> PriorConfig:
        """Zheng et al.'s priors; with ``[data] covariates`` also ``theta`` (each covariate's
        effect on the log network size per sd, :mod:`.covariates`), Normal(0, 1)."""
        priors = {
            "sigma_alpha": Prior("HalfNormal", {"sigma": 2.0}),
            "mu_beta": Prior("Normal", {"mu": 0.0, "sigma": 5.0}),
            "sigma_beta": Prior("HalfNormal", {"sigma": 5.0}),
            "inv_omega": Prior("Uniform", {"lower": 0.0, "upper": 1.0}),
            "tau": Prior.fixed(1.0),
            "delta": Prior.fixed(1.0),
        }
        if self.has_covariates:
            priors["theta"] = Prior("Normal", {"mu": 0.0, "sigma": 1.0})
        return priors

    @property
    def coords(self) -> dict[str, list]:
        return {**super().coords, "covariate": list(self.covariate_names)}

    def config(self) -> dict:
        return {**super().config(), "covariates": self.covariate_config()}

    def restore(self, config: dict) -> None:
        self.restore_covariates(config)

    def _build(self) -> pm.Model:
        with pm.Model(coords=self.coords) as model:
            stats = self.stats.register()
            alpha, beta = self._effects("alpha_raw")
            inv_omega = create_group_param("inv_omega", self.priors["inv_omega"], "group")
            omega = pm.Deterministic("omega", 1 / inv_omega, dims="group")
            create_group_param("tau", self.priors["tau"], "hidden")
            create_group_param("delta", self.priors["delta"], "hidden")
            log_mean = alpha[:, None] + beta[None, :]
            if self.covariate_names:  # a_i = x_i' theta + alpha_i
                theta = self.priors["theta"].create("theta", dims="covariate")
                log_mean = log_mean + pt.dot(pt.as_tensor(self.design()), theta)[:, None]
            pm.Potential("loglik", negbin_overdispersed_loglik(stats, log_mean, omega))
        return model

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
        log_rate = draws_array(draws, "beta", ("group",), groups)[:, None, :]
        shift = np.asarray(self._scale(beta, list(self.data.known)).values, float)
        rows = None
        offset = self.degree_offset(draws)  # (S, n): x_i' theta, per respondent
        if offset is not None:
            log_rate = log_rate + offset[:, :, None]
            shift = shift[:, None] - offset
            rows = np.arange(self.data.n)
        return LatentModel(
            family="zheng",
            log_rate=log_rate,
            shape=draws_array(draws, "omega", ("group",), groups)[:, None, :],
            prior="normal",
            prior_a=np.zeros_like(sigma_alpha),
            prior_b=sigma_alpha,
            groups=groups,
            row_index=rows,
            z_fitted=z_fit,
            log_degree_shift=shift,
        )
