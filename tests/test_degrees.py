"""Respondent degrees after a fit (bayes_nsum.checks.degrees.respondent_degrees; degrees.csv).

Posteriors come from the fake sampler (prior draws shaped like a posterior, see conftest.py);
the reference for the models that integrate the degree out is ``scipy.integrate.quad`` of the
conditional posterior of each respondent's log-degree at every draw.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bayes_nsum.checks.degrees import DEGREE_COLUMNS, respondent_degrees
from bayes_nsum.estimators import MODELS
from quadrature_ref import log_integral


def _conditional_moments(y, log_rate, mu, sigma, shape=None):
    """E[d] and E[d^2] given one respondent's answers (NaN = missing) at one draw, by quad."""
    obs = ~np.isnan(y)
    yy, lr = y[obs], log_rate[obs]
    sh = None if shape is None else shape[obs]

    def loglik(x):
        m = np.exp(x + lr)
        if sh is None:
            ll = stats.poisson.logpmf(yy, m).sum()
        else:
            ll = stats.nbinom.logpmf(yy, sh, sh / (sh + m)).sum()
        return ll + stats.norm.logpdf(x, mu, sigma)

    lo, hi = mu - 12 * sigma, mu + 12 * sigma
    log_z = log_integral(loglik, lo, hi)
    m1 = np.exp(log_integral(lambda x: x + loglik(x), lo, hi) - log_z)
    m2 = np.exp(log_integral(lambda x: 2 * x + loglik(x), lo, hi) - log_z)
    return m1, m2


@pytest.mark.parametrize("options", [{}, {"barrier_dispersion": "shared"}])
def test_integrated_degrees_match_quad(small_prep, fake_sampling, options):
    fake_sampling(seed=7)
    name = "barrier" if options else "degree"
    model = MODELS[name](small_prep.ard, **options)
    result = model.fit(draws=6, chains=2, progress=False)
    table = respondent_degrees(model, result.posterior, max_draws=400)
    assert list(table.columns) == DEGREE_COLUMNS
    assert (table["method"] == "quadrature").all() and len(table) == 50
    post = result.posterior.stack(s=("chain", "draw"))
    y = result.tree["observed_data"].to_dataset()["y"].transpose("respondent", "group").values
    for i in (0, 17):
        m1 = m2 = 0.0
        for s in range(post.sizes["s"]):
            one = post.isel(s=s)
            shape = one["barrier_shape"].values if options else None
            a, b = _conditional_moments(
                y[i], one["log_rate"].values, float(one["mu"]), float(one["sigma"]), shape
            )
            m1, m2 = m1 + a, m2 + b
        m1, m2 = m1 / post.sizes["s"], m2 / post.sizes["s"]
        # the model's Gauss-Hermite quadrature around each mode against quad: agreement to
        # ~1e-7 relative
        assert table["mean"].iloc[i] == pytest.approx(m1, rel=1e-6)
        assert table["sd"].iloc[i] == pytest.approx(np.sqrt(m2 - m1**2), rel=1e-5)
    assert (table["lower"] < table["median"]).all() and (table["median"] < table["upper"]).all()


def test_latent_degrees_are_summarised_from_draws(small_prep, fake_sampling):
    fake_sampling(seed=8)
    model = MODELS["combined"](small_prep.ard, degree_integration="latent")
    result = model.fit(draws=20, chains=2, progress=False)
    table = respondent_degrees(model, result.posterior)
    deg = result.posterior["degree"].stack(s=("chain", "draw")).transpose("s", "respondent")
    assert (table["method"] == "draws").all()
    np.testing.assert_allclose(table["mean"], deg.mean("s").values)
    np.testing.assert_allclose(table["upper"], deg.quantile(0.95, "s").values)
