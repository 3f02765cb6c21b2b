"""Survey weights in the Bayesian models: the weighted statistics and the Williams-Savitsky
design adjustment (estimators/design.py). The weighted likelihood itself is checked against
repeated respondents for every model in test_story.py; recovery and coverage under informative
sampling are in the slow tier and on docs/guide/weights.md."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_nsum.estimators.components import CountStats
from bayes_nsum.estimators.design import design_variance


def test_weighted_statistics_sum_the_weights():
    y = np.array([[1, 0, 2], [1, 0, 2], [3, np.nan, 0], [0, 1, 1]], float)
    w = np.array([1.0, 3.0, 2.0, 2.0])  # normalised to mean 1: 0.5, 1.5, 1, 1
    s = CountStats.from_matrix(y, n_known=2, weights=w)
    wn = w / w.mean()
    np.testing.assert_allclose(s.w, wn)
    np.testing.assert_allclose(s.totals, wn @ np.nan_to_num(y))
    np.testing.assert_allclose(s.row_sum, wn * np.nansum(y, axis=1))
    # the two identical first rows share a (sum, pattern) key whose count is 0.5 + 1.5
    assert s.uniq_count.sum() == pytest.approx(4.0) and 2.0 in s.uniq_count
    assert s.key_count.sum() == pytest.approx(4.0)
    # histogram of group 0's answers: value 1 held by the first two respondents
    j = np.nonzero((s.hist_group == 0) & (s.hist_value == 1))[0][0]
    assert s.hist_count[j] == pytest.approx(2.0)
    from scipy.special import gammaln

    assert s.const == pytest.approx(float(wn @ np.nansum(gammaln(y + 1), axis=1)))
    plain = CountStats.from_matrix(y, n_known=2)
    assert not plain.weighted and plain.uniq_count.sum() == 4


def test_design_variance_by_hand():
    scores = np.array([[1.0, 0.0], [3.0, 2.0], [2.0, 2.0], [0.0, 4.0]])
    # no design: every respondent its own unit, one stratum: n/(n-1) times the scatter
    dz = scores - scores.mean(axis=0)
    np.testing.assert_allclose(design_variance(scores), 4 / 3 * dz.T @ dz)
    # two clusters {0, 1}, {2, 3} in one stratum: unit totals (4, 2) and (2, 6)
    got = design_variance(scores, cluster=np.array(["a", "a", "b", "b"]))
    z = np.array([[4.0, 2.0], [2.0, 6.0]])
    dz = z - z.mean(axis=0)
    np.testing.assert_allclose(got, 2 * dz.T @ dz)
    # two strata of two units each: the strata add
    strata = np.array([0, 0, 1, 1])
    want = sum(
        2
        * (scores[strata == h] - scores[strata == h].mean(0)).T
        @ (scores[strata == h] - scores[strata == h].mean(0))
        for h in (0, 1)
    )
    np.testing.assert_allclose(design_variance(scores, strata=strata), want)


def test_adjustment_keeps_the_centre_and_leaves_uninformed_parameters(small_prep, fake_sampling):
    from dataclasses import replace

    from bayes_nsum.estimators import MODELS

    fake_sampling(seed=3)
    ard = small_prep.ard
    rng = np.random.default_rng(0)
    weighted = replace(ard, weights=pd.Series(rng.uniform(0.5, 2.0, ard.n), index=ard.counts.index))
    model = MODELS["transmission"](weighted)
    assert model.weighted and model.stats.weighted
    result = model.fit(draws=200, chains=2, progress=False)
    info = result.tree.attrs["design_adjustment"]
    assert "Williams-Savitsky" in info["method"]
    assert any(p.startswith("tau") for p in info["not_informed"])  # no score: left alone
    assert any(p.startswith("mu") for p in info["parameters"])
    assert all(r > 0 for r in info["sd_ratio"].values())
    # turning the weights off is an option, and then nothing is adjusted
    off = MODELS["transmission"](weighted, survey_weights=False)
    assert not off.weighted
    assert "design_adjustment" not in off.fit(draws=20, chains=2, progress=False).tree.attrs


@pytest.mark.slow
def test_weights_remove_the_bias_of_informative_sampling():
    """One survey of the design of benchmarks/weights_study.py (sampling probability
    proportional to network size; people with large networks know more hidden-group members per
    contact): the unweighted degree model's 90% interval misses the truth by far (in the
    40-replication study it never covers it), the weighted one covers it. Fixed seed, so
    deterministic; a chance miss of the weighted interval has probability about 0.1 for an
    arbitrary seed."""
    from bayes_nsum.data import ARD
    from bayes_nsum.estimators import MODELS

    rng = np.random.default_rng(7)
    d = np.exp(rng.normal(5.0, 0.8, 200_000))
    tilt = (d / np.median(d)) ** 0.5
    share = 0.004
    r = tilt * share * d.sum() / (d * tilt).sum()
    pi = np.minimum(1.0, 800 * d / d.sum())
    keep = rng.random(len(d)) < pi
    known = {f"k{k}": float(p) for k, p in enumerate(np.geomspace(0.002, 0.03, 10))}
    y = np.column_stack(
        [rng.poisson(d[keep] * m) for m in known.values()] + [rng.poisson(d[keep] * r[keep])]
    ).astype(float)
    ids = [str(i) for i in range(len(y))]
    N = 1e7
    ard = ARD(
        counts=pd.DataFrame(y, index=ids, columns=[*known, "h"]),
        known=tuple(known),
        hidden=("h",),
        known_sizes=pd.Series({k: p * N for k, p in known.items()}),
        total_population=N,
        weights=pd.Series(1 / pi[keep], index=ids),
    )
    truth = share * N
    out = {}
    for weighted in (True, False):
        res = MODELS["degree"](ard, survey_weights=weighted).fit(
            draws=500, tune=500, chains=2, seed=1, progress=False
        )
        out[weighted] = res.summary(0.9).set_index("quantity").loc["size"]
    assert out[True]["lower"] <= truth <= out[True]["upper"], out[True]
    assert out[False]["lower"] > 1.15 * truth, out[False]  # biased upwards, well clear
