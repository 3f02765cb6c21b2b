r"""The correlated network scale-up model with covariates of Laga, Bao & Niu (2023).

Laga, Bao and Niu (2023, "A correlated network scale-up model: finding the connection between
subpopulations", JASA) replace the independent overdispersion of Zheng, Salganik & Gelman
(2006) by a respondent-by-group bias that is correlated across groups, and let respondent
covariates move the network size and the group-specific biases:

.. math::
    y_{ik} &\sim \mathrm{Poisson}\big(e^{\eta_{ik}}\big), \qquad
    \eta_{ik} = a_i + b_k + x_i^\top\theta + w_i^\top\kappa_k + \epsilon_{ik}
        - \tfrac12 s_k^2, \\
    a_i &= a^*_i - \bar a^*, \quad a^*_i \sim N(0, \sigma_\alpha^2), \qquad
    b_k \sim N(\mu_\beta, \sigma_\beta^2), \\
    \epsilon_i &= L e_i, \quad e_i \sim N(0, I_G), \quad L L^\top = \Sigma
        = \operatorname{diag}(s) R \operatorname{diag}(s), \quad
    R \sim \mathrm{LKJ}(\eta), \quad s_k \sim \text{(bias\_sd prior)}, \\
    \theta_c &\sim \text{(theta prior)}, \qquad
    \kappa_{ck} = \kappa^*_{ck} - \tfrac1G\textstyle\sum_{k'}\kappa^*_{ck'}, \quad
    \kappa^*_{ck} \sim \text{(kappa prior)}.

x_i are the respondent covariates of ``[data] covariates``, standardised (centred on their
survey mean, divided by their sd; the centre and scale are kept in the model config so that a
saved fit rebuilds them); w_i the subset named by ``[model] bias_covariates``, whose effects
differ by group: :math:`\kappa_{ck}` is group k's deviation from the covariate's effect
:math:`\theta_c` on the network size, so it sums to zero over the groups (the sum is the
direction :math:`\theta_c` already has); posterior variables ``bias_effect`` (:math:`\kappa`)
and ``kappa`` (:math:`\kappa^*`, the variable with the prior). The bias has mean one on the count scale
(:math:`E[e^{\epsilon_{ik} - s_k^2/2}] = 1`), so :math:`b_k` keeps Zheng's meaning; its
spread replaces Zheng's :math:`\omega_k`, and :math:`R` is the paper's correlation between
the biases of two groups in the same network (positive: people who know more members of one
group than their degree predicts also know more of the other). The effects :math:`e_i` are
non-centred; the respondent effects are centred with a zero sum, as in
:mod:`.overdispersed`.

Scaling (Zheng et al. 2006; Laga et al. 2023, "all" known groups): after sampling,
:math:`C = \log\sum_{k\,known} N_k/N - \log\sum_{k\,known} e^{b_k}`; the visible prevalence of
a hidden group is :math:`e^{b_H + C}` and respondent i's network size
:math:`e^{a_i + x_i^\top\theta - C}`. Sizes then divide by the transmission rate and degree
ratio (fixed at 1 by default). ``theta`` is the change in log network size per sd of a
covariate; ``theta_per_unit`` per unit of the covariate as recorded.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from ..errors import BayesNsumError
from ..priors import Prior, PriorConfig, create_group_param
from .base import NSUMModel, draws_array
from .covariates import CovariateDesign
from .latent import LatentModel
from .overdispersed import ZhengScaling


class CorrelatedModel(ZhengScaling, CovariateDesign, NSUMModel):
    """Laga, Bao & Niu (2023) correlated-bias NSUM with respondent covariates."""

    name: ClassVar[str] = "correlated"
    options_used = ("survey_weights", "bias_covariates")
    uses_covariates: ClassVar[bool] = True
    calibration_targets = ("sigma_alpha", "mu_beta", "sigma_beta", "beta", "bias_sd", "theta")
    calibration_priors = {
        "sigma_alpha": {"dist": "Gamma", "mu": 0.8, "sigma": 0.3},
        "mu_beta": {"dist": "Normal", "mu": 0.0, "sigma": 0.7},
        "sigma_beta": {"dist": "Gamma", "mu": 0.8, "sigma": 0.3},
        "bias_sd": {"dist": "Gamma", "mu": 0.5, "sigma": 0.2},
        "theta": {"dist": "Normal", "mu": 0.0, "sigma": 0.3},
    }

    def __init__(self, data, *args: Any, **options: Any) -> None:
        super().__init__(data, *args, **options)
        self.setup_covariates()
        names = self.covariate_names
        bias = list(self.options["bias_covariates"] or [])
        missing = [c for c in bias if c not in names]
        if missing:
            raise BayesNsumError(
                f"[model] bias_covariates: '{missing[0]}' is not one of [data] covariates "
                f"({', '.join(names) or 'none'})"
            )
        self.bias_names = bias

    @classmethod
    def calibration_data(cls, template):
        """The calibration template with two standard-normal respondent covariates ``x1``,
        ``x2`` (fixed seed), so that their effects are calibrated too."""
        from dataclasses import replace

        import pandas as pd

        x = np.random.default_rng(20230417).standard_normal((template.n, 2))
        cov = pd.DataFrame(x, index=template.counts.index, columns=["x1", "x2"])
        return replace(template, covariates=cov)

    # -- data ---------------------------------------------------------------------------
    def bias_design(self) -> np.ndarray:
        """(n, C_b) standardised covariates of the group-specific effects."""
        idx = [self.covariate_names.index(c) for c in self.bias_names]
        return self.design()[:, idx]

    @property
    def coords(self) -> dict[str, list]:
        return {
            **super().coords,
            "covariate": list(self.covariate_names),
            "bias_covariate": list(self.bias_names),
        }

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        cfg["covariates"] = self.covariate_config()
        return cfg

    def restore(self, config: dict) -> None:
        self.restore_covariates(config)

    # -- priors -------------------------------------------------------------------------
    def _has_covariates(self) -> tuple[bool, bool]:
        """(covariates on the degree, covariates on the biases): which priors exist."""
        cov = self.data.covariates
        return bool(cov is not None and cov.shape[1]), bool(self.options["bias_covariates"])

    def param_groups(self) -> dict[str, list[str] | None]:
        hidden = list(self.data.hidden)
        groups: dict[str, list[str] | None] = {
            "sigma_alpha": None,
            "mu_beta": None,
            "sigma_beta": None,
            "bias_sd": None,
            "lkj_eta": None,
            "theta": None,
            "kappa": None,
            "tau": hidden,
            "delta": hidden,
        }
        on_degree, on_bias = self._has_covariates()
        for name, keep in (("theta", on_degree), ("kappa", on_bias)):
            if not keep:
                del groups[name]
        return groups

    def default_priors(self) -> PriorConfig:
        """``sigma_alpha``, ``mu_beta``, ``sigma_beta`` as in Zheng et al.'s model; ``bias_sd``
        (sd of each group's bias, the LKJ sd distribution), ``lkj_eta`` (fixed LKJ
        concentration), ``theta`` (each covariate's effect on log degree per sd), ``kappa``
        (group-specific deviations per sd of a bias covariate), ``tau``, ``delta``."""
        priors = {
            "sigma_alpha": Prior("HalfNormal", {"sigma": 2.0}),
            "mu_beta": Prior("Normal", {"mu": 0.0, "sigma": 5.0}),
            "sigma_beta": Prior("HalfNormal", {"sigma": 5.0}),
            "bias_sd": Prior("HalfNormal", {"sigma": 1.0}),
            "lkj_eta": Prior.fixed(2.0),
            "theta": Prior("Normal", {"mu": 0.0, "sigma": 1.0}),
            "kappa": Prior("Normal", {"mu": 0.0, "sigma": 0.5}),
            "tau": Prior.fixed(1.0),
            "delta": Prior.fixed(1.0),
        }
        return {k: v for k, v in priors.items() if k in self.param_groups()}

    def _check_priors(self) -> None:
        if not self.priors["lkj_eta"].is_fixed:
            raise BayesNsumError("prior 'lkj_eta' must be a fixed number (the LKJ concentration)")
        for name in ("bias_sd", "theta", "kappa"):
            if name in self.priors and self.priors[name].is_fixed:
                raise BayesNsumError(
                    f"prior '{name}' of the correlated model must be a distribution"
                )

    # -- model --------------------------------------------------------------------------
    def _build(self) -> pm.Model:
        d = self.data
        G = len(d.groups)
        with pm.Model(coords=self.coords) as model:
            stats = self.stats.register()
            alpha, beta = self._effects("alpha_dev")
            sd_prior = self.priors["bias_sd"]
            sd_dist = getattr(pm, sd_prior.dist).dist(**sd_prior.canonical(), shape=G)
            chol, _, sds = pm.LKJCholeskyCov(
                "bias_chol",
                eta=self.priors["lkj_eta"].params["value"],
                n=G,
                sd_dist=sd_dist,
                compute_corr=True,
            )
            pm.Deterministic("bias_sd", sds, dims="group")
            e = pm.Normal("bias_z", 0.0, 1.0, dims=("respondent", "group"))
            if self.weighted:  # each respondent's latent-effect density to its weight
                logp = -0.5 * e**2
                pm.Potential("bias_weight", pt.sum(pt.as_tensor(self.weights - 1)[:, None] * logp))
            eta = alpha[:, None] + beta[None, :] + pt.dot(e, chol.T) - 0.5 * sds[None, :] ** 2
            if self.covariate_names:
                theta = self.priors["theta"].create("theta", dims="covariate")
                eta = eta + pt.dot(pt.as_tensor(self.design()), theta)[:, None]
            if self.bias_names:
                kappa_raw = self.priors["kappa"].create("kappa", dims=("bias_covariate", "group"))
                kappa = pm.Deterministic(
                    "bias_effect",
                    kappa_raw - kappa_raw.mean(axis=1, keepdims=True),
                    dims=("bias_covariate", "group"),
                )
                eta = eta + pt.dot(pt.as_tensor(self.bias_design()), kappa)
            create_group_param("tau", self.priors["tau"], "hidden")
            create_group_param("delta", self.priors["delta"], "hidden")
            cell = stats.observed * (stats.y * eta - pt.exp(eta))
            if stats.weighted:
                cell = cell * stats.w[:, None]
            pm.Potential("loglik", pt.sum(cell) - stats.const)
        return model

    # -- the story at given draws -------------------------------------------------------
    def latent(self, draws: xr.Dataset) -> LatentModel:
        """Respondent effect a ~ N(0, sigma_alpha); Poisson answers with log-mean
        a + b_k + x'theta + w'kappa_k + the correlated bias (mean one on the count scale);
        network size e^(a + x'theta - C)."""
        groups = self.data.groups
        n, G = self.data.n, len(groups)
        s = draws.sizes["sample"]
        sigma_alpha = self.param_draws(draws, "sigma_alpha").values.astype(float)
        beta = draws_array(draws, "beta", ("group",), groups)
        log_rate = np.broadcast_to(beta[:, None, :], (s, n, G)).copy()
        shift = np.asarray(
            self._scale(draws["beta"].assign_coords(group=groups), list(self.data.known)).values,
            float,
        )
        shift = np.broadcast_to(shift[:, None], (s, n)).copy()
        offset = self.degree_offset(draws)  # (S, n) or None
        if offset is not None:
            log_rate += offset[:, :, None]
            shift -= offset
        if self.bias_names:
            kappa = np.asarray(
                draws["bias_effect"].transpose("sample", "bias_covariate", "group").values, float
            )
            log_rate += np.einsum("nc,scg->sng", self.bias_design(), kappa)
        chol = self._chol(draws, G)
        z_fit = bias_fit = None
        if "alpha" in draws and "respondent" in draws["alpha"].dims:
            z_fit = draws_array(draws, "alpha", ("respondent",))
        if "bias_z" in draws and "respondent" in draws["bias_z"].dims:
            e = np.asarray(draws["bias_z"].transpose("sample", "respondent", "group").values)
            var = (chol**2).sum(-1)
            bias_fit = np.einsum("sgh,snh->sng", chol, e) - 0.5 * var[:, None, :]
        return LatentModel(
            family="poisson",
            log_rate=log_rate,
            shape=None,
            prior="normal",
            prior_a=np.zeros_like(sigma_alpha),
            prior_b=sigma_alpha,
            groups=groups,
            row_index=np.arange(n),
            z_fitted=z_fit,
            log_degree_shift=shift,
            bias_chol=chol,
            bias_fitted=bias_fit,
        )

    def _chol(self, draws: xr.Dataset, G: int) -> np.ndarray:
        """(S, G, G) lower Cholesky factors of the bias covariance at the draws."""
        if "bias_chol" not in draws:
            raise BayesNsumError("the draws have no variable 'bias_chol'")
        packed = np.asarray(draws["bias_chol"].transpose("sample", ...).values, float)
        rows, cols = np.tril_indices(G)
        out = np.zeros((packed.shape[0], G, G))
        out[:, rows, cols] = packed
        return out
