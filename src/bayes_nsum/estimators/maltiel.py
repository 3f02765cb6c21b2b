r"""The Maltiel, Raftery, McCormick & Baraff (2015) family: degree, barrier, transmission, combined.

One class, :class:`MaltielModel`, assembles the shared components; the four named models are
the four combinations of its two switches:

============  =========  ============
model         barrier    transmission
============  =========  ============
degree        no         no
barrier       yes        no
transmission  no         yes
combined      yes        yes
============  =========  ============

Model (respondent i, group k, N the frame population, :math:`m_k = N_k/N` for known groups):

.. math::
    \log d_i &\sim \mathrm{Normal}(\mu, \sigma)
        \quad\text{(or a gamma degree with the same mean and variance)} \\
    v_H &= \tau_H\,\delta_H\,N_H/N \quad\text{(visible prevalence of hidden group H)},
        \qquad v_k = m_k \text{ for known groups} \\
    r_k &= v_k \exp\{\gamma(\log v_k - c)\}
        \quad\text{(recall calibration, optional; } \gamma = 0 \text{ otherwise)} \\
    y_{ik} \mid d_i &\sim \mathrm{Poisson}(d_i r_k) \quad\text{(no barrier)} \\
    y_{ik} \mid d_i &\sim \mathrm{NegBin}(d_i r_k,\ \alpha_k),
        \quad \alpha_k = p_k(1/\rho_k - 1) \quad\text{(barrier)}

Approximations, stated: the paper's binomial :math:`\mathrm{Bin}(d_i, q)` is replaced by the
Poisson with mean :math:`d_i q` (the shares q are below a few percent, where the two agree to
within q), so the degree can be continuous; the barrier term's Beta(mean :math:`p_k`, dispersion
:math:`\rho_k`) share is replaced by the Gamma of the same mean and shape
:math:`\alpha_k = p_k(1/\rho_k - 1)` (the Beta's alpha; for small :math:`p_k` the two have the
same mean and nearly the same variance), which integrates out exactly into the negative binomial.
Without barrier effects the degree is integrated out exactly too
(:func:`~bayes_nsum.estimators.components.poisson_collapsed_loglik`), so the posterior has only
a handful of parameters whatever the number of respondents.

Two forms of the barrier term (``[model] barrier_dispersion``):

* ``"group"`` (default; the paper's): one dispersion :math:`\rho_k` per group, as above. The
  known groups' shares then have different Gamma rates and the degree cannot be integrated out in
  closed form. ``degree_integration`` says how the model handles it: ``"quadrature"`` (what
  ``"auto"`` picks above ``LARGE_N`` respondents with the lognormal degree) integrates each
  respondent's log-degree out numerically on grids shared by buckets of respondents
  (:mod:`~bayes_nsum.estimators.barrier_grid`; NUTS in a few dimensions, the work per gradient
  a matrix product over distinct answer rows x about 32 nodes x groups); ``"latent"``
  (``"auto"`` up to ``LARGE_N`` respondents, and with the gamma degree) samples a latent
  log-degree per respondent (NUTS in n + a few dimensions; slow beyond a few tens of
  thousands of respondents). With a Beta or Uniform(0, 1) prior on every hidden group's
  :math:`\rho_H` (the default), the sampler moves on :math:`\log\alpha_H`
  (``log_barrier_shape``) instead of :math:`\rho_H`: the same model in coordinates where the
  unidentified :math:`\tau_H` leaves the likelihood (``_group_barrier_shape``); ``rho`` stays
  in the results as a deterministic, and the known groups' dispersions are sampled as
  ``rho_known_groups``.
* ``"shared"``: one dispersion :math:`\rho` for all known groups, :math:`\alpha_k = b\,r_k`
  with :math:`b = 1/\rho - 1`, and a dispersion :math:`\rho_H` per hidden group,
  :math:`\alpha_H = r_H(1/\rho_H - 1)`. Both act on the *reported* share :math:`r`
  (for known groups without recall calibration this is :math:`m_k`, as above; for hidden groups
  it is the visible prevalence, so :math:`\rho_H` describes how unevenly the *reported*
  contacts with H spread across networks, and :math:`\tau_H, \delta_H` stay out of the
  likelihood: their posteriors are their priors). With a common rate for the known groups, a
  respondent's known answers depend on the degree only through their sum, and the degree is
  integrated out by quadrature over the distinct (sum, missingness, hidden answers) keys
  (:func:`~bayes_nsum.estimators.components.negbin_shared_collapsed_loglik`): the posterior has
  a handful of parameters and the cost grows with the number of distinct keys, not with n.
  The price is the assumption that every known group is equally unevenly spread (one
  :math:`\rho`); the per-group predictive checks show whether the data
  disagree (``bayes-nsum report`` writes them to ``ppc.csv``). Needs ``degree = "lognormal"``.

Priors (Maltiel et al. 2015): :math:`\mu \sim U(3, 8)`, :math:`\sigma \sim U(1/4, 2)`,
:math:`p(N_H) \propto 1/N_H` (flat on :math:`\log v_H` over :math:`(-\log N, 0)`),
:math:`\rho_k \sim U(0, 1)` (shared form: ``rho_known`` and ``rho`` per hidden group, both
U(0, 1)). The transmission rate :math:`\tau_H` and the degree ratio
:math:`\delta_H` are not identified by the data: their posteriors equal their priors, and the
size :math:`N_H = N v_H/(\tau_H \delta_H)` inherits them. The default
:math:`\tau_H \sim \mathrm{Beta}(\text{mean } 0.6, \text{concentration } 10)` is a placeholder
that every real analysis should replace; :math:`\delta_H` is fixed at 1 unless given a prior.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from ..errors import BayesNsumError
from ..priors import Prior, PriorConfig, create_group_param, prior_data
from .barrier_grid import GridPlan, grid_loglik, plan_grids
from .base import NSUMModel, draws_array
from .components import (
    NEGBIN_NODES,
    POISSON_NODES,
    gamma_shape_rate,
    latent_log_degree_logp,
    negbin_latent_loglik,
    negbin_shared_collapsed_loglik,
    poisson_collapsed_loglik,
    recall_log_rate,
)
from .latent import LatentModel


class MaltielModel(NSUMModel):
    """Random-degree NSUM with optional barrier effects and transmission bias.

    The four named models are the subclasses; their switches ``barrier`` and ``transmission``
    are class attributes.

    Parameters
    ----------
    data : ARD
        Validated, pre-processed survey data.
    priors : dict, optional
        Overrides ``{parameter: Prior | number | {group: Prior | number}}``.
    prior_set : str, optional
        Name of a prior set (merged below ``priors``).
    degree : {"lognormal", "gamma"}
        Degree distribution.
    recall_calibration : bool
        Fit the recall-error slope :math:`\\gamma` on the known groups and apply it to hidden
        groups.
    barrier_dispersion : {"group", "shared"}
        Barrier models only: one dispersion per group, or one for the known groups.
    degree_integration : {"auto", "quadrature", "latent"}
        Barrier models with one dispersion per group: integrate the degrees out on grids, or
        sample one latent log-degree per respondent ("auto": latent up to ``LARGE_N``
        respondents, quadrature above for the lognormal degree).
    survey_weights : bool
        Use the survey weights (weighted pseudo-likelihood and design adjustment).
    """

    name: ClassVar[str] = "maltiel"
    abstract: ClassVar[bool] = True
    barrier: ClassVar[bool] = False
    transmission: ClassVar[bool] = False
    options_used: ClassVar[tuple[str, ...]] = (
        *NSUMModel.options_used,
        "degree",
        "recall_calibration",
    )
    calibration_targets = ("mu", "sigma", "log_visible", "rho", "rho_known")
    #: SBC needs priors that simulate plausible surveys: the paper's flat prior on the visible
    #: prevalence over (-log N, 0) would simulate surveys where everyone knows the hidden group
    calibration_priors = {
        "log_visible": {
            "dist": "Uniform",
            "lower": float(np.log(1e-4)),
            "upper": float(np.log(3e-2)),
        },
        "mu": {"dist": "Uniform", "lower": 4.0, "upper": 6.5},
        "sigma": {"dist": "Uniform", "lower": 0.4, "upper": 1.2},
    }

    #: above this many respondents a per-group barrier fit with latent degrees is slow
    LARGE_N = 20_000

    def _check_data(self) -> None:
        super()._check_data()
        if self.shared_barrier and self.options["degree"] != "lognormal":
            raise BayesNsumError(
                "[model] barrier_dispersion = 'shared' needs degree = 'lognormal' (its degree "
                "integral uses Gauss-Hermite quadrature around a Gaussian prior)"
            )
        integration = self.options.get("degree_integration", "auto")
        if self.shared_barrier and integration == "latent":
            raise BayesNsumError(
                "[model] degree_integration = 'latent' needs barrier_dispersion = 'group' (the "
                "shared form always integrates the degrees out)"
            )
        if integration == "quadrature" and self.options["degree"] != "lognormal":
            raise BayesNsumError(
                "[model] degree_integration = 'quadrature' needs degree = 'lognormal'; use "
                "degree_integration = 'latent' with the gamma degree"
            )
        latent_degrees = self.barrier and not self.shared_barrier and not self.grid_degrees
        if latent_degrees and len(self.data.counts) > self.LARGE_N:
            warnings.warn(
                f"{len(self.data.counts):,} respondents with barrier_dispersion = 'group' and "
                "latent degrees: the model samples one latent degree per respondent and will be "
                "slow (see docs/benchmarks/speed.md); degree_integration = 'quadrature' (with "
                "the lognormal degree) integrates the degrees out",
                stacklevel=3,
            )

    @property
    def shared_barrier(self) -> bool:
        """Barrier effects with one dispersion shared by the known groups."""
        return self.barrier and self.options.get("barrier_dispersion") == "shared"

    @property
    def grid_degrees(self) -> bool:
        """Per-group barrier dispersion with the degrees integrated out on grids
        (:mod:`~bayes_nsum.estimators.barrier_grid`)."""
        if not self.barrier or self.shared_barrier:
            return False
        integration = self.options.get("degree_integration", "auto")
        if integration == "auto":  # latent where it is tested and data-swappable, grids at scale
            return self.options["degree"] == "lognormal" and len(self.data.counts) > self.LARGE_N
        return integration == "quadrature"

    @property
    def grid_plan(self) -> GridPlan:
        """The distinct answer rows and their integration grids (planned once from the data)."""
        if getattr(self, "_grid_plan", None) is None:
            self._grid_plan = plan_grids(self.answers(), self._log_known(), self.weights)
        return self._grid_plan

    def data_arrays(self, y: np.ndarray) -> dict[str, np.ndarray]:
        if self.grid_degrees:
            raise BayesNsumError(
                "degree_integration = 'quadrature' plans its grids from the data and cannot "
                "swap in new answers; use degree_integration = 'latent' for this check"
            )
        return super().data_arrays(y)

    def structure_key(self) -> str:
        import hashlib

        # the hidden groups' barrier parametrisation depends on prior values (Uniform(0, 1))
        key = super().structure_key() + f"log_shape={self.hidden_log_shape}"
        if self.grid_degrees:  # grids planned from the answers: other answers need their own
            key += self.answers().tobytes().hex()
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    # -- priors ---------------------------------------------------------------------------
    def param_groups(self) -> dict[str, list[str] | None]:
        hidden = list(self.data.hidden)
        groups: dict[str, list[str] | None] = {
            "mu": None,
            "sigma": None,
            "log_visible": hidden,
            "delta": hidden,
        }
        if self.transmission:
            groups["tau"] = hidden
        if self.shared_barrier:
            groups["rho_known"] = None
            groups["rho"] = hidden
        elif self.barrier:
            groups["rho"] = self.data.groups
        if self.options["recall_calibration"]:
            groups["gamma"] = None
        return groups

    def default_priors(self) -> PriorConfig:
        n = self.data.total_population
        priors: PriorConfig = {
            "mu": Prior("Uniform", {"lower": 3.0, "upper": 8.0}),
            "sigma": Prior("Uniform", {"lower": 0.25, "upper": 2.0}),
            "log_visible": Prior("Uniform", {"lower": -float(np.log(n)), "upper": 0.0}),
            "delta": Prior.fixed(1.0),
        }
        if self.transmission:
            priors["tau"] = Prior.beta_mean(0.6, 10.0)
        if self.barrier:
            priors["rho"] = Prior("Uniform", {"lower": 0.0, "upper": 1.0})
        if self.shared_barrier:
            priors["rho_known"] = Prior("Uniform", {"lower": 0.0, "upper": 1.0})
        if self.options["recall_calibration"]:
            priors["gamma"] = Prior("Normal", {"mu": 0.0, "sigma": 0.5})
        return priors

    # -- model ----------------------------------------------------------------------------
    def _log_known(self) -> np.ndarray:
        d = self.data
        return np.log(d.known_sizes.loc[list(d.known)].to_numpy(float) / d.total_population)

    def _build(self) -> pm.Model:
        d = self.data
        kind = self.options["degree"]
        log_known = self._log_known()
        center = float(np.mean(log_known))
        with pm.Model(coords=self.coords) as model:
            stats = self.stats.register()
            mu = self.priors["mu"].create("mu")
            sigma = self.priors["sigma"].create("sigma")
            log_visible = create_group_param("log_visible", self.priors["log_visible"], "hidden")
            log_v = pt.concatenate([pt.as_tensor(log_known), log_visible])
            if self.options["recall_calibration"]:
                gamma = self.priors["gamma"].create("gamma")
                log_rate = recall_log_rate(log_v, gamma, center)
            else:
                log_rate = log_v
            pm.Deterministic("log_rate", log_rate, dims="group")
            # Sizes depend on tau and delta only after sampling (see _derive); they are still
            # created here so that their priors are part of the model and its prior draws.
            if self.transmission:
                create_group_param("tau", self.priors["tau"], "hidden")
            create_group_param("delta", self.priors["delta"], "hidden")
            if self.shared_barrier:
                rho_known = self.priors["rho_known"].create("rho_known")
                rho_h = create_group_param("rho", self.priors["rho"], "hidden")
                log_b = pt.log1p(-rho_known) - pt.log(rho_known)
                nk = len(log_known)
                # the barrier acts on the reported share (known: r_k, hidden: r_H), so tau and
                # delta stay out of the likelihood (see the class docstring)
                hidden_shape = pt.exp(log_rate[nk:]) * (1 / rho_h - 1)
                pm.Deterministic(
                    "barrier_shape",
                    pt.concatenate([pt.exp(log_b + log_rate[:nk]), hidden_shape]),
                    dims="group",
                )
                pm.Potential(
                    "loglik",
                    negbin_shared_collapsed_loglik(
                        stats, nk, len(d.hidden), log_rate, log_b, hidden_shape, mu, sigma
                    ),
                )
            elif self.barrier:
                # true share p_k of each group: known m_k; hidden N_H / N = v_H / (tau delta)
                log_p = self._log_true_share(log_known, log_visible)
                shape = pm.Deterministic(
                    "barrier_shape", self._group_barrier_shape(log_p), dims="group"
                )
                if self.grid_degrees:
                    plan = self.grid_plan
                    keys = SimpleNamespace(
                        **{k[4:]: pm.Data(k, v) for k, v in plan.data_dict().items()}
                    )
                    pm.Potential(
                        "loglik", grid_loglik(stats, keys, plan, log_rate, shape, mu, sigma)
                    )
                    return model
                if kind == "lognormal":
                    x = pm.Normal("log_degree", mu, sigma, dims="respondent")
                    self.weight_latent_prior(x, mu, sigma)
                else:
                    x = pm.Flat("log_degree", dims="respondent")
                    logp = latent_log_degree_logp(x, mu, sigma, kind)
                    if self.weighted:
                        logp = logp * pt.as_tensor(self.weights)
                    pm.Potential("degree_prior", pt.sum(logp))
                pm.Potential("loglik", negbin_latent_loglik(stats, x, log_rate, shape))
            else:
                pm.Potential("loglik", poisson_collapsed_loglik(stats, log_rate, mu, sigma, kind))
        return model

    @property
    def hidden_log_shape(self) -> bool:
        """Whether the per-group barrier model samples each hidden group's barrier shape on the
        log scale instead of its dispersion (see :meth:`_group_barrier_shape`): with a Beta or
        Uniform(0, 1) prior on every hidden group's rho."""
        if not self.barrier or self.shared_barrier:
            return False
        priors = self.priors["rho"]
        return all(
            priors[g].dist == "Beta"
            or (priors[g].dist == "Uniform" and priors[g].params == {"lower": 0.0, "upper": 1.0})
            for g in self.data.hidden
        )

    def _group_barrier_shape(self, log_p):
        r"""Barrier shapes :math:`\alpha_k = p_k(1/\rho_k - 1)` of the per-group model.

        A hidden group's shape is what the answers inform, and :math:`p_H = v_H/(\tau_H
        \delta_H)` involves the unidentified :math:`\tau_H`: sampled as :math:`(\tau_H,
        \rho_H)` the posterior lies along a curved ridge that NUTS crosses in small steps.
        With a Beta(a, b) prior on :math:`\rho_H` (Uniform(0, 1) is Beta(1, 1)) the model
        instead samples :math:`\eta_H = \log\alpha_H = \log p_H + \log u_H`,
        :math:`u_H = (1-\rho_H)/\rho_H`, whose prior given :math:`p_H` follows from
        :math:`1 - \rho_H \sim \mathrm{Beta}(b, a)`:

        .. math::
            \log p(\eta_H \mid p_H) = b \log\sigma(z) + a \log\sigma(-z) - \log B(a, b),
            \quad z = \eta_H - \log p_H

        (the logistic density for Beta(1, 1)). The joint prior of every parameter, and so the
        model, is unchanged; :math:`\rho_H = \sigma(-z)` is kept as a deterministic.
        """
        priors = self.priors["rho"]
        if not self.hidden_log_shape:
            rho = create_group_param("rho", priors, "group")
            return pt.exp(log_p) * (1 / rho - 1)
        nk = len(self.data.known)
        rho_known = create_group_param(
            "rho_known_groups", {g: priors[g] for g in self.data.known}, "known"
        )
        ab = [
            priors[g].canonical() if priors[g].dist == "Beta" else {"alpha": 1.0, "beta": 1.0}
            for g in self.data.hidden
        ]
        pd = prior_data("rho_hidden", {k: [x[k] for x in ab] for k in ("alpha", "beta")})
        eta = pm.CustomDist(
            "log_barrier_shape",
            log_p[nk:],
            pd["alpha"],
            pd["beta"],
            logp=_log_shape_logp,
            random=_log_shape_random,
            dims="hidden",
        )
        rho_h = pt.sigmoid(log_p[nk:] - eta)
        pm.Deterministic("rho", pt.concatenate([rho_known, rho_h]), dims="group")
        return pt.concatenate([pt.exp(log_p[:nk]) * (1 / rho_known - 1), pt.exp(eta)])

    def _log_true_share(self, log_known, log_visible):
        """log p_k: known groups m_k; hidden groups v_H / (tau_H delta_H) (symbolic)."""
        model = pm.modelcontext(None)
        adj = pt.zeros(len(self.data.hidden))
        if self.transmission:
            adj = adj + pt.log(self._named(model, "tau"))
        adj = adj + pt.log(self._named(model, "delta"))
        return pt.concatenate([pt.as_tensor(log_known), log_visible - adj])

    def _named(self, model, name):
        if name in model.named_vars:
            return model[name]
        # all-fixed per-group parameter: a constant vector
        return pt.as_tensor(
            np.array([self.priors[name][h].params["value"] for h in self.data.hidden])
        )

    def log_hidden_size(self, pm_model):
        """:math:`\\log N_H = \\log N + \\log v_H - \\log\\tau_H - \\log\\delta_H` (symbolic; the
        evidence terms' size, see :mod:`~bayes_nsum.estimators.evidence`)."""
        log_size = np.log(self.data.total_population) + self._named(pm_model, "log_visible")
        if self.transmission:
            log_size = log_size - pt.log(self._named(pm_model, "tau"))
        return log_size - pt.log(self._named(pm_model, "delta")), None

    # -- the story at given draws ---------------------------------------------------------
    def latent(self, draws: xr.Dataset) -> LatentModel:
        """Log-degree ~ N(mu, sigma) (or the matching gamma degree); Poisson answers with
        log-mean log d + ``log_rate``, NB2 with shape ``barrier_shape`` under barrier effects."""
        groups = self.data.groups
        mu = self.param_draws(draws, "mu").values.astype(float)
        sigma = self.param_draws(draws, "sigma").values.astype(float)
        log_rate = draws_array(draws, "log_rate", ("group",), groups)
        shape = draws_array(draws, "barrier_shape", ("group",), groups) if self.barrier else None
        if self.options["degree"] == "gamma":
            a, b = gamma_shape_rate(mu, sigma)
            prior = "gamma"
        else:
            a, b, prior = mu, sigma, "normal"
        z_fit = None
        if "log_degree" in draws and "respondent" in draws["log_degree"].dims:
            z_fit = draws_array(draws, "log_degree", ("respondent",))
        return LatentModel(
            family="negbin" if self.barrier else "poisson",
            log_rate=log_rate[:, None, :],
            shape=None if shape is None else shape[:, None, :],
            prior=prior,
            prior_a=a,
            prior_b=b,
            groups=groups,
            z_fitted=z_fit,
            nodes=NEGBIN_NODES if self.barrier else POISSON_NODES,
        )

    def known_share_from_rate(self, draws: xr.Dataset, group: str, rate: np.ndarray) -> np.ndarray:
        """Undo the recall calibration: :math:`\\log r = (1+\\gamma)\\log m - \\gamma c`."""
        if not self.options["recall_calibration"]:
            return rate
        gamma = self.param_draws(draws, "gamma").values.astype(float).ravel()
        center = float(np.mean(self._log_known()))
        return np.exp((np.log(rate) + gamma * center) / (1 + gamma))

    # -- derived --------------------------------------------------------------------------
    def _derive(self, post: xr.Dataset) -> xr.Dataset:
        log_vis = self.param_draws(post, "log_visible", "hidden")
        delta = self.param_draws(post, "delta", "hidden")
        log_prev = log_vis - np.log(delta)
        if self.transmission:
            tau = self.param_draws(post, "tau", "hidden")
            post["tau"] = tau
            log_prev = log_prev - np.log(tau)
        post["delta"] = delta
        post["log_visible"] = log_vis
        if "log_degree" in post:
            post["degree"] = np.exp(post["log_degree"])
        return self._hidden_outputs(post, log_prev)


