"""Each model's story, told once: its simulator, its numpy likelihood (latent effect integrated
out, used by LOO and the degrees) and the PyTensor likelihood it samples with agree, for every
model and variant, the pooled model included; a saved fit rebuilds its model.

Tolerances: the two likelihood paths integrate the latent effect with the same Gauss-Hermite
quadrature, whose error per respondent is about 1e-8 (checked against ``scipy.integrate.quad``
in test_components.py / test_shared_barrier.py); 1e-6 per respondent leaves room for rounding.
The simulator is checked against the likelihood through the frequencies of the answers 0, 1 and
2 in 20,000 simulated respondents: within 5 binomial standard errors (a false alarm about once
in 1.7 million checks).
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_nsum.checks.prior_predictive import sample_prior_predictive
from bayes_nsum.checks.sensitivity import log_likelihood_draws
from bayes_nsum.data import ARD
from bayes_nsum.estimators import MODELS
from bayes_nsum.estimators.base import NSUMModel, stack_draws
from bayes_nsum.hidden_sample import HiddenSample

N = 1_000_000.0
KNOWN = {"k1": 3000.0, "k2": 8000.0, "k3": 15000.0, "k4": 30000.0}
HIDDEN = ("h1", "h2")
GROUPS = [*KNOWN, *HIDDEN]
AREAS = ["a1", "a2", "a3"]
#: a pseudo-option of this module: the survey has respondent covariates (always for the models
#: that need them, i.e. whose options read them)
COVARIATES = "covariates"
CASES = [
    ("degree", {}),
    ("degree", {"degree": "gamma"}),
    ("transmission", {"recall_calibration": True}),
    ("barrier", {}),
    ("barrier", {"barrier_dispersion": "shared"}),
    ("combined", {}),
    ("combined", {"barrier_dispersion": "shared"}),
    ("barrier", {"degree_integration": "quadrature"}),
    ("combined", {"degree_integration": "quadrature"}),
    ("overdispersed", {}),
    ("overdispersed", {COVARIATES: True}),
    ("correlated", {}),
    ("correlated", {"bias_covariates": ["x1"]}),
    ("pooled", {}),
    ("pooled", {"anchor": "posthoc"}),
    ("pooled", {"zero_inflation": True}),
    ("pooled", {"transmission_by_area": True}),
    ("gnsum_bayes", {}),
    ("gnsum_bayes", {"degree": "gamma"}),
]
#: priors beside the models' calibration priors, per option
EXTRA_PRIORS = {
    "transmission_by_area": {"tau": {"dist": "Beta", "mean": 0.6, "concentration": 20}},
    COVARIATES: {"theta": {"dist": "Normal", "mu": 0.0, "sigma": 0.3}},
}
IDS = [f"{n}:{','.join(f'{k}={v}' for k, v in o.items())}" for n, o in CASES]


def covariates_of(n: int) -> pd.DataFrame:
    """Respondent covariates of this module's surveys (models that read covariates)."""
    i = np.arange(n)
    return pd.DataFrame({"x1": np.sin(i + 1.0), "x2": (i % 3) - 1.0})


def ard(y: np.ndarray, area: list[str] | None = None, weights=None, covariates=None) -> ARD:
    """The design of this module; with ``area`` the respondents' areas and an area table."""
    ids = [str(i) for i in range(len(y))]
    table = None
    if area is not None:
        pop = np.array([2e5, 3e5, 5e5])
        factor = np.array([[1.0, 0.8, 1.2, 1.0], [1.1, 1.0, 0.9, 1.0], [0.9, 1.2, 1.0, 1.0]])
        sizes = {k: factor[:, j] * v / N * pop for j, (k, v) in enumerate(KNOWN.items())}
        table = pd.DataFrame({"population": pop, **sizes}, index=pd.Index(AREAS, name="area"))
    return ARD(
        counts=pd.DataFrame(y, index=ids, columns=GROUPS),
        known=tuple(KNOWN),
        hidden=HIDDEN,
        known_sizes=pd.Series(KNOWN),
        total_population=N,
        area=None if area is None else pd.Series(area, index=ids),
        area_table=table,
        weights=None if weights is None else pd.Series(weights, index=ids),
        covariates=None if covariates is None else covariates.set_axis(ids),
    )


def hidden_sample() -> HiddenSample:
    """A small sample of h1's members (generalized NSUM), one pair missing."""
    rng = np.random.default_rng(17)
    y = rng.poisson(150 * np.array(list(KNOWN.values())) / N, size=(12, len(KNOWN))).astype(float)
    v = rng.binomial(y.astype(int), 0.5).astype(float)
    y[3, 1] = v[3, 1] = np.nan
    cols = list(KNOWN)
    return HiddenSample("h1", pd.DataFrame(y, columns=cols), pd.DataFrame(v, columns=cols))


