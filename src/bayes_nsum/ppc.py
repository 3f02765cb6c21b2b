r"""Posterior predictive checks and per-respondent likelihoods of the Bayesian NSUM models.

Every Bayesian model of the package has the same shape once its parameters are fixed at one
posterior draw: respondent :math:`i` has a scalar latent effect :math:`z_i` (the log-degree
:math:`\log d_i`, or Zheng et al.'s :math:`a_i`) drawn from a population distribution, and the
answers are independent counts given :math:`z_i` with log-mean :math:`\eta_{ik} = z_i +
\ell_{ik}`:

* **degree, transmission**: :math:`z_i = \log d_i \sim N(\mu, \sigma)` (or a gamma degree
  with the same mean and variance when ``degree = "gamma"``); Poisson answers with
  :math:`\ell_k` = ``log_rate[k]``;
* **barrier, combined**: the same degree; NB2 answers (variance :math:`m + m^2/\alpha_k`) with
  shape :math:`\alpha_k` = ``barrier_shape[k]``;
* **overdispersed**: :math:`z_i = a_i \sim N(0, \sigma_\alpha)`; NB answers with variance
  :math:`\omega_k` times the mean, :math:`\ell_k = \beta_k`;
* **pooled**: :math:`z_i = \log d_i \sim N(\mu, \sigma)`; NB2 answers with shape
  ``nb_shape[k]`` and :math:`\ell_{ik}` the log share of group k in respondent i's area (the
  area table for known groups with the likelihood anchor, ``log_rate_area`` for hidden ones;
  :math:`m_k + s_k z_{jk}` with the post-hoc anchor). The correlated variant is not covered.

:class:`LatentModel` holds these pieces for a set of posterior draws; from it this module

* **replicates surveys** (:func:`replicate_counts`): by default every replicated respondent gets a
  *fresh* latent effect drawn from the fitted population distribution (a "mixed" predictive
  check: it tests the degree distribution as well as the count distribution, and it is the only
  option for the degree and transmission models, whose degrees are integrated out);
  ``respondents="fitted"`` uses the fitted per-respondent effects where the posterior has them;
* **computes per-respondent log-likelihoods** for PSIS-LOO (:func:`pointwise_log_likelihood`)
  with the latent effect integrated out numerically around the mode of the integrand (found by
  safeguarded Newton steps): Gauss-Hermite with 24 nodes for a normal latent effect with Poisson
  or NB2 answers, and the trapezoid rule on 64 nodes in sinh-stretched coordinates for the gamma
  degree and Zheng's NB, whose integrands are skewed (accuracy checked against adaptive numerical
  integration in the tests: 1e-8 or better). For the Poisson models this is exactly the quantity
  the model's likelihood sums (:func:`~bayes_nsum.estimators.components.poisson_collapsed_loglik`);
  for the negative-binomial models it is the marginal over the latent effect rather than the
  conditional given the fitted effect, so that every model is scored on predicting a new
  respondent and the importance weights are not dominated by each respondent's own latent
  parameter;
* **checks the fit** (:func:`posterior_predictive_check`, :func:`write_ppc`): per group, the
  observed mean, standard deviation, share of zeros, 90th percentile and distribution of answers
  against their replicated distribution, with a posterior predictive p-value.

Replicated answers are top-coded at the caps the pre-processing applied to the data (read from
the provenance), so that observed and replicated statistics are computed on the same scale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats
from scipy.special import expit, gammaln, polygamma, psi

from .errors import BayesNsumError

GH_NODES, GH_WEIGHTS = np.polynomial.hermite.hermgauss(24)
_LOG_GH_WEIGHTS = np.log(GH_WEIGHTS)
NEWTON_MAX_STEPS = 60
TRAPEZOID_NODES = 64
NEWTON_MAX_STEP = 1.0

#: Maltiel-family model names and whether they have barrier effects (NB answers).
MALTIEL_MODELS = {"degree": False, "transmission": False, "barrier": True, "combined": True}

#: Summary statistics checked per group (besides the distribution bins).
STATISTICS = ("mean", "sd", "share_zero", "p90")
#: Answer bins of the distribution check: (label, lowest, highest) answers included.
DIST_BINS = (
    ("0", 0, 0),
    ("1", 1, 1),
    ("2", 2, 2),
    ("3-5", 3, 5),
    ("6-10", 6, 10),
    ("11-20", 11, 20),
    ("21+", 21, np.inf),
)
PPC_COLUMNS = ["group", "statistic", "observed", "replicated_mean", "lower", "upper", "p_value"]


class PPCUnavailable(BayesNsumError):
    """The predictive simulator or likelihood of a model cannot be built from its results."""


# ---------------------------------------------------------------------------------------------
# what was fitted
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInfo:
    """The model behind a fit, as recorded in its provenance.

    Attributes
    ----------
    name : str
        ``[model] name`` (e.g. ``"degree"``).
    options : dict
        Model options (``degree``, ``barrier``, ``anchor`` ...).
    known, hidden : list of str
        Group names.
    topcode : dict
        Group -> cap applied to the answers before fitting (empty if none).
    provenance : dict
        The full provenance record (may be empty).
    """

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    known: list[str] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)
    topcode: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)


def _json_attr(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def topcode_caps(provenance: dict[str, Any]) -> dict[str, float]:
    """Caps of the ``topcode`` pre-processing steps recorded in a provenance record."""
    caps: dict[str, float] = {}
    for step in (provenance.get("preprocess") or {}).get("steps", []) or []:
        if step.get("rule") == "topcode":
            for g, cap in (step.get("settings", {}).get("caps") or {}).items():
                caps[str(g)] = float(cap) if g not in caps else min(caps[g], float(cap))
    return caps


def model_info(tree: xr.DataTree, results_dir: str | Path | None = None) -> ModelInfo:
    """Read the model name, options, groups and top-coding of a fit.

    Looks in the tree's ``provenance`` attribute first, then in ``provenance.json`` of
    ``results_dir``; the model name falls back to the tree's ``model`` attribute.
    """
    prov = _json_attr(tree.attrs.get("provenance", {})) or {}
    if not isinstance(prov, dict):
        prov = {}
    if not prov and results_dir is not None:
        path = Path(results_dir) / "provenance.json"
        if path.is_file():
            prov = json.loads(path.read_text())
    cfg = prov.get("model") or {}
    name = str(cfg.get("model") or tree.attrs.get("model") or "")
    if not name:
        raise PPCUnavailable("the results do not say which model was fitted (no provenance)")
    groups = [str(g) for g in tree["observed_data"]["group"].values]
    known = [str(g) for g in cfg.get("known", [])]
    hidden = [str(g) for g in cfg.get("hidden", [])] or [g for g in groups if g not in known]
    return ModelInfo(
        name=name,
        options=dict(cfg.get("options") or {}),
        known=known,
        hidden=hidden,
        topcode=topcode_caps(prov),
        provenance=prov,
    )


# ---------------------------------------------------------------------------------------------
# posterior draws
# ---------------------------------------------------------------------------------------------


def stack_draws(posterior: xr.Dataset) -> xr.Dataset:
    """Posterior with (chain, draw) flattened into one leading ``sample`` dimension."""
    if "sample" in posterior.dims and "chain" not in posterior.dims:
        return posterior
    st = posterior.stack(sample=("chain", "draw"))
    st = st.drop_vars(["sample", "chain", "draw"], errors="ignore")
    return st.transpose("sample", ...)


def subset_draws(posterior: xr.Dataset, n: int | None, rng: np.random.Generator) -> xr.Dataset:
    """``n`` posterior draws chosen at random without replacement (all if fewer), stacked."""
    st = stack_draws(posterior)
    total = st.sizes["sample"]
    if n is None or n >= total:
        return st
    idx = np.sort(rng.choice(total, size=int(n), replace=False))
    return st.isel(sample=idx)


def thin_draws(posterior: xr.Dataset, max_draws: int | None) -> xr.Dataset:
    """Every k-th draw of each chain so that at most ``max_draws`` draws remain in all."""
    if max_draws is None:
        return posterior
    total = posterior.sizes["chain"] * posterior.sizes["draw"]
    step = int(np.ceil(total / max(int(max_draws), 1)))
    return posterior.isel(draw=slice(None, None, step)) if step > 1 else posterior


def _arr(ds: xr.Dataset, name: str, model: str, dims: tuple[str, ...] = (), coords=None):
    """Draws of one variable as (sample, *dims), aligned to ``coords`` (one list per dim)."""
    if name not in ds:
        raise PPCUnavailable(
            f"the posterior of the {model} model has no variable '{name}' "
            "(fitted with an older or different version of the model?)"
        )
    da = ds[name]
    missing = [d for d in dims if d not in da.dims]
    if missing:
        raise PPCUnavailable(f"posterior variable '{name}' lacks dimension(s) {missing}")
    if coords:
        sel = {}
        for d, c in zip(dims, coords, strict=True):
            if c is None:
                continue
            have = [str(v) for v in da[d].values]
            absent = [g for g in c if g not in have]
            if absent:
                raise PPCUnavailable(f"posterior variable '{name}' has no {d} {absent}")
            sel[d] = [have.index(g) for g in c]
        da = da.isel(sel)
    return np.asarray(da.transpose("sample", *dims).values, dtype=float)


# ---------------------------------------------------------------------------------------------
# the latent-variable form of every model
# ---------------------------------------------------------------------------------------------


@dataclass
class LatentModel:
    r"""A model at a set of posterior draws, in latent-variable form (see the module docstring).

    Attributes
    ----------
    family : {"poisson", "negbin", "zheng"}
        Count distribution given the latent effect: Poisson; NB2 with shape ``shape``;
        or NB with variance ``shape`` (:math:`\omega_k`) times the mean.
    log_rate : (S, J, G) array
        :math:`\ell` per draw, row and group; row ``row_index[i]`` belongs to respondent i
        (J = 1 and ``row_index`` None when every respondent shares it).
    shape : (S, 1, G) array or None
        NB2 shape (negbin) or :math:`\omega` (zheng).
    prior : {"normal", "gamma"}
        Population distribution of the latent effect: Normal(``prior_a``, ``prior_b``) for
        :math:`z`, or Gamma(shape ``prior_a``, rate ``prior_b``) for :math:`e^z`.
    prior_a, prior_b : (S,) arrays
    z_fitted : (S, n) array or None
        The fitted per-respondent effects, where the posterior has them.
    groups : list of str
        Group order of the last axis.
    """

    family: str
    log_rate: np.ndarray
    shape: np.ndarray | None
    prior: str
    prior_a: np.ndarray
    prior_b: np.ndarray
    groups: list[str]
    row_index: np.ndarray | None = None
    z_fitted: np.ndarray | None = None

    @property
    def n_draws(self) -> int:
        return int(self.prior_a.shape[0])

    def take(self, sl: slice | np.ndarray) -> LatentModel:
        """The same model at a subset of the draws."""
        return replace(
            self,
            log_rate=self.log_rate[sl],
            shape=None if self.shape is None else self.shape[sl],
            prior_a=self.prior_a[sl],
            prior_b=self.prior_b[sl],
            z_fitted=None if self.z_fitted is None else self.z_fitted[sl],
        )

    def rates(self) -> np.ndarray:
        """:math:`\\ell` as (S, n or 1, G)."""
        if self.row_index is None:
            return self.log_rate
        return self.log_rate[:, self.row_index, :]

    def draw_latent(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Fresh latent effects (S, n) from the population distribution."""
        s = self.n_draws
        if self.prior == "normal":
            return rng.normal(self.prior_a[:, None], self.prior_b[:, None], size=(s, n))
        with np.errstate(divide="ignore"):
            return np.log(rng.gamma(self.prior_a[:, None], 1 / self.prior_b[:, None], size=(s, n)))