class DegreeModel(MaltielModel):
    """Random degree model (Maltiel et al. 2015, section 3.1): Poisson counts, degree integrated
    out exactly."""

    name = "degree"


class BarrierModel(MaltielModel):
    """Barrier-effects model (Maltiel et al. 2015): group shares vary across respondents
    (Gamma-Poisson, i.e. negative binomial, with dispersion rho_k)."""

    name = "barrier"
    barrier = True
    options_used = (*MaltielModel.options_used, "barrier_dispersion", "degree_integration")


class TransmissionModel(MaltielModel):
    """Transmission-bias model (Maltiel et al. 2015): hidden groups are seen at rate tau_H."""

    name = "transmission"
    transmission = True


class CombinedModel(MaltielModel):
    """Barrier effects and transmission bias together (Maltiel et al. 2015, combined model)."""

    name = "combined"
    barrier = True
    transmission = True
    options_used = (*MaltielModel.options_used, "barrier_dispersion", "degree_integration")


def _log_shape_logp(value, loc, a, b):
    """Log density of the log barrier shape given a Beta(a, b) prior on rho (see
    ``_group_barrier_shape``)."""
    z = value - loc
    betaln = pt.gammaln(a) + pt.gammaln(b) - pt.gammaln(a + b)
    return -b * pt.softplus(-z) - a * pt.softplus(z) - betaln


def _log_shape_random(loc, a, b, rng=None, size=None):
    """Draws of the log barrier shape: log p + log((1 - rho) / rho) with rho ~ Beta(a, b)."""
    rho = rng.beta(a, b, size=size)
    return loc + np.log1p(-rho) - np.log(rho)