def build(name: str, options: dict, y: np.ndarray, area=None, weights=None, like=None) -> NSUMModel:
    """The model on answers ``y``; ``like=(model, rows)``: respondents who have the covariates
    of ``model``'s respondents ``rows`` and its standardisation of them."""
    cls = MODELS[name]
    options = dict(options)
    with_covariates = options.pop(COVARIATES, False) or "bias_covariates" in cls.options_used
    if cls.requires_areas and area is None:
        area = [AREAS[i % 3] for i in range(len(y))]
    priors = dict(cls.calibration_priors)
    for key in options:
        priors.update(EXTRA_PRIORS.get(key, {}))
    cov = None
    if with_covariates:
        cov = covariates_of(len(y))
        if like is not None:
            cov = like[0].data.covariates.iloc[np.asarray(like[1])].reset_index(drop=True)
    data = ard(y, area, weights, cov)
    if cls.uses_hidden_sample:
        data = replace(data, hidden_sample=hidden_sample())
    model = cls(data, priors=priors, **options)
    if like is not None and with_covariates:
        model.restore(like[0].config())
    return model


def parameter_draws(model: NSUMModel, draws: int, seed: int) -> xr.Dataset:
    return model.prior_draws(draws, seed)


@pytest.mark.parametrize("name, options", CASES, ids=IDS)
def test_prior_predictive_of_every_model(name, options):
    model = build(name, options, np.zeros((12, len(GROUPS))))
    ds = sample_prior_predictive(model, draws=30, respondents=8, seed=1)
    assert ds["mean_answer"].dims == ("draw", "group") and ds.sizes["respondent"] == 8
    assert np.isfinite(ds["mean_answer"]).all() and (ds["size"] > 0).all()
    again = sample_prior_predictive(model, draws=30, respondents=8, seed=1)
    xr.testing.assert_identical(ds, again)  # seeded


def _conditional(model: NSUMModel, theta: xr.Dataset, z: np.ndarray) -> np.ndarray:
    """The PyTensor likelihood of a one-respondent model given its latent effect z (a grid),
    at one parameter draw: the term the sampler adds for that respondent."""
    if "alpha_raw" in theta:
        # Zheng et al.'s effects sum to zero, so one respondent has none of its own: evaluate
        # the model's likelihood component at log-mean z + beta (+ x'theta with covariates)
        import pytensor
        import pytensor.tensor as pt

        from bayes_nsum.estimators.components import negbin_overdispersed_loglik

        zz = pt.dvector("z")
        rate = model.latent(stack_draws(theta)).rates()[0, 0]  # beta_k (+ x'theta)
        omega = theta["omega"].values.ravel()
        expr = negbin_overdispersed_loglik(model.stats, zz[:, None] + rate[None, :], omega)
        f = pytensor.function([zz], expr, mode="FAST_COMPILE")
        return np.array([float(f(np.array([v]))) for v in z])
    one = theta.isel(chain=0, draw=0, drop=True).drop_dims("respondent", errors="ignore")
    grid = one.expand_dims(draw=len(z)).expand_dims(chain=1)
    grid = grid.assign(log_degree=(("chain", "draw", "respondent"), z.reshape(1, -1, 1)))
    return log_likelihood_draws(model, grid).values.ravel()


