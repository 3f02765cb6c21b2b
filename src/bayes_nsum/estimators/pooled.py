r"""The partially pooled multi-area NSUM model (Scale of Harm; Nyarko-Agyei et al., arXiv 2407.13267).

Respondent :math:`i` lives in area (municipality) :math:`j = j(i)`; groups :math:`k` are known
(sizes :math:`N_{jk}` given per area in the area table) or hidden. :math:`P_j` is the area's
population and :math:`r_{jk} = N_{jk}/P_j` the share of the area's population in group k (the
rate at which a respondent's contacts fall in k).

.. math::
    x_i = \log d_i &\sim \mathrm{Normal}(\mu, \sigma) \\
    \log r_{jk} &= m_k + s_k z_{jk}, \qquad z_{jk} \sim \mathrm{Normal}(0, 1)
        \quad\text{(non-centred partial pooling across areas)} \\
    y_{ik} \mid x_i &\sim \mathrm{NegBin2}\big(\text{mean } \exp(x_i + \log r_{j(i)k}
        + \epsilon_{ik}),\ \text{shape } w_k\big)
        \quad\text{(variance } m + m^2/w_k)

with :math:`\epsilon_{ik} = 0` unless ``correlated = true`` (below). The paper's
:math:`\rho_{jk}` is :math:`-\log r_{jk}` and its :math:`\delta_i` is :math:`x_i`.

Anchoring the scale (option ``anchor``)
---------------------------------------
Only the products :math:`d_i r_{jk}` are seen in the answers, so something must fix the scale.

``anchor = "likelihood"`` (default)
    The known groups' per-area shares are data: :math:`\log r_{jk} = \log(N_{jk}/P_j)` for every
    known k and area j, exactly. Only hidden groups get area effects :math:`(m_H, s_H, z_{jH})`;
    the degrees :math:`x_i` are learnt on the known groups' absolute scale, and :math:`\mu` is
    free. This is the fast and (on simulations, see ``docs/benchmarks/pooled.md``) the better
    calibrated option: the known sizes enter with their full information and the posterior has
    no direction that only the prior identifies.

``anchor = "posthoc"`` (the original study)
    Every group, known or hidden, gets pooled area effects :math:`(m_k, s_k, z_{jk})`;
    :math:`\mu` is fixed (default 5.5, as in the study's :math:`\delta_i \sim N(5.5, \cdot)`),
    which fixes the otherwise unidentified location. After sampling, each draw is scaled in each
    area so that the known groups match their sizes:

    .. math::
        C_j = \log\sum_{k\,\mathrm{known}} N_{jk}/P_j
            - \log\sum_{k\,\mathrm{known}} r_{jk}, \qquad
        \tilde r_{jH} = r_{jH}\, e^{C_j}.

    (The study held a group out of its own scaling; that matters only for the known groups'
    internal-consistency estimates, which this model does not report.) The known sizes then
    inform the hidden estimates only through this ratio, after the fact, and the per-area
    scaling inherits the noise of the pooled known-group rates of small areas.

Correlated biases (option ``correlated = true``)
------------------------------------------------
Adds a respondent-by-group bias :math:`\epsilon_i = L u_i`, :math:`u_i \sim N(0, I)`,
:math:`L L^\top = \Omega` with an LKJ(:math:`\eta`) prior on the correlation and per-group sds
:math:`b_k`; the bias enters the log mean as :math:`\epsilon_{ik} - b_k^2/2` so that
:math:`E[e^{\epsilon_{ik}}] = 1` and :math:`r_{jk}` keeps its meaning. This is
:math:`n \times K` more latent variables: it is slow (not part of the speed target) and the
bias sds trade off against the NB shapes :math:`w_k`.

Outputs
-------
Per area j and hidden group H: size :math:`\hat N_{jH} = P_j \tilde r_{jH}`, prevalence
:math:`\hat N_{jH}/D_{jH}` with :math:`D_{jH}` = ``ard.denominator(H, j)`` (or, for a national
numeric denominator D, :math:`D P_j/N`) and "1 in X". National: :math:`\sum_j \hat N_{jH}` over
**every** area of the area table, including areas without respondents, whose :math:`z_{jH}` have
no data and are draws from the pooling distribution (prediction), divided by
``ard.denominator(H)``. Variables ``size_area``, ``prevalence_area``, ``one_in_x_area`` have dims
(chain, draw, hidden, area); ``size``, ``prevalence``, ``one_in_x`` (chain, draw, hidden).

Computation
-----------
The NB2 likelihood is exact (no approximation): it is written per cell as
:math:`y(\eta - \log w) - (w + y)\,\mathrm{softplus}(\eta - \log w) + \log\Gamma(y+w)
- \log\Gamma(w) - \log y!`, where the gamma-function terms use the per-group histogram of the
answers and :math:`\sum y\,\eta` uses per-area totals, so the only n x K work is one softplus.
The respondent degree is a latent variable (NB counts do not allow integrating it out in
closed form), centred (well identified by exact known sizes), non-centred with roster shares.

Priors (defaults; every one overridable by name, see :meth:`PooledModel.default_priors`):
:math:`\mu \sim N(5, 2)` (likelihood anchor) or fixed at 5.5 (post-hoc anchor),
:math:`\sigma \sim \mathrm{HalfNormal}(1)`, :math:`m_k \sim N(-5, 2.5)`, :math:`s_k \sim
\mathrm{Gamma}(2, 3)` (shape, rate: zero-avoiding), :math:`w_k \sim \mathrm{LogNormal}(0, 1.5)`,
:math:`b_k \sim \mathrm{HalfNormal}(0.5)`, :math:`\eta = 2`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from ..errors import BayesNsumError, DataError
from ..priors import Prior, PriorConfig, create_group_param
from .base import NSUMModel, draws_array
from .components import negbin_area_loglik
from .latent import LatentModel


class PooledModel(NSUMModel):
    """Partially pooled multi-area negative-binomial NSUM (see the module docstring).

    Parameters
    ----------
    data : ARD
        Pre-processed survey with an ``area`` per respondent and an area table holding every
        known group's size per area.
    priors : dict, optional
        Overrides ``{parameter: Prior | number | {group: Prior | number}}``; parameter names
        are the keys of :meth:`default_priors` (unknown names raise ``PriorError``).
    prior_set : str, optional
        Name of a prior set (merged below ``priors``).
    anchor : {"likelihood", "posthoc"}
        How the known groups fix the scale (default ``"likelihood"``).
    correlated : bool
        Add correlated respondent-by-group biases with an LKJ prior (default False).
    """

    name: ClassVar[str] = "pooled"
    options_used: ClassVar[tuple[str, ...]] = (
        *NSUMModel.options_used,
        "anchor",
        "correlated",
        "area_effects",
        "known_shares",
        "zero_inflation",
        "transmission_by_area",
    )
    requires_areas = True
    #: nutpie's adaptation settles within its own default of 300 steps on this model (ESS and
    #: R-hat as with 1000 on three designs; docs/benchmarks/pooled.md, "Tuning steps")
    nutpie_tune = 300
    evidence_needs = {"anchor": "likelihood"}  # post-hoc sizes are scaled after sampling
    calibration_targets = ("mu", "sigma", "log_prev_mean", "sigma_area", "nb_shape", "tau", "size")
    calibration_priors = {
        "mu": {"dist": "Normal", "mu": 5.0, "sigma": 0.3},
        "sigma": {"dist": "Gamma", "mu": 0.8, "sigma": 0.2},
        "log_prev_mean": {"dist": "Normal", "mu": -5.5, "sigma": 0.7},
        "sigma_area": {"dist": "Gamma", "mu": 0.4, "sigma": 0.15},
        "nb_shape": {"dist": "Gamma", "mu": 2.0, "sigma": 1.0},
        "tau": {"dist": "Beta", "mean": 0.6, "concentration": 20},
    }

    # -- data ------------------------------------------------------------------------------
    def _check_data(self) -> None:
        super()._check_data()
        d = self.data
        if not d.has_areas:
            raise DataError(
                "the pooled model needs respondents' areas and an area table ([data] area and "
                "[data] area_table)"
            )
        missing = [k for k in d.known if k not in d.area_table.columns]
        if missing:
            raise DataError(
                f"the pooled model needs each known group's size per area: area_table has no "
                f"column for {', '.join(missing)}"
            )
        if not d.known:
            raise DataError("the pooled model needs at least one known group")
        if not d.hidden:
            raise DataError("the pooled model needs at least one hidden group")
        if self.roster_shares:
            if d.roster_counts is None:
                raise DataError(
                    "[model] known_shares = 'roster' needs a household roster ([data] roster)"
                )
            if self.options["anchor"] == "posthoc":
                raise BayesNsumError(
                    "[model] known_shares = 'roster' needs anchor = 'likelihood' (with the post-hoc "
                    "anchor the known shares are pooled parameters already)"
                )
            missing = [k for k in d.known if k not in d.roster_counts.columns]
            if missing:
                raise DataError(f"the household roster gives no counts for {', '.join(missing)}")

    #: the known groups' per-area shares are parameters informed by the roster counts
    roster_shares = property(lambda self: self.options["known_shares"] == "roster")

    def roster_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(J,) members rostered per area and (J, K_known) members in each known group."""
        rc = self.data.roster_counts.reindex(self.data.areas).fillna(0.0)
        return rc["members"].to_numpy(float), rc[list(self.data.known)].to_numpy(float)

    def _check_priors(self) -> None:
        tau = self.priors["tau"]
        if self.options["transmission_by_area"] and all(
            p.is_fixed and p.params["value"] == 1.0 for p in tau.values()
        ):
            raise BayesNsumError(
                "[model] transmission_by_area = true varies tau around [priors.tau], which is "
                "fixed at 1 (full visibility): give [priors.tau] a prior or a value below 1"
            )

    @property
    def coords(self) -> dict[str, list[str]]:
        return {**super().coords, "area": self.data.areas}

    @property
    def area_index(self) -> np.ndarray:
        """Index into ``data.areas`` of each respondent's area."""
        pos = {a: j for j, a in enumerate(self.data.areas)}
        return np.array([pos[str(a)] for a in self.data.area.loc[self.data.counts.index]])

    def known_log_rate(self) -> np.ndarray:
        """(J, K_known) :math:`\\log(N_{jk}/P_j)` from the area table (-inf where N_jk = 0)."""
        at = self.data.area_table
        sizes = at[list(self.data.known)].to_numpy(float)
        with np.errstate(divide="ignore"):
            return np.log(sizes / at["population"].to_numpy(float)[:, None])

    def area_totals(self, y: np.ndarray | None = None) -> np.ndarray:
        """(J, G) sums of answers per area and group (missing answers count 0)."""
        J, G = len(self.data.areas), len(self.data.groups)
        out = np.zeros((J, G))
        rows = self.stats.y if y is None else np.nan_to_num(y)
        w = self.weights
        np.add.at(out, self.area_index, rows if w is None else rows * w[:, None])
        return out

    def data_arrays(self, y: np.ndarray) -> dict[str, np.ndarray]:
        return {**super().data_arrays(y), "ard_area_totals": self.area_totals(y)}

    # -- priors ----------------------------------------------------------------------------
    @property
    def pooled_groups(self) -> list[str]:
        """Groups with pooled area effects: hidden groups, or every group when post-hoc."""
        return self.data.groups if self.options["anchor"] == "posthoc" else list(self.data.hidden)

    @property
    def pooled_dim(self) -> str:
        return "group" if self.options["anchor"] == "posthoc" else "hidden"

    #: adaptive Gauss-Hermite nodes of the post-fit integrals over the degree (LOO, degrees; not
    #: the sampler's): 12 agree with 64 to 2e-9 per respondent on 150 x 30 (test_story: 1e-6)
    POSTFIT_NODES = 12
    #: ratio of the data's precision about an area's log rate to the pooling prior's precision
    #: above which ``area_effects = "auto"`` centres a group's area effects
    CENTRING_RATIO = 2.0

    @property
    def centring(self) -> np.ndarray:
        """Per pooled group, 1 where the area effects are centred, 0 where non-centred.

        ``area_effects = "auto"`` centres a group when a typical area's answers pin its log rate
        more tightly than the pooling distribution does: :math:`I \\hat s^2 >` 2, with
        :math:`I` the median over areas with respondents of
        :math:`\\sum_i \\hat\\mu \\hat w/(\\hat w + \\hat\\mu)` (the negative-binomial
        information about a log mean; :math:`\\hat\\mu` the group's mean answer in the area,
        :math:`\\hat w` a moment estimate of the NB shape from the within-area variance) and
        :math:`\\hat s^2` the between-area variance of the areas' log mean answers less their
        average sampling variance :math:`1/I_j`. Centred effects mix well when the data pin each
        area's rate, non-centred when the pooling prior does (Papaspiliopoulos, Roberts and
        Skold 2007).
        """
        if getattr(self, "_centring", None) is not None:
            return self._centring
        opt = self.options["area_effects"]
        groups = self.pooled_groups
        if opt != "auto":
            self._centring = np.full(len(groups), 1.0 if opt == "centred" else 0.0)
            return self._centring
        y = self.answers()
        J = len(self.data.areas)
        lam = []
        for g in groups:
            col = y[:, self.data.groups.index(g)]
            ok = ~np.isnan(col)
            area, vals = self.area_index[ok], col[ok]
            n = np.bincount(area, minlength=J)
            tot, sq = np.bincount(area, vals, minlength=J), np.bincount(area, vals**2, minlength=J)
            has = n > 1
            mean = tot[has] / n[has]
            var = (sq[has] - n[has] * mean**2) / (n[has] - 1)
            excess = np.sum(n[has] * np.maximum(var - mean, 0)) / max(
                np.sum(n[has] * mean**2), 1e-12
            )
            w = 1 / max(excess, 1e-6)  # var = mean + mean^2 / w within areas
            info = n[has] * mean * w / (w + mean)
            pos = mean > 0
            if pos.sum() < 2:
                lam.append(0.0)
                continue
            s2 = np.var(np.log(mean[pos])) - np.mean(1 / info[pos])
            lam.append(1.0 if np.median(info) * max(s2, 0.0) > self.CENTRING_RATIO else 0.0)
        self._centring = np.asarray(lam)
        return self._centring

    def config(self) -> dict:
        """As the base class, with the area effects' parametrisation actually used."""
        return {**super().config(), "area_centring": [float(v) for v in self.centring]}

    def restore(self, config: dict) -> None:
        """Use the saved fit's parametrisation of the area effects (see :meth:`config`)."""
        if config.get("area_centring") is not None:
            self._centring = np.asarray(config["area_centring"], float)

    @staticmethod
    def area_log_rate(m, s, z, lam):
        """Log share :math:`m + s^{1-\\lambda}(z - \\lambda m)` from the area effects z, which are
        N(0, 1) (non-centred, :math:`\\lambda = 0`) or N(m, s) (centred, :math:`\\lambda = 1`);
        numpy, xarray or PyTensor."""
        return m + s ** (1 - lam) * (z - lam * m)

    def param_groups(self) -> dict[str, list[str] | None]:
        groups: dict[str, list[str] | None] = {
            "mu": None,
            "sigma": None,
            "log_prev_mean": self.pooled_groups,
            "sigma_area": self.pooled_groups,
            "nb_shape": self.data.groups,
            "tau": list(self.data.hidden),
            "delta": list(self.data.hidden),
        }
        if self.options["transmission_by_area"]:
            groups["tau_area_sd"] = list(self.data.hidden)
        if self.options["zero_inflation"]:
            groups["zero_prob"] = self.data.groups
        if self.roster_shares:
            groups["share_logit_mean"] = list(self.data.known)
            groups["share_logit_sd"] = list(self.data.known)
        if self.options["correlated"]:
            groups["bias_sd"] = None
            groups["lkj_eta"] = None
        return groups

    def default_priors(self) -> PriorConfig:
        """Default priors, by parameter name.

        ``mu``, ``sigma``: mean and sd of the log-degree (``mu`` fixed at 5.5 with the post-hoc
        anchor, where it is not identified); ``log_prev_mean`` (:math:`m_k`), ``sigma_area``
        (:math:`s_k`, zero-avoiding Gamma(2, 3): Chung et al. 2013): centre and spread across
        areas of each pooled group's log share of the area population; ``nb_shape``
        (:math:`w_k`): NB2 shape per group; ``tau`` (:math:`\\tau_H`, transmission rate or
        visibility) and ``delta`` (:math:`\\delta_H`, degree ratio) per hidden group, both fixed
        at 1 by default (the sizes are then those of the population visible to respondents;
        give a prior to correct for visibility); with ``transmission_by_area``: ``tau_area_sd``
        (spread of the area rates on the logit scale); with ``zero_inflation``: ``zero_prob``
        (:math:`\\theta_k`, share of structural zeros per group); with ``correlated``: ``bias_sd``
        (every group's bias sd, the LKJ sd distribution) and ``lkj_eta`` (LKJ concentration).
        """
        posthoc = self.options["anchor"] == "posthoc"
        priors: PriorConfig = {
            "mu": Prior.fixed(5.5) if posthoc else Prior("Normal", {"mu": 5.0, "sigma": 2.0}),
            "sigma": Prior("HalfNormal", {"sigma": 1.0}),
            "log_prev_mean": Prior("Normal", {"mu": -5.0, "sigma": 2.5}),
            "sigma_area": Prior("Gamma", {"alpha": 2.0, "beta": 3.0}),
            "nb_shape": Prior("LogNormal", {"mu": 0.0, "sigma": 1.5}),
            "tau": Prior.fixed(1.0),
            "delta": Prior.fixed(1.0),
        }
        if self.options["transmission_by_area"]:
            priors["tau_area_sd"] = Prior("HalfNormal", {"sigma": 0.5})
        if self.options["zero_inflation"]:
            priors["zero_prob"] = Prior("Beta", {"alpha": 1.0, "beta": 4.0})
        if self.roster_shares:  # centred on each group's national share in the roster
            members, counts = self.roster_arrays()
            share = np.clip(counts.sum(axis=0) / max(members.sum(), 1.0), 1e-6, 1 - 1e-6)
            priors["share_logit_mean"] = {
                k: Prior("Normal", {"mu": float(np.log(p / (1 - p))), "sigma": 1.0})
                for k, p in zip(self.data.known, share, strict=True)
            }
            priors["share_logit_sd"] = Prior("HalfNormal", {"sigma": 0.5})
        if self.options["correlated"]:
            priors["bias_sd"] = Prior("HalfNormal", {"sigma": 0.5})
            priors["lkj_eta"] = Prior.fixed(2.0)
        return priors

    # -- model -----------------------------------------------------------------------------
    def _build(self) -> pm.Model:
        d = self.data
        posthoc = self.options["anchor"] == "posthoc"
        G = len(d.groups)
        idx = self.area_index
        with pm.Model(coords=self.coords) as model:
            stats = self.stats.register()
            totals = pm.Data("ard_area_totals", self.area_totals())
            mu = self.priors["mu"].create("mu")
            sigma = self.priors["sigma"].create("sigma")
            dim = self.pooled_dim
            m = create_group_param("log_prev_mean", self.priors["log_prev_mean"], dim)
            s = create_group_param("sigma_area", self.priors["sigma_area"], dim)
            lam = pt.as_tensor(self.centring)[:, None]
            z = pm.Normal("z_area", lam * m[:, None], s[:, None] ** lam, dims=(dim, "area"))
            log_r_pooled = self.area_log_rate(m[:, None], s[:, None], z, lam).T  # (J, groups)
            if posthoc:
                log_rate_area = log_r_pooled
            elif self.roster_shares:
                log_rate_area = pt.concatenate([self._roster_share_model(), log_r_pooled], axis=1)
            else:
                known = self.known_log_rate()
                if not np.all(np.isfinite(known[np.unique(idx)])):
                    raise DataError(
                        "anchor = 'likelihood' needs every known group's size > 0 in each area "
                        "with respondents; use anchor = 'posthoc' or drop the group"
                    )
                known = np.where(np.isfinite(known), known, -50.0)
                log_rate_area = pt.concatenate([pt.as_tensor(known), log_r_pooled], axis=1)
            shape = create_group_param("nb_shape", self.priors["nb_shape"], "group")
            if self.roster_shares:
                # non-centred, so that mu alone moves along the degree x share ridge
                e = pm.Normal("log_degree_z", 0.0, 1.0, dims="respondent")
                x = pm.Deterministic("log_degree", mu + sigma * e, dims="respondent")
            else:
                x = pm.Normal("log_degree", mu, sigma, dims="respondent")
            self.weight_latent_prior(x, mu, sigma)
            bias = self._bias(G) if self.options["correlated"] else None
            zero = None
            if self.options["zero_inflation"]:
                zero = create_group_param("zero_prob", self.priors["zero_prob"], "group")
            # visibility and degree ratio divide the sizes after sampling (see _derive); they
            # are created here so that their priors are part of the model and its prior draws
            create_group_param("tau", self.priors["tau"], "hidden")
            create_group_param("delta", self.priors["delta"], "hidden")
            if self.options["transmission_by_area"]:
                create_group_param("tau_area_sd", self.priors["tau_area_sd"], "hidden")
                pm.Normal("tau_area_z", 0.0, 1.0, dims=("hidden", "area"))
            pm.Potential(
                "loglik",
                negbin_area_loglik(stats, x, idx, totals, log_rate_area, shape, bias, zero),
            )
        return model

    def _roster_share_model(self):
        r"""Known shares as parameters: :math:`\operatorname{logit} r_{jk} = a_k + b_k u_{jk}`,
        :math:`u_{jk} \sim N(0, 1)`, with the roster counts :math:`m_{jk} \sim
        \mathrm{Binomial}(M_j, r_{jk})` (areas without a roster get their shares from the
        pooling). Returns the (J, K_known) log shares."""
        members, counts = self.roster_arrays()
        a = create_group_param("share_logit_mean", self.priors["share_logit_mean"], "known")
        b = create_group_param("share_logit_sd", self.priors["share_logit_sd"], "known")
        u = pm.Normal("share_z", 0.0, 1.0, dims=("known", "area"))
        logit = (a[:, None] + b[:, None] * u).T  # (J, K_known)
        log_r, log_1mr = -pt.softplus(-logit), -pt.softplus(logit)
        m = pt.as_tensor(counts)
        rest = pt.as_tensor(members[:, None] - counts)
        pm.Potential("roster_loglik", pt.sum(m * log_r + rest * log_1mr))
        return log_r

    def known_log_shares(self, draws: xr.Dataset) -> np.ndarray:
        """(S, J, K_known) known groups' log shares at the draws: the roster-informed
        parameters, or the area table's fixed values."""
        if not self.roster_shares:
            known = self.known_log_rate()
            return np.where(np.isfinite(known), known, -50.0)[None]
        a = self.param_draws(draws, "share_logit_mean", "known")
        b = self.param_draws(draws, "share_logit_sd", "known")
        logit = (a + b * draws["share_z"]).transpose("sample", "area", "known")
        return -np.logaddexp(0.0, -np.asarray(logit.values, float))

    def _bias(self, G: int):
        """Correlated respondent-by-group log biases (n, G), mean-one on the count scale."""
        eta = self.priors["lkj_eta"]
        if not eta.is_fixed:
            raise BayesNsumError("prior 'lkj_eta' must be a fixed number (the LKJ concentration)")
        sd_prior = self.priors["bias_sd"]
        if sd_prior.is_fixed:
            raise BayesNsumError("prior 'bias_sd' must be a distribution (the LKJ sd_dist)")
        sd_dist = getattr(pm, sd_prior.dist).dist(**sd_prior.canonical(), shape=G)
        chol, _, sds = pm.LKJCholeskyCov(
            "bias_chol", eta=eta.params["value"], n=G, sd_dist=sd_dist, compute_corr=True
        )
        u = pm.Normal("bias_z", 0.0, 1.0, dims=("respondent", "group"))
        return pt.dot(u, chol.T) - 0.5 * sds[None, :] ** 2

    # -- the story at given draws ---------------------------------------------------------
    def log_rate_areas(self, draws: xr.Dataset) -> np.ndarray:
        """(S, J, G) log share of each group in each area at the draws (stacked)."""
        d = self.data
        groups = d.groups
        pooled = self.pooled_groups
        dim = self.pooled_dim
        m = self.param_draws(draws, "log_prev_mean", dim)
        sd = self.param_draws(draws, "sigma_area", dim)
        lam = xr.DataArray(self.centring, dims=dim)
        lr = self.area_log_rate(m, sd, draws["z_area"], lam)
        lr = lr.assign_coords({dim: pooled, "area": d.areas})
        lr = np.asarray(lr.transpose("sample", "area", dim).values, float)
        out = np.empty((lr.shape[0], len(d.areas), len(groups)))
        if self.options["anchor"] == "posthoc":
            out[:] = lr
            return out
        nk = len(d.known)
        out[:, :, :nk] = self.known_log_shares(draws)
        out[:, :, nk:] = lr
        return out

    def latent(self, draws: xr.Dataset) -> LatentModel:
        """Log-degree ~ N(mu, sigma); NB2 answers with log-mean log d + the log share of the
        group in the respondent's area and shape ``nb_shape``."""
        if self.options["correlated"]:
            raise BayesNsumError(
                "the correlated pooled model has a respondent-by-group bias per answer; its "
                "predictive checks and leave-one-out likelihood are not implemented"
            )
        z_fit = None
        if "log_degree" in draws and "respondent" in draws["log_degree"].dims:
            z_fit = draws_array(draws, "log_degree", ("respondent",))
        shape = xr.Dataset({"s": self.param_draws(draws, "nb_shape", "group")})
        zero = None
        if self.options["zero_inflation"]:
            zp = self.param_draws(draws, "zero_prob", "group")
            zero = draws_array(xr.Dataset({"p": zp}), "p", ("group",), self.data.groups)
        return LatentModel(
            family="negbin",
            log_rate=self.log_rate_areas(draws),
            shape=draws_array(shape, "s", ("group",), self.data.groups)[:, None, :],
            prior="normal",
            prior_a=self.param_draws(draws, "mu").values.astype(float),
            prior_b=self.param_draws(draws, "sigma").values.astype(float),
            groups=self.data.groups,
            row_index=self.area_index,
            z_fitted=z_fit,
            nodes=self.POSTFIT_NODES,
            zero_prob=None if zero is None else zero[:, None, :],
        )

    def log_hidden_size(self, pm_model):
        """(None, (hidden, area) symbolic :math:`\\log N_{jH}`) as :meth:`_derive` has it."""
        m, s = (self.model_param(pm_model, k, "hidden") for k in ("log_prev_mean", "sigma_area"))
        lam = pt.as_tensor(self.centring)[:, None]
        log_r = self.area_log_rate(m[:, None], s[:, None], pm_model["z_area"], lam)
        tau, delta = (self.model_param(pm_model, k, "hidden")[:, None] for k in ("tau", "delta"))
        if self.options["transmission_by_area"]:
            sd = self.model_param(pm_model, "tau_area_sd", "hidden")[:, None]
            tau = pt.sigmoid(pt.log(tau) - pt.log1p(-tau) + sd * pm_model["tau_area_z"])
        pop = self.data.area_table["population"].to_numpy(float)
        return None, log_r + np.log(pop) - pt.log(tau) - pt.log(delta)

    def known_share_from_rate(self, draws, group, rate):
        raise BayesNsumError(
            "the quick internal-consistency check is not implemented for the pooled model "
            "(area-specific rates); use the full refit (--ic bayes)"
        )

    # -- derived ---------------------------------------------------------------------------
    def denominator_table(self) -> np.ndarray:
        """(H, J) denominators :math:`D_{jH}` per hidden group and area."""
        d = self.data
        pop = d.area_table["population"].to_numpy(float)
        rows = []
        for h in d.hidden:
            den = d.denominators.get(h)
            if den is None or isinstance(den, str):
                rows.append([d.denominator(h, a) for a in d.areas])
            else:
                rows.append(float(den) * pop / pop.sum())
        return np.asarray(rows, float)

    def _derive(self, post: xr.Dataset) -> xr.Dataset:
        if "z_area" not in post:
            return post
        d = self.data
        dim = self.pooled_dim
        hidden = list(d.hidden)
        m = self.param_draws(post, "log_prev_mean", dim)
        s = self.param_draws(post, "sigma_area", dim)
        lam = xr.DataArray(self.centring, dims=dim)
        log_r = self.area_log_rate(m, s, post["z_area"], lam)  # (chain, draw, dim, area)
        log_r = log_r.assign_coords({dim: self.pooled_groups, "area": d.areas})
        if self.options["anchor"] == "posthoc":
            at = d.area_table
            target = np.log(
                at[list(d.known)].to_numpy(float).sum(axis=1) / at["population"].to_numpy(float)
            )
            known_r = np.exp(log_r.sel(group=list(d.known))).sum("group")
            scale = xr.DataArray(target, dims="area", coords={"area": d.areas}) - np.log(known_r)
            post["log_scale_area"] = scale.transpose("chain", "draw", "area")
            log_r_h = (log_r.sel(group=hidden) + scale).rename(group="hidden")
        else:
            log_r_h = log_r
        log_r_h = log_r_h.transpose("chain", "draw", "hidden", "area")
        pop = xr.DataArray(
            d.area_table["population"].to_numpy(float), dims="area", coords={"area": d.areas}
        )
        den_area = xr.DataArray(
            self.denominator_table(),
            dims=("hidden", "area"),
            coords={"hidden": hidden, "area": d.areas},
        )
        den_nat = xr.DataArray(
            [d.denominator(h) for h in hidden], dims="hidden", coords={"hidden": hidden}
        )
        tau, delta = (self.param_draws(post, k, "hidden") for k in ("tau", "delta"))
        post["tau"], post["delta"] = tau, delta
        if self.options["transmission_by_area"]:
            spread = self.param_draws(post, "tau_area_sd", "hidden")
            logit = np.log(tau) - np.log1p(-tau) + spread * post["tau_area_z"]
            tau = 1 / (1 + np.exp(-logit))
            post["tau_area"] = tau.assign_coords(area=d.areas)
        if "log_degree" in post:
            post["degree"] = np.exp(post["log_degree"])
        size_area = np.exp(log_r_h) * pop / (tau * delta)
        post["log_rate_area"] = log_r_h
        post["size_area"] = size_area
        post["prevalence_area"] = size_area / den_area
        post["one_in_x_area"] = den_area / size_area
        size = size_area.sum("area")
        post["size"] = size
        post["prevalence"] = size / den_nat
        post["one_in_x"] = den_nat / size
        return post