def _gamma_degree(mu: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gamma (shape, rate) with the mean and variance of LogNormal(mu, sigma)."""
    mean = np.exp(mu + sigma**2 / 2)
    var = np.expm1(sigma**2) * np.exp(2 * mu + sigma**2)
    return mean**2 / var, mean / var


def _maltiel(info: ModelInfo, post: xr.Dataset, groups: list[str]) -> LatentModel:
    name = info.name
    kind = str(info.options.get("degree", "lognormal"))
    barrier = bool(info.options.get("barrier", MALTIEL_MODELS.get(name, False)))
    mu = _arr(post, "mu", name)
    sigma = _arr(post, "sigma", name)
    log_rate = _arr(post, "log_rate", name, ("group",), [groups])
    shape = _arr(post, "barrier_shape", name, ("group",), [groups]) if barrier else None
    if kind == "gamma":
        a, b = _gamma_degree(mu, sigma)
        prior = "gamma"
    elif kind == "lognormal":
        a, b, prior = mu, sigma, "normal"
    else:
        raise PPCUnavailable(f"unknown degree distribution '{kind}'")
    z_fit = None
    if "log_degree" in post and "respondent" in post["log_degree"].dims:
        z_fit = np.asarray(post["log_degree"].transpose("sample", "respondent").values, float)
    return LatentModel(
        family="negbin" if barrier else "poisson",
        log_rate=log_rate[:, None, :],
        shape=None if shape is None else shape[:, None, :],
        prior=prior,
        prior_a=a,
        prior_b=b,
        groups=groups,
        z_fitted=z_fit,
    )


def _overdispersed(info: ModelInfo, post: xr.Dataset, groups: list[str]) -> LatentModel:
    name = info.name
    sigma_alpha = _arr(post, "sigma_alpha", name)
    beta = _arr(post, "beta", name, ("group",), [groups])
    omega = _arr(post, "omega", name, ("group",), [groups])
    z_fit = None
    if "alpha" in post and "respondent" in post["alpha"].dims:
        z_fit = np.asarray(post["alpha"].transpose("sample", "respondent").values, float)
    return LatentModel(
        family="zheng",
        log_rate=beta[:, None, :],
        shape=omega[:, None, :],
        prior="normal",
        prior_a=np.zeros_like(sigma_alpha),
        prior_b=sigma_alpha,
        groups=groups,
        z_fitted=z_fit,
    )


def _pooled(info: ModelInfo, post: xr.Dataset, groups: list[str], data) -> LatentModel:
    name = info.name
    if info.options.get("correlated"):
        raise PPCUnavailable(
            "the correlated pooled model has a respondent-by-group bias per answer; its "
            "predictive checks and leave-one-out likelihood are not implemented"
        )
    if data is None or getattr(data, "area", None) is None or data.area_table is None:
        raise PPCUnavailable(
            "the pooled model needs each respondent's area and the area table; they are not in "
            "the results folder and the survey could not be re-loaded from the spec"
        )
    areas = [str(a) for a in data.area_table.index]
    pos = {a: j for j, a in enumerate(areas)}
    row_index = np.array([pos[str(a)] for a in data.area.loc[data.counts.index]])
    mu = _arr(post, "mu", name) if "mu" in post else None
    if mu is None:  # fixed location (post-hoc anchor)
        prior_mu = (info.provenance.get("model") or {}).get("priors", {}).get("mu", {})
        if prior_mu.get("dist") != "Fixed":
            raise PPCUnavailable("the pooled posterior has no 'mu' and its prior is not fixed")
        mu = np.full(post.sizes["sample"], float(prior_mu["value"]))
    sigma = _arr(post, "sigma", name)
    shape = _arr(post, "nb_shape", name, ("group",), [groups])
    s = post.sizes["sample"]
    log_r = np.empty((s, len(areas), len(groups)))
    if info.options.get("anchor", "likelihood") == "posthoc":
        m = _arr(post, "log_prev_mean", name, ("group",), [groups])
        sd = _arr(post, "sigma_area", name, ("group",), [groups])
        z = _arr(post, "z_area", name, ("group", "area"), [groups, areas])
        log_r[:] = np.swapaxes(m[:, :, None] + sd[:, :, None] * z, 1, 2)
    else:
        hidden = [g for g in groups if g in info.hidden]
        known = [g for g in groups if g not in hidden]
        at = data.area_table
        with np.errstate(divide="ignore"):
            kn = np.log(at[known].to_numpy(float) / at["population"].to_numpy(float)[:, None])
        kn = np.where(np.isfinite(kn), kn, -50.0)
        hid = _arr(post, "log_rate_area", name, ("hidden", "area"), [hidden, areas])
        for j, g in enumerate(groups):
            if g in known:
                log_r[:, :, j] = kn[None, :, known.index(g)]
            else:
                log_r[:, :, j] = hid[:, hidden.index(g), :]
    z_fit = None
    if "log_degree" in post and "respondent" in post["log_degree"].dims:
        z_fit = np.asarray(post["log_degree"].transpose("sample", "respondent").values, float)
    return LatentModel(
        family="negbin",
        log_rate=log_r,
        shape=shape[:, None, :],
        prior="normal",
        prior_a=mu,
        prior_b=sigma,
        groups=groups,
        row_index=row_index,
        z_fitted=z_fit,
    )


def latent_model(
    info: ModelInfo, posterior: xr.Dataset, groups: list[str], data=None
) -> LatentModel:
    """Build the :class:`LatentModel` of a fit at the given (stacked) posterior draws.

    Parameters
    ----------
    info : ModelInfo
        Model name and options (see :func:`model_info`).
    posterior : xarray.Dataset
        Posterior draws with a ``sample`` dimension (see :func:`stack_draws`).
    groups : list of str
        Group order of the observed answers.
    data : ARD, optional
        The fitted data; needed only by the pooled model (areas and area table).

    Raises
    ------
    PPCUnavailable
        No simulator for the model, or a variable it needs is missing from the posterior.
    """
    post = stack_draws(posterior)
    if info.name in MALTIEL_MODELS or "barrier" in info.options:
        return _maltiel(info, post, groups)
    if info.name == "overdispersed":
        return _overdispersed(info, post, groups)
    if info.name == "pooled":
        return _pooled(info, post, groups, data)
    raise PPCUnavailable(f"no predictive simulator for model '{info.name}'")


# ---------------------------------------------------------------------------------------------
# replicated surveys
# ---------------------------------------------------------------------------------------------


def _negbin_draw(rng, mean, shape):
    lam = rng.gamma(shape, mean / shape)
    return rng.poisson(np.minimum(lam, 1e15))


def simulate_answers(
    lm: LatentModel,
    observed: np.ndarray,
    rng: np.random.Generator,
    respondents: str = "fresh",
    topcode: dict[str, float] | None = None,
) -> np.ndarray:
    """One replicated answer matrix per draw of ``lm``: (S, n, G), NaN where ``observed`` is.

    Parameters
    ----------
    lm : LatentModel
    observed : (n, G) array
        Observed answers (NaN = missing; the replicate is missing there too).
    rng : numpy Generator
    respondents : {"fresh", "fitted"}
        Fresh latent effects from the population distribution, or the fitted ones (only where
        the posterior has them).
    topcode : dict, optional
        Group -> cap applied to the replicated answers, as the data were capped.
    """
    n, g = observed.shape
    if respondents == "fitted":
        if lm.z_fitted is None:
            raise PPCUnavailable(
                "this model has no per-respondent latent effects in its posterior "
                "(degrees integrated out); use respondents='fresh'"
            )
        z = lm.z_fitted
    elif respondents == "fresh":
        z = lm.draw_latent(n, rng)
    else:
        raise BayesNsumError(f"respondents must be 'fresh' or 'fitted', not {respondents!r}")
    with np.errstate(over="ignore"):
        mean = np.exp(np.minimum(z[:, :, None] + lm.rates(), 35.0))
    if lm.family == "poisson":
        y = rng.poisson(mean).astype(float)
    elif lm.family == "negbin":
        y = _negbin_draw(rng, mean, np.broadcast_to(lm.shape, mean.shape)).astype(float)
    elif lm.family == "zheng":
        excess = np.broadcast_to(lm.shape - 1.0, mean.shape)
        pois = excess < 1e-10
        safe = np.where(pois, 1.0, excess)
        nb = rng.poisson(np.minimum(rng.gamma(mean / safe, safe), 1e15))
        y = np.where(pois, rng.poisson(mean), nb).astype(float)
    else:  # pragma: no cover - families are fixed above
        raise PPCUnavailable(f"unknown count family {lm.family}")
    if topcode:
        for j, grp in enumerate(lm.groups):
            if grp in topcode:
                np.minimum(y[:, :, j], topcode[grp], out=y[:, :, j])
    y[:, np.isnan(observed)] = np.nan
    return y


def replicate_counts(
    model_name: str,
    posterior: xr.Dataset,
    observed: xr.Dataset,
    n_rep: int,
    rng: np.random.Generator,
    options: dict[str, Any] | None = None,
    respondents: str = "fresh",
    data=None,
    topcode: dict[str, float] | None = None,
) -> xr.DataArray:
    """Replicated surveys from ``n_rep`` posterior draws.

    Parameters
    ----------
    model_name : str
        ``[model] name`` of the fit (``degree``, ``barrier``, ``transmission``, ``combined``,
        ``overdispersed`` or ``pooled``).
    posterior : xarray.Dataset
        Posterior draws (chain, draw, ...).
    observed : xarray.Dataset
        The fit's observed data: ``y`` (respondent, group).
    n_rep : int
        Number of replicated surveys; each uses one posterior draw chosen at random (without
        replacement while draws last).
    rng : numpy Generator
    options : dict, optional
        Model options (``degree="gamma"``, ``barrier`` ...), as in the provenance.
    respondents : {"fresh", "fitted"}
        See :func:`simulate_answers`.
    data : ARD, optional
        Needed by the pooled model only.
    topcode : dict, optional
        Caps applied to the replicates.

    Returns
    -------
    xarray.DataArray
        Dims (replicate, respondent, group); NaN where the observed answer is missing.
    """
    y = observed["y"].transpose("respondent", "group")
    groups = [str(g) for g in y["group"].values]
    info = ModelInfo(
        name=model_name,
        options=dict(options or {}),
        known=[] if data is None else list(data.known),
        hidden=[] if data is None else list(data.hidden),
    )
    sub = subset_draws(posterior, n_rep, rng)
    lm = latent_model(info, sub, groups, data)
    rep = simulate_answers(lm, y.values.astype(float), rng, respondents, topcode)
    return xr.DataArray(
        rep,
        dims=("replicate", "respondent", "group"),
        coords={"respondent": y["respondent"].values, "group": groups},
        name="y_rep",
    )


# ---------------------------------------------------------------------------------------------
# statistics and p-values
# ---------------------------------------------------------------------------------------------


def answer_statistics(y: np.ndarray) -> dict[str, np.ndarray]:
    """Per-group statistics of answer matrices (..., n, G), missing answers (NaN) ignored.

    Returns ``mean``, ``sd``, ``share_zero``, ``p90`` and ``dist:<bin>`` (share of answers in
    each bin of :data:`DIST_BINS`), each shaped (..., G).
    """
    y = np.asarray(y, float)
    obs = ~np.isnan(y)
    count = obs.sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(y, axis=-2) / count
        dev = np.where(obs, y - np.expand_dims(mean, -2), 0.0)
        sd = np.sqrt((dev**2).sum(axis=-2) / (count - 1))
        out = {
            "mean": mean,
            "sd": sd,
            "share_zero": (y == 0).sum(axis=-2) / count,
            "p90": np.nanquantile(y, 0.9, axis=-2) if obs.any() else np.full(mean.shape, np.nan),
        }
        for label, lo, hi in DIST_BINS:
            out[f"dist:{label}"] = ((y >= lo) & (y <= hi)).sum(axis=-2) / count
    return out


def predictive_p_value(replicated: np.ndarray, observed: np.ndarray) -> np.ndarray:
    r"""Posterior predictive p-value :math:`P(T_{rep} > T_{obs}) + \tfrac12 P(T_{rep} = T_{obs})`.

    The mid-p form counts ties as half, so that discrete statistics (share of zeros, a
    percentile of counts) give p-values near 0.5 rather than 1 when replicates equal the data.
    Values near 0 mean the model replicates too small a statistic, near 1 too large.
    ``replicated`` is (R, ...) and ``observed`` (...).
    """
    rep = np.asarray(replicated, float)
    obs = np.asarray(observed, float)
    gt = np.mean(rep > obs, axis=0)
    eq = np.mean(np.isclose(rep, obs, rtol=1e-12, atol=1e-12), axis=0)
    return gt + 0.5 * eq


def ppc_table(
    observed: np.ndarray,
    replicated_stats: dict[str, np.ndarray],
    groups: list[str],
    prob: float = 0.9,
) -> pd.DataFrame:
    """The ``ppc.csv`` table from observed answers and statistics of replicated answers.

    Parameters
    ----------
    observed : (n, G) array
    replicated_stats : dict
        :func:`answer_statistics` of the replicates, each (R, G).
    groups : list of str
    prob : float
        Probability of the central interval (lower, upper) of the replicated statistic.
    """
    obs = answer_statistics(observed)
    tail = (1 - prob) / 2
    rows = []
    for stat, rep in replicated_stats.items():
        p = predictive_p_value(rep, obs[stat])
        lo, hi = np.nanquantile(rep, [tail, 1 - tail], axis=0)
        for j, g in enumerate(groups):
            rows.append(
                {
                    "group": g,
                    "statistic": stat,
                    "observed": float(obs[stat][j]),
                    "replicated_mean": float(np.nanmean(rep[:, j])),
                    "lower": float(lo[j]),
                    "upper": float(hi[j]),
                    "p_value": float(p[j]),
                }
            )
    out = pd.DataFrame(rows, columns=PPC_COLUMNS)
    order = {s: i for i, s in enumerate(replicated_stats)}
    gorder = {g: i for i, g in enumerate(groups)}
    out = out.sort_values(
        ["group", "statistic"], key=lambda c: c.map(gorder if c.name == "group" else order)
    )
    return out.reset_index(drop=True)


def posterior_predictive_check(
    tree: xr.DataTree,
    n_rep: int = 200,
    seed: int = 0,
    prob: float = 0.9,
    info: ModelInfo | None = None,
    data=None,
    respondents: str = "fresh",
    chunk: int = 25,
) -> pd.DataFrame:
    """Posterior predictive checks of a fit, one row per (group, statistic).

    Parameters
    ----------
    tree : xarray.DataTree
        The fit (``posterior`` and ``observed_data`` groups).
    n_rep : int
        Replicated surveys (posterior draws used), default 200.
    seed : int
        Seed of the draw selection and the replicates.
    prob : float
        Probability of the replicated statistics' interval.
    info : ModelInfo, optional
        Default: read from the tree (:func:`model_info`).
    data : ARD, optional
        The fitted data (pooled model only).
    respondents : {"fresh", "fitted"}
        See :func:`simulate_answers`.
    chunk : int
        Replicates simulated at a time (bounds memory: ``chunk * n * G`` numbers).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PPC_COLUMNS`.
    """
    info = info or model_info(tree)
    y = tree["observed_data"].to_dataset()["y"].transpose("respondent", "group")
    groups = [str(g) for g in y["group"].values]
    observed = y.values.astype(float)
    rng = np.random.default_rng(seed)
    sub = subset_draws(tree["posterior"].to_dataset(), n_rep, rng)
    lm = latent_model(info, sub, groups, data)
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, lm.n_draws, chunk):
        piece = lm.take(slice(start, start + chunk))
        rep = simulate_answers(piece, observed, rng, respondents, info.topcode)
        for k, v in answer_statistics(rep).items():
            parts.setdefault(k, []).append(v)
    stats = {k: np.concatenate(v, axis=0) for k, v in parts.items()}
    return ppc_table(observed, stats, groups, prob)


def load_tree(results_dir: str | Path) -> xr.DataTree:
    """Open ``posterior.nc`` of a results folder (fully loaded, file closed)."""
    path = Path(results_dir) / "posterior.nc"
    if not path.is_file():
        raise BayesNsumError(f"{results_dir}: no posterior.nc (run 'bayes-nsum fit' first)")
    with xr.open_datatree(path, engine="h5netcdf") as tree:
        return tree.load()


def reload_data(info: ModelInfo):
    """Re-load and pre-process the fitted survey from the spec named in the provenance.

    Returns the ARD, or None if the spec cannot be read or the data changed since the fit
    (content hash differs).
    """
    prov = info.provenance
    path = prov.get("spec_path")
    if not path or not Path(path).is_file():
        return None
    from .analysis import prepare

    try:
        prep = prepare(path)
    except BayesNsumError:
        return None
    if prov.get("data_hash") and prep.ard.data_hash() != prov["data_hash"]:
        return None
    return prep.ard


def write_ppc(
    results_dir: str | Path,
    n_rep: int = 200,
    seed: int | None = None,
    prob: float | None = None,
    tree: xr.DataTree | None = None,
) -> pd.DataFrame:
    """Compute the posterior predictive checks of a results folder and write ``ppc.csv``.

    The seed defaults to the fit's sampler seed and the interval probability to the spec's
    ``[output] interval_prob``. The pooled model's data are re-loaded from its spec.
    """
    from .io import write_csv

    d = Path(results_dir)
    tree = tree if tree is not None else load_tree(d)
    info = model_info(tree, d)
    prov = info.provenance
    if seed is None:
        seed = int((prov.get("sampler") or {}).get("seed", 0) or 0)
    if prob is None:
        prob = float(((prov.get("spec") or {}).get("output") or {}).get("interval_prob", 0.9))
    data = reload_data(info) if info.name == "pooled" else None
    table = posterior_predictive_check(
        tree, n_rep=n_rep, seed=seed, prob=prob, info=info, data=data
    )
    write_csv(table, d / "ppc.csv")
    return table


# ---------------------------------------------------------------------------------------------
# latent effects integrated out: per-respondent likelihood and degree posteriors
# ---------------------------------------------------------------------------------------------


def _prior_terms(lm: LatentModel, z: np.ndarray):
    """log p(z), d/dz and d2/dz2 of the population distribution at z (S, n[, Q])."""
    extra = (slice(None),) + (None,) * (z.ndim - 1)
    a, b = lm.prior_a[extra], lm.prior_b[extra]
    if lm.prior == "normal":
        u = (z - a) / b
        return -0.5 * u**2 - np.log(b) - 0.5 * np.log(2 * np.pi), -u / b, -1 / b**2 + 0 * z
    ez = np.exp(z)
    return a * np.log(b) - gammaln(a) + a * z - b * ez, a - b * ez, -b * ez


def _cells(lm: LatentModel, z, y, obs, lr, shape, derivs: bool):
    """z-dependent part of the answers' log-likelihood summed over groups (and derivatives).

    z: (S, n) or (S, n, Q); y, obs: (n, G); lr, shape: (S, n|1, G).
    """
    if z.ndim == 3:  # add the node axis before the group axis
        y, obs = y[:, None, :], obs[:, None, :]
        lr = lr[:, :, None, :]
        shape = None if shape is None else shape[:, :, None, :]
    zz = z[..., None]
    if lm.family == "negbin":
        u = zz + lr - np.log(shape)
        f = obs * (y * zz - (shape + y) * np.logaddexp(0.0, u))
        if not derivs:
            return f.sum(-1)
        sig = expit(u)
        g = obs * (y - (shape + y) * sig)
        h = -obs * (shape + y) * sig * (1 - sig)
        return f.sum(-1), g.sum(-1), h.sum(-1)
    raise ValueError(lm.family)  # pragma: no cover - Zheng's cells: _ZhengCells


class _ZhengCells:
    r"""Zheng et al.'s NB terms of a respondent's answers as functions of its effect z.

    With :math:`\xi = e^{z} q_k`, :math:`q_k = e^{\ell_k}/(\omega_k - 1)`, the z-dependent part
    of an answered cell is :math:`\log\Gamma(y+\xi) - \log\Gamma(\xi) - \xi\log\omega_k`.
    The last term sums over cells to :math:`-e^z C_i`; the gamma-function difference is 0 for
    :math:`y = 0` (most answers) and :math:`\sum_{j<y}\log(\xi + j)` for small y, so only the
    positive answers are visited and the large ones alone need :math:`\log\Gamma`.
    """

    SMALL = 16

    def __init__(self, y0: np.ndarray, obs: np.ndarray, lr: np.ndarray, omega: np.ndarray):
        n = y0.shape[0]
        s = lr.shape[0]
        q = np.exp(lr) / (omega - 1)  # (S, n|1, G)
        self.c = np.broadcast_to((obs[None] * q * np.log(omega)).sum(-1), (s, n))
        ii, kk = np.nonzero(obs & (y0 > 0))
        self.ii = ii
        self.y = y0[ii, kk]
        self.q = np.broadcast_to(q, (s, n, q.shape[-1]))[:, ii, kk]  # (S, nnz)
        self.resp, self.starts = np.unique(ii, return_index=True)
        small = np.nonzero(self.y <= self.SMALL)[0]
        self.levels = [small[self.y[small] > j] for j in range(self.SMALL)]
        self.large = np.nonzero(self.y > self.SMALL)[0]

    def __call__(self, z: np.ndarray, derivs: bool):
        ez = np.exp(np.minimum(z, 700.0))
        if z.ndim == 3:
            xi = ez[:, self.ii, :] * self.q[..., None]
            c = self.c[..., None]
            yl = self.y[self.large][:, None]
        else:
            xi = ez[:, self.ii] * self.q
            c = self.c
            yl = self.y[self.large]
        f = np.zeros_like(xi)
        g = np.zeros_like(xi) if derivs else None
        h = np.zeros_like(xi) if derivs else None
        for j, idx in enumerate(self.levels):
            if len(idx) == 0:
                break
            x = xi[:, idx]
            f[:, idx] += np.log(x + j)
            if derivs:
                g[:, idx] += x / (x + j)
                h[:, idx] += x * j / (x + j) ** 2
        if len(self.large):
            x = xi[:, self.large]
            f[:, self.large] = gammaln(yl + x) - gammaln(x)
            if derivs:
                d1 = x * (psi(yl + x) - psi(x))
                g[:, self.large] = d1
                h[:, self.large] = d1 + x**2 * (polygamma(1, yl + x) - polygamma(1, x))

        def per_respondent(a):
            out = np.zeros(z.shape)
            if len(self.resp):
                out[:, self.resp] = np.add.reduceat(a, self.starts, axis=1)
            return out

        base = -ez * c
        if not derivs:
            return per_respondent(f) + base
        return per_respondent(f) + base, per_respondent(g) + base, per_respondent(h) + base


def _integrate(
    lm: LatentModel,
    y: np.ndarray,
    obs: np.ndarray,
    want_mean: bool = False,
    want_moments: bool = False,
):
    """Integrate the latent effect out for every draw and respondent.

    Returns ``(log_marginal, mean_exp)``: (S, n) log of
    :math:`\\int p(y_i \\mid z) p(z)\\,dz` over the answered cells (the z-free terms included)
    and, if ``want_mean``, the posterior mean of :math:`e^{z_i}` given those answers.
    """
    y0 = np.where(obs, y, 0.0)
    obsf = obs.astype(float)
    lr = lm.rates()
    shape = lm.shape
    s_count = y0.sum(axis=1)[None, :]  # (1, n)
    # z-free terms of the log-likelihood
    if lm.family == "poisson":
        const = (y0[None] * lr).sum(-1) - gammaln(y0 + 1).sum(-1)[None, :]
        rsum = (obsf[None] * np.exp(lr)).sum(-1)  # (S, n)
    elif lm.family == "negbin":
        const = (
            obsf[None]
            * (gammaln(y0 + shape) - gammaln(shape) - gammaln(y0 + 1) + y0 * (lr - np.log(shape)))
        ).sum(-1)
    else:
        with np.errstate(divide="ignore"):
            const = (obsf[None] * (y0 * np.log1p(-1 / shape) - gammaln(y0 + 1))).sum(-1)
        const = np.where(np.isfinite(const), const, -np.inf)

    zheng = _ZhengCells(y0, obs, lr, shape) if lm.family == "zheng" else None

    def terms(z, derivs=True):
        lp = _prior_terms(lm, z)
        if zheng is not None:
            if not derivs:
                return zheng(z, False) + lp[0]
            f, g, h = zheng(z, True)
            return f + lp[0], g + lp[1], h + lp[2]
        if lm.family == "poisson":
            if z.ndim == 3:
                ez = np.exp(z)
                f = s_count[..., None] * z - rsum[..., None] * ez
                return f + lp[0]
            ez = np.exp(z)
            f = s_count * z - rsum * ez
            if not derivs:
                return f + lp[0]
            return f + lp[0], s_count - rsum * ez + lp[1], -rsum * ez + lp[2]
        if not derivs:
            return _cells(lm, z, y0, obsf, lr, shape, False) + lp[0]
        f, g, h = _cells(lm, z, y0, obsf, lr, shape, True)
        return f + lp[0], g + lp[1], h + lp[2]

    # mode of the integrand (safeguarded Newton; the log-integrand is concave for the Poisson
    # and NB2 families, nearly so for Zheng's)
    n = y.shape[0]
    if lm.prior == "normal":
        z = np.broadcast_to(lm.prior_a[:, None], (lm.n_draws, n)).copy()
    else:
        z = np.broadcast_to(np.log(lm.prior_a / lm.prior_b)[:, None], (lm.n_draws, n)).copy()
    if lm.family == "poisson":
        # start right of the mode: Newton then converges monotonically (concave derivative)
        safe = np.where(rsum > 0, rsum, 1.0)
        z = np.where(rsum > 0, np.maximum(z, np.log(np.maximum(s_count, 0.5) / safe)), z)
    for _ in range(NEWTON_MAX_STEPS):
        _, g, h = terms(z)
        step = -g / np.minimum(h, -1e-6)
        step = np.clip(step, -NEWTON_MAX_STEP, NEWTON_MAX_STEP)
        z = z + step
        if np.nanmax(np.abs(step)) < 1e-9:
            break
    _, _, h = terms(z)
    scale = 1 / np.sqrt(np.maximum(-h, 1e-8))
    if lm.prior == "normal" and lm.family != "zheng":
        # Gauss-Hermite around the mode: the integrand is close to Gaussian (log-concave with
        # a Gaussian prior); checked against adaptive numerical integration in the tests
        nodes = z[..., None] + np.sqrt(2) * scale[..., None] * GH_NODES
        logw = terms(nodes, derivs=False) + GH_NODES**2 + _LOG_GH_WEIGHTS
        log_h = np.log(np.sqrt(2) * scale)
    else:
        # gamma degree: the integrand decays only like exp((a + s) z) to the left (a < 1 is
        # common), which Gauss-Hermite misses; Zheng's NB: the likelihood of a positive answer
        # turns from linear to flat in z where the NB shape crosses 1, a skewed integrand.
        # The trapezoid rule in t with z = mode + scale * sinh(t) converges geometrically for
        # these smooth integrands and reaches far tails with few nodes.
        if lm.prior == "normal":
            t_left = -np.arcsinh(np.full(z.shape, 30.0))
        else:
            rate = lm.prior_a[:, None] + s_count
            t_left = -np.arcsinh(np.maximum(8.0, 40 / (rate * scale)))
        t_right = np.arcsinh(30.0 if lm.prior == "normal" else 8.0)
        h_step = (t_right - t_left) / (TRAPEZOID_NODES - 1)
        t = t_left[..., None] + h_step[..., None] * np.arange(TRAPEZOID_NODES)
        nodes = z[..., None] + scale[..., None] * np.sinh(t)
        logw = terms(nodes, derivs=False) + np.log(scale[..., None] * np.cosh(t))
        log_h = np.log(h_step)
    top = logw.max(axis=-1, keepdims=True)
    w = np.exp(logw - top)
    total = w.sum(axis=-1)
    log_int = np.log(total) + top[..., 0] + log_h
    mean_exp = None
    if want_mean or want_moments:
        mean_exp = (w * np.exp(nodes)).sum(axis=-1) / total
    if want_moments:
        moments = (
            mean_exp,
            (w * np.exp(2 * nodes)).sum(axis=-1) / total,
            (w * nodes).sum(axis=-1) / total,
            (w * nodes**2).sum(axis=-1) / total,
        )
        return const + log_int, moments
    return const + log_int, mean_exp


def _chunks(lm: LatentModel, n: int, g: int, budget: float = 3e6):
    gh = lm.prior == "normal" and lm.family != "zheng"
    nodes = len(GH_NODES) if gh else TRAPEZOID_NODES
    per_draw = n * (g if lm.family != "poisson" else 1) * nodes
    size = max(1, int(budget // max(per_draw, 1)))
    for start in range(0, lm.n_draws, size):
        yield slice(start, start + size)


def respondent_log_likelihood(lm: LatentModel, observed: np.ndarray) -> np.ndarray:
    """Log-likelihood of each respondent's answers at each draw, latent effect integrated out.

    Parameters
    ----------
    lm : LatentModel
    observed : (n, G) array, NaN = missing answer (left out of the respondent's likelihood).

    Returns
    -------
    (S, n) array
    """
    y = np.asarray(observed, float)
    obs = ~np.isnan(y)
    out = np.empty((lm.n_draws, y.shape[0]))
    with np.errstate(over="ignore", under="ignore"):
        for sl in _chunks(lm, *y.shape):
            out[sl] = _integrate(lm.take(sl), y, obs)[0]
    return out


def expected_degree(
    lm: LatentModel, observed: np.ndarray, exclude: list[str] | None = None
) -> np.ndarray:
    """Posterior mean of :math:`e^{z_i}` (the degree, or :math:`e^{a_i}`) per draw and
    respondent, given the answers to every group except those in ``exclude``.
    """
    y = np.asarray(observed, float)
    obs = ~np.isnan(y)
    if exclude:
        obs = obs.copy()
        for g in exclude:
            obs[:, lm.groups.index(g)] = False
    out = np.empty((lm.n_draws, y.shape[0]))
    with np.errstate(over="ignore", under="ignore"):
        for sl in _chunks(lm, *y.shape):
            out[sl] = _integrate(lm.take(sl), y, obs, want_mean=True)[1]
    return out


#: columns of ``degrees.csv``
DEGREE_COLUMNS = ["respondent", "mean", "sd", "median", "lower", "upper", "interval_prob", "method"]


def respondent_degrees(
    tree: xr.DataTree,
    info: ModelInfo | None = None,
    data=None,
    prob: float = 0.9,
    max_draws: int = 400,
    budget: float = 2e9,
) -> pd.DataFrame:
    r"""Posterior summary of every respondent's network size (degree).

    Models with a latent degree per respondent (barrier/combined with one dispersion per group,
    overdispersed, pooled) have the degrees in their posterior: the summary is taken from those
    draws (``method = "draws"``). Models that integrate the degree out (degree, transmission,
    shared-dispersion barrier) get it back from its conditional posterior given the answers,
    :math:`p(d_i \mid y_i, \theta)`, computed by the same quadrature as their likelihood at up
    to ``max_draws`` thinned posterior draws (fewer where n x groups x nodes x draws would
    exceed ``budget``): the mean and sd are exact by the laws of total expectation and variance;
    the median and interval assume the posterior of the log-degree is normal with its exact mean
    and sd (``method = "quadrature"``; the conditional posteriors are log-concave and close to
    normal unless a respondent answers almost nothing).
    """
    info = info or model_info(tree)
    y = tree["observed_data"].to_dataset()["y"].transpose("respondent", "group")
    resp = [str(r) for r in y["respondent"].values]
    post = tree["posterior"].to_dataset()
    tail = (1 - prob) / 2
    if "degree" in post and "respondent" in post["degree"].dims:
        d = post["degree"].stack(s=("chain", "draw")).transpose("s", "respondent").values
        lo, med, hi = np.quantile(d, [tail, 0.5, 1 - tail], axis=0)
        return pd.DataFrame(
            {
                "respondent": resp,
                "mean": d.mean(axis=0),
                "sd": d.std(axis=0),
                "median": med,
                "lower": lo,
                "upper": hi,
                "interval_prob": prob,
                "method": "draws",
            }
        )[DEGREE_COLUMNS]
    groups = [str(g) for g in y["group"].values]
    yv = y.values.astype(float)
    n, g = yv.shape
    per_draw = n * g * len(GH_NODES)
    draws = int(max(20, min(max_draws, budget // max(per_draw, 1))))
    lm = latent_model(info, thin_draws(post, draws), groups, data)
    obs = ~np.isnan(yv)
    acc = [np.zeros(n) for _ in range(4)]
    with np.errstate(over="ignore", under="ignore"):
        for sl in _chunks(lm, n, g):
            _, mom = _integrate(lm.take(sl), yv, obs, want_moments=True)
            for a, m in zip(acc, mom, strict=True):
                a += m.sum(axis=0)
    e_d, e_d2, e_x, e_x2 = (a / lm.n_draws for a in acc)
    sd_x = np.sqrt(np.maximum(e_x2 - e_x**2, 0.0))
    z = stats.norm.ppf(1 - tail)
    return pd.DataFrame(
        {
            "respondent": resp,
            "mean": e_d,
            "sd": np.sqrt(np.maximum(e_d2 - e_d**2, 0.0)),
            "median": np.exp(e_x),
            "lower": np.exp(e_x - z * sd_x),
            "upper": np.exp(e_x + z * sd_x),
            "interval_prob": prob,
            "method": "quadrature",
        }
    )[DEGREE_COLUMNS]


def pointwise_log_likelihood(
    tree: xr.DataTree,
    info: ModelInfo | None = None,
    data=None,
    max_draws: int | None = 1000,
) -> xr.DataTree:
    """A DataTree with ``posterior`` and ``log_likelihood`` groups for ``arviz.loo``.

    The log-likelihood ``y`` (chain, draw, respondent) is :func:`respondent_log_likelihood` at
    the posterior draws, thinned to at most ``max_draws`` (every k-th draw of each chain, so the
    chain structure that the relative efficiency needs is kept).
    """
    info = info or model_info(tree)
    y = tree["observed_data"].to_dataset()["y"].transpose("respondent", "group")
    groups = [str(g) for g in y["group"].values]
    post = thin_draws(tree["posterior"].to_dataset(), max_draws)
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    lm = latent_model(info, post, groups, data)
    ll = respondent_log_likelihood(lm, y.values.astype(float))
    if not np.all(np.isfinite(ll)):
        bad = np.unique(np.nonzero(~np.isfinite(ll))[1])[:5]
        raise BayesNsumError(
            f"log-likelihood is not finite for respondents "
            f"{', '.join(str(y['respondent'].values[i]) for i in bad)}"
        )
    da = xr.DataArray(
        ll.reshape(nc, nd, -1),
        dims=("chain", "draw", "respondent"),
        coords={
            "chain": post["chain"].values,
            "draw": post["draw"].values,
            "respondent": y["respondent"].values,
        },
    )
    scalars = [v for v in post.data_vars if set(post[v].dims) <= {"chain", "draw"}]
    return xr.DataTree.from_dict(
        {"posterior": post[scalars], "log_likelihood": xr.Dataset({"y": da})}
    )


__all__ = [
    "PPCUnavailable",
    "ModelInfo",
    "LatentModel",
    "model_info",
    "topcode_caps",
    "latent_model",
    "replicate_counts",
    "simulate_answers",
    "answer_statistics",
    "predictive_p_value",
    "ppc_table",
    "posterior_predictive_check",
    "write_ppc",
    "load_tree",
    "respondent_log_likelihood",
    "expected_degree",
    "pointwise_log_likelihood",
    "stack_draws",
    "subset_draws",
    "thin_draws",
]