@pytest.mark.parametrize("name, options", CASES, ids=IDS)
def test_numpy_and_pytensor_likelihoods_agree_on_simulated_data(name, options):
    rng = np.random.default_rng(3)
    n = 24
    template = build(name, options, np.zeros((n, len(GROUPS))))
    theta = parameter_draws(template, 3, seed=5)
    y = template.simulate(theta.isel(draw=[0]), rng)[0]
    area = None if template.data.area is None else list(template.data.area)
    model = build(name, options, y, area)
    numpy_ll = model.pointwise_loglik(theta)  # (3 draws, n)
    assert numpy_ll.shape == (3, n) and np.isfinite(numpy_ll).all()
    if model.latent(stack_draws(theta)).bias_chol is not None:
        _check_bias_likelihood(model, theta, y, numpy_ll)
        return
    if model.latent(stack_draws(theta)).z_fitted is None:
        # the degree is integrated out in the sampled likelihood too: the totals agree, and
        # with survey weights the sampled total is the weighted sum of the same terms
        pytensor_ll = log_likelihood_draws(model, theta).values.ravel()
        np.testing.assert_allclose(numpy_ll.sum(axis=1), pytensor_ll, rtol=0, atol=1e-6 * n)
        w = np.linspace(0.3, 3.0, n)
        weighted = build(name, options, y, area, weights=w)
        np.testing.assert_allclose(
            numpy_ll @ (w / w.mean()),
            log_likelihood_draws(weighted, theta).values.ravel(),
            rtol=0,
            atol=1e-6 * n,
        )
        return
    # a latent degree is sampled: integrate the sampled (conditional) likelihood over it
    for i in (0, 7):
        one = build(
            name,
            options,
            y[i : i + 1],
            None if area is None else area[i : i + 1],
            like=(model, [i]),
        )
        one.restore(model.config())  # the same parametrisation as the full model
        for s in range(2):
            th = theta.isel(draw=[s])
            lm = one.latent(stack_draws(th))
            mu, sd = float(lm.prior_a[0]), float(lm.prior_b[0])
            z = np.linspace(mu - 10 * sd, mu + 10 * sd, 2001)
            f = _conditional(one, th, z) - 0.5 * ((z - mu) / sd) ** 2
            top = f.max()
            log_int = top + np.log(np.trapezoid(np.exp(f - top), z) / (sd * np.sqrt(2 * np.pi)))
            assert numpy_ll[s, i] == pytest.approx(log_int, abs=1e-6)


def _check_bias_likelihood(model, theta, y, numpy_ll):
    """A model with a correlated bias per answer (integrated out by importance sampling, see
    estimators/latent_bias.py): (a) the sampled likelihood given the fitted effects equals the
    Poisson likelihood of the latent form's fitted log-means (1e-6 per respondent: rounding);
    (b) the integrated likelihood of respondents 0 and 7 equals a plain Monte Carlo average over
    200,000 draws of their effects: within 5 Monte Carlo standard errors plus 0.01 (the
    importance sampler's own error, a few 1e-3 on this design)."""
    from scipy.stats import poisson

    from bayes_nsum.estimators.latent_bias import draw_bias

    lm = model.latent(stack_draws(theta))
    log_mean = lm.z_fitted[:, :, None] + lm.rates() + lm.bias_fitted
    cond = poisson.logpmf(y[None], np.exp(log_mean)).sum(axis=(1, 2))
    pytensor_ll = log_likelihood_draws(model, theta).values.ravel()
    np.testing.assert_allclose(pytensor_ll, cond, rtol=0, atol=1e-6 * len(y))
    rng = np.random.default_rng(12)
    m = 200_000
    for i in (0, 7):
        for s in range(2):
            one = lm.take(slice(s, s + 1))
            z = rng.normal(0.0, one.prior_b[0], m)
            eps = draw_bias(rng, one.bias_chol, m)[0]
            mean = np.exp(z[:, None] + one.rates()[0, i][None] + eps)
            lik = np.exp(poisson.logpmf(y[i][None], mean).sum(axis=1))
            est, se = lik.mean(), lik.std() / np.sqrt(m)
            assert abs(numpy_ll[s, i] - np.log(est)) < 5 * se / est + 0.01, (i, s)


@pytest.mark.parametrize("name, options", CASES, ids=IDS)
def test_simulator_matches_likelihood(name, options):
    """P(y = v) for one group, from 20,000 simulated respondents and from the likelihood."""
    rng = np.random.default_rng(8)
    template = build(name, options, np.zeros((6, len(GROUPS))))
    theta = parameter_draws(template, 1, seed=11)
    g = GROUPS.index("k4")
    missing = np.ones((6, len(GROUPS)), bool)
    missing[:, g] = False
    reps = 20_000
    rows = np.zeros(reps, int)  # respondent 0 (and its area)
    sim = template.simulate(theta, rng, fitted=False, rows=rows, missing=missing)[0][:, g]
    y = np.full((3, len(GROUPS)), np.nan)
    y[:, g] = [0, 1, 2]
    area = None if template.data.area is None else [template.data.area.iloc[0]] * 3
    p = np.exp(build(name, options, y, area, like=(template, [0, 0, 0])).pointwise_loglik(theta)[0])
    for v in range(3):
        freq = float(np.mean(sim == v))
        assert abs(freq - p[v]) < 5 * np.sqrt(p[v] * (1 - p[v]) / reps) + 1e-12, (v, freq, p[v])


