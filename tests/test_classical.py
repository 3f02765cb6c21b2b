"""Tests of the classical (design-based) scale-up estimators and the rescaled bootstrap."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pytest

from bayes_nsum.bootstrap import (
    bootstrap_statistic,
    percentile_interval,
    rescaled_bootstrap_weights,
)
from bayes_nsum.classical import (
    TABLE_COLUMNS,
    estimate_table,
    internal_consistency,
    known_population_degree,
    per_area_estimates,
    scale_up,
    summarize_internal_consistency,
)
from bayes_nsum.errors import DataError

HIDDEN = ["sex.workers", "msm", "idu", "clients"]
N_RWANDA = 10_718_378


# ------------------------------------------------------------------------------------------
# fixtures
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rwanda():
    base = resources.files("bayes_nsum") / "data" / "rwanda"
    with resources.as_file(base / "survey.csv") as p:
        survey = pd.read_csv(p).set_index("id")
    with resources.as_file(base / "known_sizes.csv") as p:
        known = pd.read_csv(p).set_index("known.popn")["size"].astype(float)
    survey[list(known.index)] = survey[list(known.index)].clip(upper=30)  # top-code known answers
    survey = survey.dropna()
    assert len(survey) == 2406 - 2
    assert len(known) == 22
    return survey, known


@pytest.fixture
def tiny():
    """Four respondents, two known groups (sizes 100, 300), N = 1000, hidden group h."""
    counts = pd.DataFrame(
        {"a": [1.0, 2.0, 0.0, 0.0], "b": [3.0, 2.0, 4.0, 0.0], "h": [1.0, 0.0, 2.0, 1.0]},
        index=["r1", "r2", "r3", "r4"],
    )
    known = pd.Series({"a": 100.0, "b": 300.0})
    weights = pd.Series([1.0, 2.0, 1.0, 1.0], index=counts.index)
    return counts, known, 1000.0, weights


# ------------------------------------------------------------------------------------------
# bundled Rwanda example against an independent implementation
# ------------------------------------------------------------------------------------------


def test_rwanda_weighted_mle_matches_independent_loop(rwanda):
    survey, known = rwanda
    est = scale_up(survey, known, N_RWANDA, HIDDEN, weights=survey["indweight"])

    # independent plain-loop computation
    groups = list(known.index)
    sum_known = float(sum(known[g] for g in groups))
    expected = {}
    for h in HIDDEN:
        num = den = 0.0
        for _, row in survey.iterrows():
            d = N_RWANDA * sum(row[g] for g in groups) / sum_known
            num += row["indweight"] * row[h]
            den += row["indweight"] * d
        expected[h] = N_RWANDA * num / den
    print({h: round(v) for h, v in expected.items()})
    np.testing.assert_allclose(est[HIDDEN].to_numpy(), [expected[h] for h in HIDDEN], rtol=1e-10)

    # Broad plausibility ranges for the basic weighted estimates of Feehan et al. (2016): sex
    # workers and clients in the tens of thousands, msm and idu in the hundreds to thousands.
    plausible = {
        "sex.workers": (1e4, 1e5),
        "msm": (5e2, 3e4),
        "idu": (1e2, 1e4),
        "clients": (1e4, 3e5),
    }
    for h, (lo, hi) in plausible.items():
        assert lo < est[h] < hi, (h, est[h])


def test_rwanda_table_and_bootstrap(rwanda):
    survey, known = rwanda
    table = estimate_table(
        survey,
        known,
        N_RWANDA,
        HIDDEN,
        weights=survey["indweight"],
        strata=survey["region"],
        cluster=survey["cluster"],
        n_boot=200,
        seed=3,
    )
    print(table)
    assert list(table.columns) == TABLE_COLUMNS
    assert len(table) == 2 * len(HIDDEN)
    sizes = table[table.quantity == "size"].set_index("group")
    assert (sizes.lower < sizes.estimate).all() and (sizes.estimate < sizes.upper).all()
    prev = table[table.quantity == "prevalence"].set_index("group")
    np.testing.assert_allclose(prev.estimate, sizes.estimate / N_RWANDA, rtol=1e-12)
    assert (table.interval_prob == 0.9).all()
    again = estimate_table(
        survey,
        known,
        N_RWANDA,
        HIDDEN,
        weights=survey["indweight"],
        strata=survey["region"],
        cluster=survey["cluster"],
        n_boot=200,
        seed=3,
    )
    pd.testing.assert_frame_equal(table, again)


def test_rwanda_missing_cells_raise_or_skip():
    base = resources.files("bayes_nsum") / "data" / "rwanda"
    with resources.as_file(base / "survey.csv") as p:
        survey = pd.read_csv(p).set_index("id")
    with resources.as_file(base / "known_sizes.csv") as p:
        known = pd.read_csv(p).set_index("known.popn")["size"]
    with pytest.raises(DataError, match="muslim"):
        scale_up(survey, known, N_RWANDA, HIDDEN)
    deg = known_population_degree(survey, known, N_RWANDA, missing="skip")
    row = survey.index[survey["muslim"].isna()][0]
    others = known.drop("muslim")
    expected = N_RWANDA * survey.loc[row, list(others.index)].sum() / others.sum()
    assert deg[row] == pytest.approx(expected, rel=1e-12)
    assert np.isfinite(scale_up(survey, known, N_RWANDA, HIDDEN, missing="skip")).all()


# ------------------------------------------------------------------------------------------
# hand-computed tiny example
# ------------------------------------------------------------------------------------------


def test_tiny_degree(tiny):
    counts, known, N, _ = tiny
    deg = known_population_degree(counts, known, N)
    # d_i = 1000 * (y_ia + y_ib) / 400
    np.testing.assert_allclose(deg.to_numpy(), [10.0, 10.0, 10.0, 0.0])
    assert list(deg.index) == ["r1", "r2", "r3", "r4"]


def test_tiny_mle_and_pimle(tiny):
    counts, known, N, w = tiny
    # unweighted MLE: 1000 * (1 + 0 + 2 + 1) / (10 + 10 + 10 + 0) = 133.33
    assert scale_up(counts, known, N, "h")["h"] == pytest.approx(4000.0 / 30.0)
    # weighted MLE: 1000 * (1 + 0 + 2 + 1) / (10 + 20 + 10 + 0) = 100
    assert scale_up(counts, known, N, "h", weights=w)["h"] == pytest.approx(100.0)
    # PIMLE drops r4 (degree 0): 1000 * (1/10 + 0/10 + 2/10) / 3 = 100
    est = scale_up(counts, known, N, "h", method="pimle")
    assert est["h"] == pytest.approx(100.0)
    assert est.attrs["n_zero_degree"] == 1 and est.attrs["n_dropped"] == 1
    # weighted PIMLE: 1000 * (0.1 + 0 + 0.2) / (1 + 2 + 1) = 75
    assert scale_up(counts, known, N, "h", weights=w, method="pimle")["h"] == pytest.approx(75.0)


def test_tiny_adjustment_factors(tiny):
    counts, known, N, w = tiny
    est = scale_up(
        counts, known, N, "h", weights=w, degree_ratio={"h": 0.5}, transmission={"h": 0.8}
    )
    assert est["h"] == pytest.approx(100.0 / (0.5 * 0.8))
    assert est.attrs["basic"]["h"] == pytest.approx(100.0)
    table = estimate_table(
        counts, known, N, "h", weights=w, degree_ratio={"h": 0.5}, denominators={"h": 500.0}
    )
    assert list(table.columns) == TABLE_COLUMNS
    assert table.quantity.tolist() == ["size", "prevalence"]
    np.testing.assert_allclose(table.estimate, [200.0, 0.4])
    assert table.area.tolist() == ["", ""]
    assert table[["lower", "upper", "interval_prob"]].isna().all().all()


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"hidden": "nope"}, "nope"),
        ({"hidden": "a"}, "'a'"),
        ({"degree_ratio": {"zz": 1.0}}, "zz"),
        ({"degree_ratio": {"h": 0.0}}, "h"),
        ({"transmission": {"h": 1.5}}, "h"),
        ({"transmission": {"h": -0.1}}, "h"),
        ({"method": "bogus"}, "bogus"),
        ({"known_sizes": pd.Series({"a": 100.0, "c": 5.0})}, "'c'"),
        ({"known_sizes": pd.Series({"a": 100.0, "b": -1.0})}, "'b'"),
        ({"total_population": 0.0}, "total_population"),
        ({"weights": pd.Series([1.0, 1.0], index=["r1", "r2"])}, "r3"),
        ({"weights": pd.Series([1.0, -1.0, 1.0, 1.0], index=["r1", "r2", "r3", "r4"])}, "r2"),
    ],
)
def test_bad_inputs_raise_data_error(tiny, kwargs, key):
    counts, known, N, _ = tiny
    args = {"counts": counts, "known_sizes": known, "total_population": N, "hidden": "h"}
    args.update(kwargs)
    with pytest.raises(DataError, match=key):
        scale_up(**args)


def test_bad_counts_raise_data_error(tiny):
    counts, known, N, _ = tiny
    nan = counts.copy()
    nan.loc["r3", "b"] = np.nan
    with pytest.raises(DataError, match=r"'b'.*r3"):
        scale_up(nan, known, N, "h")
    neg = counts.copy()
    neg.loc["r2", "h"] = -1.0
    with pytest.raises(DataError, match=r"'h'.*r2"):
        scale_up(neg, known, N, "h")
    with pytest.raises(DataError, match="'h'"):
        estimate_table(counts, known, N, "h", denominators={"h": 0.0})
    with pytest.raises(DataError, match="'x'"):
        estimate_table(counts, known, N, "h", denominators={"x": 10.0})
    with pytest.raises(DataError, match="interval_prob"):
        estimate_table(counts, known, N, "h", n_boot=10, interval_prob=1.5)


def test_missing_skip_drops_only_missing_answers(tiny):
    counts, known, N, _ = tiny
    c = counts.copy()
    c.loc["r1", "a"] = np.nan  # r1: degree from b only = 1000 * 3 / 300 = 10
    c.loc["r2", "h"] = np.nan  # r2 left out of the hidden estimate
    deg = known_population_degree(c, known, N, missing="skip")
    assert deg["r1"] == pytest.approx(10.0)
    # MLE over r1, r3, r4: 1000 * (1 + 2 + 1) / (10 + 10 + 0)
    assert scale_up(c, known, N, "h", missing="skip")["h"] == pytest.approx(200.0)


# ------------------------------------------------------------------------------------------
# internal consistency
# ------------------------------------------------------------------------------------------


def test_internal_consistency_exact_when_noise_free():
    rng = np.random.default_rng(1)
    N = 1e6
    sizes = pd.Series({"g1": 1e4, "g2": 2.5e4, "g3": 5e4, "g4": 1e5})
    degree = rng.uniform(50, 500, size=30)
    counts = pd.DataFrame(np.outer(degree, sizes.to_numpy() / N), columns=sizes.index)
    weights = pd.Series(rng.uniform(0.5, 2.0, size=30))
    for method in ("mle", "pimle"):
        ic = internal_consistency(counts, sizes, N, weights=weights, method=method)
        assert list(ic.columns) == ["group", "true_size", "estimate", "error", "relative_error"]
        assert ic.group.tolist() == list(sizes.index)
        np.testing.assert_allclose(ic.estimate, sizes.to_numpy(), rtol=1e-12)
        np.testing.assert_allclose(ic.relative_error, 0.0, atol=1e-12)
        summary = summarize_internal_consistency(ic)
        assert summary["mean_absolute_relative_error"] < 1e-12
        assert summary["n_groups"] == 4


def test_summarize_internal_consistency_values():
    df = pd.DataFrame(
        {
            "group": ["a", "b", "c"],
            "true_size": [100.0, 200.0, 400.0],
            "estimate": [110.0, 180.0, 400.0],
        }
    )
    df["error"] = df.estimate - df.true_size
    df["relative_error"] = df.error / df.true_size
    s = summarize_internal_consistency(df)
    assert s["mean_absolute_error"] == pytest.approx(10.0)
    assert s["mean_absolute_relative_error"] == pytest.approx((0.1 + 0.1 + 0.0) / 3)
    assert s["rmse"] == pytest.approx(np.sqrt((100 + 400 + 0) / 3))
    assert s["median_relative_error"] == pytest.approx(0.0)


def test_internal_consistency_bad_input(tiny):
    counts, known, N, _ = tiny
    with pytest.raises(DataError, match="two known groups"):
        internal_consistency(counts, known[["a"]], N)


# ------------------------------------------------------------------------------------------
# rescaled bootstrap
# ------------------------------------------------------------------------------------------


def _design(n=300, seed=0):
    rng = np.random.default_rng(seed)
    strata = pd.Series(np.repeat(["s1", "s2", "s3"], n // 3))
    cluster = pd.Series(np.arange(n) // 10)  # 10 clusters per stratum
    weights = pd.Series(rng.uniform(0.5, 3.0, size=n))
    return strata, cluster, weights


def test_bootstrap_deterministic_and_structure():
    strata, cluster, weights = _design()
    a = rescaled_bootstrap_weights(len(weights), strata, cluster, weights, 50, seed=7)
    b = rescaled_bootstrap_weights(len(weights), strata, cluster, weights, 50, seed=7)
    c = rescaled_bootstrap_weights(len(weights), strata, cluster, weights, 50, seed=8)
    assert a.shape == (50, len(weights))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # everyone in a PSU gets the same multiplier; multipliers are r * n_h / (n_h - 1), n_h = 10
    mult = a / weights.to_numpy()[None, :]
    for k in range(30):
        block = mult[:, cluster.to_numpy() == k]
        np.testing.assert_allclose(block, np.broadcast_to(block[:, :1], block.shape), rtol=1e-14)
    r = mult[:, ::10] * 9 / 10
    np.testing.assert_allclose(r, np.round(r), atol=1e-12)
    # 9 PSUs drawn per stratum in every replicate
    np.testing.assert_allclose(np.round(r).reshape(50, 3, 10).sum(axis=2), 9)


def test_bootstrap_weights_average_to_design_weights():
    strata, cluster, weights = _design()
    reps = rescaled_bootstrap_weights(len(weights), strata, cluster, weights, 4000, seed=1)
    # E[r] = (n_h - 1) / n_h so each multiplier has mean 1 and variance (n_h - 1)/n_h *
    # (1 - 1/n_h) * (n_h/(n_h-1))^2 ~= 1; its mean over 4000 replicates has sd ~ 1/sqrt(4000)
    # = 0.016, so 0.08 (5 sd) bounds every one of the 30 PSUs with room to spare.
    ratio = reps.mean(axis=0) / weights.to_numpy()
    assert np.max(np.abs(ratio - 1.0)) < 0.08
    # the total weight per stratum is preserved exactly in expectation; on average to 1%
    np.testing.assert_allclose(reps.sum(axis=1).mean(), weights.sum(), rtol=0.01)


def test_bootstrap_single_psu_stratum_raises():
    strata = pd.Series(["a"] * 4 + ["lonely"] * 3)
    cluster = pd.Series([1, 1, 2, 2, 3, 3, 3])
    with pytest.raises(DataError, match="lonely"):
        rescaled_bootstrap_weights(7, strata, cluster, None, 10, seed=0)
    with pytest.raises(DataError, match="strata"):
        rescaled_bootstrap_weights(7, pd.Series(["a", None] * 3 + ["a"]), None, None, 10, seed=0)


def test_bootstrap_se_of_mean_matches_srs_formula():
    rng = np.random.default_rng(42)
    n = 400
    y = rng.normal(10.0, 3.0, size=n)

    def mean(w):
        return np.sum(w * y) / np.sum(w)

    reps = bootstrap_statistic(mean, n_boot=200, n=n, seed=5)
    assert reps.shape == (200,)
    se_boot = reps.std(ddof=1)
    se_srs = y.std(ddof=1) / np.sqrt(n)
    # With m = n - 1 and the n/(n - 1) rescaling, the bootstrap variance of a (near-linear) mean
    # is s^2 / n in expectation, the SRS formula. With 200 replicates the bootstrap SE itself has
    # a relative sd of about 1/sqrt(2 * 199) = 5%, so 25% is a 5-sd band that does not fail by
    # chance. It catches gross errors (too few units drawn, no resampling, weights not rescaled
    # per unit); it cannot see errors of order 1/n such as a missing n/(n - 1) factor.
    assert abs(se_boot / se_srs - 1.0) < 0.25
    vec = bootstrap_statistic(
        lambda W: (W @ y) / W.sum(axis=1), n_boot=200, n=n, seed=5, vectorized=True
    )
    np.testing.assert_allclose(vec, reps, rtol=1e-12)


def test_percentile_interval():
    reps = np.arange(1001, dtype=float)
    lo, hi = percentile_interval(reps, 0.9)
    assert lo == pytest.approx(50.0) and hi == pytest.approx(950.0)
    lo, hi = percentile_interval(np.column_stack([reps, 2 * reps]), 0.5)
    np.testing.assert_allclose(lo, [250.0, 500.0])
    np.testing.assert_allclose(hi, [750.0, 1500.0])
    with pytest.raises(DataError, match="interval_prob"):
        percentile_interval(reps, 1.0)


# ------------------------------------------------------------------------------------------
# per-area estimates
# ------------------------------------------------------------------------------------------


@pytest.fixture
def areas():
    rng = np.random.default_rng(11)
    n = 120
    area = pd.Series(np.repeat(["A", "B", "C"], n // 3), index=[f"r{i}" for i in range(n)])
    counts = pd.DataFrame(
        {
            "k1": rng.poisson(3, n).astype(float),
            "k2": rng.poisson(5, n).astype(float),
            "h": rng.poisson(1, n).astype(float),
        },
        index=area.index,
    )
    area_table = pd.DataFrame(
        {
            "population": [1000.0, 2000.0, 4000.0, 500.0],
            "k1": [30.0, 50.0, 120.0, 10.0],
            "k2": [40.0, 110.0, 200.0, 20.0],
            "adults": [600.0, 1300.0, 2500.0, 300.0],
        },
        index=["A", "B", "C", "D"],  # D has no respondents
    )
    weights = pd.Series(rng.uniform(0.5, 2.0, n), index=area.index)
    return counts, area, area_table, weights


def test_per_area_national_rows_equal_scale_up(areas):
    counts, area, area_table, weights = areas
    table = per_area_estimates(
        counts, area, area_table, "h", weights=weights, denominators={"h": "adults"}
    )
    assert list(table.columns) == TABLE_COLUMNS
    assert table.area.tolist() == ["", "", "A", "A", "B", "B", "C", "C"]  # no rows for D
    totals = area_table.sum()
    national = scale_up(counts, totals[["k1", "k2"]], totals["population"], "h", weights=weights)
    nat = table[table.area == ""].set_index("quantity").estimate
    assert nat["size"] == pytest.approx(national["h"], rel=1e-12)
    assert nat["prevalence"] == pytest.approx(national["h"] / totals["adults"], rel=1e-12)

    # area B uses its own population and known sizes, with only its respondents
    in_b = area == "B"
    row = area_table.loc["B"]
    b_est = scale_up(
        counts[in_b], row[["k1", "k2"]], row["population"], "h", weights=weights[in_b]
    )["h"]
    b = table[table.area == "B"].set_index("quantity").estimate
    assert b["size"] == pytest.approx(b_est, rel=1e-12)
    assert b["prevalence"] == pytest.approx(b_est / row["adults"], rel=1e-12)
    # hand check of B: d_i = 2000 * (k1 + k2) / 160
    d = 2000.0 * (counts.loc[in_b, "k1"] + counts.loc[in_b, "k2"]) / 160.0
    w = weights[in_b]
    assert b["size"] == pytest.approx(2000.0 * (w * counts.loc[in_b, "h"]).sum() / (w * d).sum())


def test_per_area_float_denominator_and_bootstrap(areas):
    counts, area, area_table, weights = areas
    cluster = pd.Series(np.arange(len(area)) // 4, index=area.index)  # 10 PSUs per area
    table = per_area_estimates(
        counts,
        area,
        area_table,
        ["h"],
        weights=weights,
        denominators={"h": 3000.0},
        strata=area,
        cluster=cluster,
        n_boot=100,
        seed=2,
    )
    size = table[table.quantity == "size"].set_index("area")
    prev = table[table.quantity == "prevalence"].set_index("area")
    assert prev.loc["", "estimate"] == pytest.approx(size.loc["", "estimate"] / 3000.0)
    share = area_table.loc["A", "population"] / area_table["population"].sum()
    assert prev.loc["A", "estimate"] == pytest.approx(size.loc["A", "estimate"] / (3000.0 * share))
    assert (table.lower <= table.estimate).all() and (table.estimate <= table.upper).all()
    assert (table.interval_prob == 0.9).all()


def test_per_area_bad_inputs(areas):
    counts, area, area_table, _ = areas
    bad_area = area.copy()
    bad_area.iloc[5] = "Z"
    with pytest.raises(DataError, match="Z"):
        per_area_estimates(counts, bad_area, area_table, "h")
    with pytest.raises(DataError, match="nosuch"):
        per_area_estimates(counts, area, area_table, "h", denominators={"h": "nosuch"})
    with pytest.raises(DataError, match="population"):
        per_area_estimates(counts, area, area_table.drop(columns="population"), "h")
