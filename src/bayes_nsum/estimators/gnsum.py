r"""Bayesian generalized NSUM: the frame survey and a hidden-population sample in one posterior.

Feehan & Salganik (2016) replace the scale-up method's unknown visibility of a hidden group H
by an estimate from a sample of H's members (:mod:`bayes_nsum.hidden_sample`). This model
(``[model] name = "gnsum_bayes"``) is the Maltiel et al. (2015) transmission model whose
transmission rate :math:`\tau_H` and degree ratio :math:`\delta_H` get a likelihood from that
sample instead of being their priors.

Frame survey (respondent i, group k; as :class:`~bayes_nsum.estimators.maltiel.MaltielModel`
without barrier effects):

.. math::
    \log d_i &\sim \mathrm{Normal}(\mu, \sigma)
        \quad\text{(or the gamma degree with the same mean and variance)} \\
    y_{ik} \mid d_i &\sim \mathrm{Poisson}(d_i\, r_k), \qquad r_k = N_k / N \ (k \text{ known}),
        \qquad r_H = \tau_H\,\delta_H\,\pi_H,

with :math:`\pi_H = N_H/N` the prevalence; :math:`d\,r_H` is the expected number of in-reports,
so :math:`\bar v_{H,F} = \bar d_F\,\tau_H\,\delta_H` is Feehan & Salganik's visibility.

Hidden sample (member j of the sampled group H, known group k):

.. math::
    \log d^H_j &\sim \mathrm{Normal}(\mu + \log\delta_H, \sigma) \\
    y_{jk} \mid d^H_j &\sim \mathrm{Poisson}(d^H_j\, N_k/N) \\
    \tilde v_{jk} \mid y_{jk} &\sim \mathrm{Binomial}(y_{jk}, \tau_H)

(each of j's alters in a known group knows j's membership with probability :math:`\tau_H`).
The members' degrees are integrated out exactly as the frame's are
(:func:`~bayes_nsum.estimators.components.poisson_collapsed_loglik` with log-mean
:math:`\mu + \log \delta_H`), so :math:`\delta_H` is the ratio of the hidden members' mean
degree to the frame's (same :math:`\sigma`), and the binomial part depends on :math:`\tau_H`
only: :math:`\sum_{jk} [\tilde v_{jk}\log\tau_H + (y_{jk}-\tilde v_{jk})\log(1-\tau_H)] +
\text{const}`. The frame answers learn :math:`\tau_H\delta_H\pi_H`, the hidden sample
:math:`\tau_H` and :math:`\delta_H`, and so the size :math:`N_H = N\pi_H` is identified. Without
the hidden sample this is the transmission model, whose size inherits the prior of
:math:`\tau_H\delta_H`.

Priors: :math:`\mu \sim U(3, 8)`, :math:`\sigma \sim U(1/4, 2)` (Maltiel et al.);
:math:`\log \pi_H \sim U(-\log N, 0)` (:math:`p(N_H) \propto 1/N_H` on :math:`(1, N)`);
for the sampled group :math:`\tau_H \sim \mathrm{Beta}(1, 1)` and
:math:`\delta_H \sim \mathrm{LogNormal}(0, 1)`; other hidden groups of the survey keep the
transmission model's :math:`\tau_H \sim \mathrm{Beta}(\text{mean } 0.6, \text{conc. } 10)` and
:math:`\delta_H = 1` (no hidden sample informs them).

Stated approximations and limits: Poisson for the papers' binomial counts (as in the Maltiel
family); no barrier effects and no false positives (Feehan & Salganik's precision
:math:`\eta = 1`); the hidden sample is treated as a simple random sample of H (no weights),
with the same degree spread :math:`\sigma` as the frame. The per-respondent log-likelihood
(LOO, predictive checks, degrees) covers the frame survey; the hidden sample's term is the
potential ``hidden_sample`` (not named ``*loglik*``, so likelihood power-scaling leaves it out).
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from scipy.special import gammaln

from ..data import ARD
from ..errors import BayesNsumError
from ..hidden_sample import HiddenSample
from ..priors import Prior, PriorConfig, create_group_param
from .base import NSUMModel
from .components import CountStats, gamma_shape_rate, poisson_collapsed_loglik
from .maltiel import MaltielModel

#: data containers of the hidden sample (``hidden_sample_<name>``)
_HS_FIELDS = ("totals", "patterns", "uniq_s", "uniq_pattern", "uniq_count", "const")


def hidden_sample_arrays(y: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
    """The hidden sample's data containers for answers ``y`` and aware counts ``v``
    (members x known groups, NaN where missing): the degree statistics and the binomial
    totals :math:`\\sum \\tilde v`, :math:`\\sum (y - \\tilde v)` and :math:`\\sum \\log\\binom{y}{\\tilde v}`."""
    stats = CountStats.from_matrix(y)
    data = stats.data_dict()
    out = {f"hidden_sample_{f}": data[f"ard_{f}"] for f in _HS_FIELDS}
    ok = ~np.isnan(y)
    y0, v0 = np.where(ok, y, 0.0), np.where(ok, v, 0.0)
    out["hidden_sample_aware"] = np.asarray(v0.sum())
    out["hidden_sample_unaware"] = np.asarray((y0 - v0).sum())
    out["hidden_sample_binom_const"] = np.asarray(
        (gammaln(y0 + 1) - gammaln(v0 + 1) - gammaln(y0 - v0 + 1)).sum()
    )
    return out


class GNSUMModel(MaltielModel):
    """Frame survey and hidden-population sample fitted jointly (generalized NSUM).

    Parameters
    ----------
    data : ARD
        The frame survey with ``hidden_sample`` set (``[data] hidden_sample``).
    priors, prior_set
        As for every model (parameters ``mu``, ``sigma``, ``log_prevalence``, ``tau``,
        ``delta``).
    degree : {"lognormal", "gamma"}
        Degree distribution (of the frame and of the hidden members).
    survey_weights : bool
        Weighted pseudo-likelihood of the frame survey (the hidden sample is unweighted).
    """

    name: ClassVar[str] = "gnsum_bayes"
    abstract: ClassVar[bool] = False
    transmission: ClassVar[bool] = True
    uses_hidden_sample: ClassVar[bool] = True
    options_used: ClassVar[tuple[str, ...]] = (*NSUMModel.options_used, "degree")
    calibration_targets = ("mu", "sigma", "log_prevalence", "tau", "delta")
    not_identified: ClassVar[tuple[str, ...]] = ("tau_area_sd",)
    calibration_priors = {
        "log_prevalence": {
            "dist": "Uniform",
            "lower": float(np.log(1e-3)),
            "upper": float(np.log(2e-2)),
        },
        "mu": {"dist": "Uniform", "lower": 4.0, "upper": 6.5},
        "sigma": {"dist": "Uniform", "lower": 0.4, "upper": 1.2},
        "tau": {"dist": "Beta", "alpha": 2.0, "beta": 2.0},
        "delta": {"dist": "LogNormal", "mu": 0.0, "sigma": 0.4},
    }

    def _check_data(self) -> None:
        NSUMModel._check_data(self)
        sample = self.data.hidden_sample
        if sample is None:
            raise BayesNsumError(
                f"model '{self.name}' needs a hidden-population sample ([data] hidden_sample)"
            )
        if sample.group not in self.data.hidden:
            raise BayesNsumError(
                f"the hidden sample samples '{sample.group}', which is not a hidden group of the "
                f"survey ({', '.join(self.data.hidden)})"
            )
        self.sample: HiddenSample = sample.with_known(list(self.data.known))
        self.h_index = list(self.data.hidden).index(sample.group)

    # -- priors ---------------------------------------------------------------------------
    def param_groups(self) -> dict[str, list[str] | None]:
        hidden = list(self.data.hidden)
        return {"mu": None, "sigma": None, "log_prevalence": hidden, "tau": hidden, "delta": hidden}

    def default_priors(self) -> PriorConfig:
        n = self.data.total_population
        sampled = self.data.hidden_sample.group if self.data.hidden_sample else None

        def per_group(informed: Prior, other: Prior) -> dict[str, Prior]:
            return {h: informed if h == sampled else other for h in self.data.hidden}

        return {
            "mu": Prior("Uniform", {"lower": 3.0, "upper": 8.0}),
            "sigma": Prior("Uniform", {"lower": 0.25, "upper": 2.0}),
            "log_prevalence": Prior("Uniform", {"lower": -float(np.log(n)), "upper": 0.0}),
            "tau": per_group(
                Prior("Beta", {"alpha": 1.0, "beta": 1.0}), Prior.beta_mean(0.6, 10.0)
            ),
            "delta": per_group(Prior("LogNormal", {"mu": 0.0, "sigma": 1.0}), Prior.fixed(1.0)),
        }

    # -- model ----------------------------------------------------------------------------
    def _build(self) -> pm.Model:
        kind = self.options["degree"]
        log_known = self._log_known()
        with pm.Model(coords=self.coords) as model:
            stats = self.stats.register()
            mu = self.priors["mu"].create("mu")
            sigma = self.priors["sigma"].create("sigma")
            log_prev = create_group_param("log_prevalence", self.priors["log_prevalence"], "hidden")
            create_group_param("tau", self.priors["tau"], "hidden")
            create_group_param("delta", self.priors["delta"], "hidden")
            log_tau = pt.log(self._named(model, "tau"))
            log_delta = pt.log(self._named(model, "delta"))
            log_visible = pm.Deterministic(
                "log_visible", log_prev + log_tau + log_delta, dims="hidden"
            )
            log_rate = pt.concatenate([pt.as_tensor(log_known), log_visible])
            pm.Deterministic("log_rate", log_rate, dims="group")
            pm.Potential("loglik", poisson_collapsed_loglik(stats, log_rate, mu, sigma, kind))
            h = self.h_index
            y, v = self.sample.arrays()
            hs = SimpleNamespace(
                **{k[14:]: pm.Data(k, a) for k, a in hidden_sample_arrays(y, v).items()}
            )
            degree = poisson_collapsed_loglik(
                hs, pt.as_tensor(log_known), mu + log_delta[h], sigma, kind
            )
            tau_h = pt.exp(log_tau[h])
            binom = hs.aware * pt.log(tau_h) + hs.unaware * pt.log1p(-tau_h) + hs.binom_const
            pm.Potential("hidden_sample", degree + binom)
        return model

    def hidden_sample_arrays(self, y: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
        """Data containers of another hidden sample of the same shape (calibration)."""
        return hidden_sample_arrays(y, v)

    def simulate_hidden_sample(
        self, draws: xr.Dataset, rng: np.random.Generator, n_members: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Simulate hidden samples ``(y, v)``, each (S, m, K), from the model at the draws:
        the members' degrees, their answers about the known groups and how many of those know
        their status."""
        from .base import stack_draws

        st = stack_draws(draws)
        m = self.sample.n if n_members is None else int(n_members)
        h = self.data.hidden[self.h_index]
        mu = self.param_draws(st, "mu").values.astype(float).ravel()
        sigma = self.param_draws(st, "sigma").values.astype(float).ravel()
        tau = self.param_draws(st, "tau", "hidden").sel(hidden=h).values.astype(float).ravel()
        delta = self.param_draws(st, "delta", "hidden").sel(hidden=h).values.astype(float).ravel()
        loc = (mu + np.log(delta))[:, None]
        if self.options["degree"] == "gamma":
            a, b = gamma_shape_rate(loc, sigma[:, None])
            d = rng.gamma(a, 1 / b, size=(len(mu), m))
        else:
            d = np.exp(loc + sigma[:, None] * rng.standard_normal((len(mu), m)))
        share = np.exp(self._log_known())
        y = rng.poisson(d[:, :, None] * share[None, None, :]).astype(float)
        v = rng.binomial(y.astype(np.int64), tau[:, None, None]).astype(float)
        return y, v

    def simulate_auxiliary(self, draws: xr.Dataset, rng: np.random.Generator) -> dict:
        """A hidden sample simulated at the first draw, as data containers (calibration)."""
        y, v = self.simulate_hidden_sample(draws.isel(chain=[0], draw=[0]), rng)
        return hidden_sample_arrays(y[0], v[0])

    @classmethod
    def calibration_data(cls, template: ARD, n_members: int = 100) -> ARD:
        """The template with a hidden sample of ``n_members`` members of its first hidden
        group (answers replaced in every replication)."""
        known = list(template.known)
        ones = pd.DataFrame(np.ones((n_members, len(known))), columns=known)
        sample = HiddenSample(template.hidden[0], ones, ones.copy(), "calibration")
        return replace(template, hidden_sample=sample)

    # -- derived --------------------------------------------------------------------------
    def _derive(self, post: xr.Dataset) -> xr.Dataset:
        """Size, prevalence and "1 in X" from :math:`\\pi_H`; the visibility
        :math:`\\bar v_{H,F} = \\bar d_F \\tau_H \\delta_H` (mean in-reports per member)."""
        log_prev = self.param_draws(post, "log_prevalence", "hidden")
        tau = self.param_draws(post, "tau", "hidden")
        delta = self.param_draws(post, "delta", "hidden")
        mu, sigma = self.param_draws(post, "mu"), self.param_draws(post, "sigma")
        post["tau"], post["delta"] = tau, delta
        post["log_prevalence"] = log_prev
        post["log_visible"] = log_prev + np.log(tau) + np.log(delta)
        post["visibility"] = np.exp(mu + sigma**2 / 2) * tau * delta
        return self._hidden_outputs(post, log_prev)

    def known_share_from_rate(self, draws: xr.Dataset, group: str, rate: np.ndarray) -> np.ndarray:
        return rate