@pytest.mark.parametrize("name, options", CASES, ids=IDS)
def test_saved_fit_rebuilds_its_model(name, options, fake_sampling, tmp_path):
    fake_sampling(seed=4)
    rng = np.random.default_rng(2)
    template = build(name, options, np.zeros((15, len(GROUPS))))
    y = template.simulate(parameter_draws(template, 1, seed=3), rng)[0]
    y[2, 1] = np.nan
    model = build(
        name, options, y, None if template.data.area is None else list(template.data.area)
    )
    tree = model.fit(draws=4, chains=2, progress=False).tree
    path = tmp_path / "posterior.nc"
    tree.attrs = {
        k: (v if isinstance(v, str) else json.dumps(v, default=str)) for k, v in tree.attrs.items()
    }
    tree.to_netcdf(path, engine="h5netcdf")
    with xr.open_datatree(path, engine="h5netcdf") as saved:
        saved = saved.load()
    assert "respondent" not in saved["constant_data"].attrs  # no ids anywhere
    assert list(saved["observed_data"]["respondent"].values) == list(range(15))
    again = NSUMModel.from_tree(saved)
    assert type(again) is type(model) and again.options == model.options
    assert again.describe_priors() == model.describe_priors()
    np.testing.assert_array_equal(again.answers(), model.answers())
    if model.data.area_table is not None:
        pd.testing.assert_frame_equal(
            again.data.area_table, model.data.area_table, check_names=False
        )
    assert again.data.denominator("h1") == model.data.denominator("h1")
    post = saved["posterior"].to_dataset().isel(draw=slice(0, 2))
    np.testing.assert_allclose(again.pointwise_loglik(post), model.pointwise_loglik(post))


_ARVIZ_ONLY = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("bayes_nsum", "pymc", "pytensor"):
            raise ImportError(f"{name} is not installed here")
sys.meta_path.insert(0, Block())
import matplotlib
matplotlib.use("Agg")
import arviz as az, xarray as xr
tree = xr.open_datatree(sys.argv[1], engine="h5netcdf").load()
loo = az.loo(tree)
pc = az.plot_ppc_dist(tree, var_names=["y"], backend="matplotlib")
pc.savefig(sys.argv[2])
print(f"elpd_loo={float(loo.elpd):.3f} n={loo.n_data_points}")
"""


def test_saved_fit_works_with_arviz_alone(small_spec_path, fake_sampling, tmp_path):
    """A results folder's posterior.nc, opened in a Python that cannot import bayes_nsum
    (nor PyMC), gives PSIS-LOO and ArviZ's posterior predictive plot."""
    import subprocess
    import sys

    from bayes_nsum.analysis import run_fit

    fake_sampling(seed=5)
    _, _, out = run_fit(
        small_spec_path, tmp_path / "res", {"draws": 30, "chains": 2, "progress": False}
    )
    png = tmp_path / "ppc.png"
    run = subprocess.run(
        [sys.executable, "-c", _ARVIZ_ONLY, str(out / "posterior.nc"), str(png)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "elpd_loo=" in run.stdout and "n=50" in run.stdout
    assert png.stat().st_size > 1000


@pytest.mark.parametrize("name, options", CASES, ids=IDS)
def test_weighted_likelihood_is_the_likelihood_of_repeated_respondents(name, options):
    """With integer weights, the weighted pseudo-likelihood times the mean weight equals the
    unweighted likelihood of the data with each respondent repeated as often as its weight
    (every statistic and per-cell term is weighted; nothing else)."""
    rng = np.random.default_rng(6)
    n = 9
    if name == "pooled":  # "auto" may centre the two designs differently (repeats add information)
        options = {**options, "area_effects": "centred"}
    template = build(name, options, np.zeros((n, len(GROUPS))))
    theta = parameter_draws(template, 2, seed=9)
    y = template.simulate(theta.isel(draw=[0]), rng)[0]
    y[1, 2] = np.nan
    w = np.array([1, 2, 1, 3, 1, 1, 2, 1, 1])
    area = None if template.data.area is None else list(template.data.area)
    weighted = build(name, options, y, area, weights=w.astype(float))
    rep = np.repeat(np.arange(n), w)
    repeated = build(
        name,
        options,
        y[rep],
        None if area is None else [area[i] for i in rep],
        like=(weighted, rep),
    )
    for raw in ("alpha_raw", "alpha_dev"):  # centred effects: keep the raw effects' mean at 0
        if raw in theta:
            theta = theta.assign({raw: xr.zeros_like(theta[raw])})
    th_rep = theta
    if "respondent" in theta.dims:
        th_rep = theta.isel(respondent=rep).assign_coords(respondent=np.arange(len(rep)))
    a = log_likelihood_draws(weighted, theta).values.ravel() * w.mean()
    b = log_likelihood_draws(repeated, th_rep).values.ravel()
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-6)
