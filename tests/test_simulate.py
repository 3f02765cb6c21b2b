"""Tests of the generative simulators (bayes_nsum.simulate).

Statistical checks compare a sample statistic with its model expectation *conditional on the true
degrees* the simulator returns, with a tolerance of 5 sampling standard errors (a false alarm rate
of about 6e-7 per check), so they fail only when the generative model is wrong.
"""

from __future__ import annotations

import math
import tomllib
from importlib.resources import files

import numpy as np
import pandas as pd
import pytest

from bayes_nsum.errors import DataError
from bayes_nsum.simulate import (
    Simulation,
    load_preset,
    lognormal_moments,
    simulate_ard,
    simulate_pooled,
    simulate_preset,
    simulate_scale_of_harm,
)

N = 1_000_000


def _small_pooled(**kw) -> Simulation:
    args = {"n_areas": 12, "respondents_per_area": 8, "seed": 1} | kw
    return simulate_pooled(**args)


# -- reproducibility -------------------------------------------------------------------------
def test_same_seed_identical_and_different_seed_differs():
    a = simulate_ard(n_respondents=200, rho=0.05, tau=0.6, seed=7)
    b = simulate_ard(n_respondents=200, rho=0.05, tau=0.6, seed=7)
    c = simulate_ard(n_respondents=200, rho=0.05, tau=0.6, seed=8)
    pd.testing.assert_frame_equal(a.survey, b.survey)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    np.testing.assert_array_equal(a.degrees, b.degrees)
    assert not a.survey.equals(c.survey)
    assert not np.array_equal(a.degrees, c.degrees)

    p = _small_pooled(seed=3)
    q = _small_pooled(seed=3)
    r = _small_pooled(seed=4)
    pd.testing.assert_frame_equal(p.survey, q.survey)
    pd.testing.assert_frame_equal(p.area_table, q.area_table)
    pd.testing.assert_frame_equal(p.truth, q.truth)
    assert not p.survey.equals(r.survey)
    assert not p.area_table.equals(r.area_table)


# -- output contract -------------------------------------------------------------------------
def test_ard_contract():
    sim = simulate_ard(n_respondents=50, seed=0)
    assert sim.known == [f"known_{k:02d}" for k in range(1, 11)]
    assert sim.hidden == ["hidden_1"]
    assert list(sim.survey.columns) == ["id", "weight", *sim.known, *sim.hidden]
    assert len(sim.survey) == 50
    assert sim.survey["id"].is_unique
    assert all(isinstance(x, str) for x in sim.survey["id"])
    assert sim.survey["weight"].dtype == np.float64
    assert (sim.survey["weight"] == 1.0).all()
    for g in sim.known + sim.hidden:
        assert sim.survey[g].dtype == np.int64
        assert (sim.survey[g] >= 0).all()
    assert list(sim.known_sizes.columns) == ["group", "size"]
    assert list(sim.known_sizes["group"]) == sim.known
    prev = sim.known_sizes["size"].to_numpy() / N
    assert prev.min() == pytest.approx(0.001) and prev.max() == pytest.approx(0.03)
    assert sim.total_population == N
    assert sim.area_table is None and sim.denominators is None
    assert sim.degrees.shape == (50,) and sim.degrees.min() >= 1
    assert list(sim.truth.columns) == ["area", "group", "quantity", "value"]
    assert set(sim.truth["group"]) == set(sim.known + sim.hidden)
    assert set(sim.truth["quantity"]) == {"size", "prevalence"}
    assert (sim.truth["area"] == "").all()
    t = sim.truth.set_index(["group", "quantity"])["value"]
    assert t["hidden_1", "size"] == pytest.approx(5000)
    assert t["hidden_1", "prevalence"] == pytest.approx(0.005)
    for key in ("mu", "sigma", "rho", "tau", "degree_ratio", "likelihood", "seed"):
        assert key in sim.params
    assert sim.params["tau"]["known_01"] == 1.0


def test_ard_denominators_in_truth():
    sim = simulate_ard(
        n_respondents=20,
        hidden_sizes={"victims": 3000},
        denominators={"victims": 300_000},
        seed=0,
    )
    assert sim.denominators == {"victims": 300_000}
    t = sim.truth.set_index(["group", "quantity"])["value"]
    assert t["victims", "prevalence"] == pytest.approx(0.01)
    assert t["known_01", "prevalence"] == pytest.approx(0.001)


def test_pooled_contract_and_truth():
    n_per = np.arange(1, 13)
    sim = simulate_pooled(
        n_areas=12,
        respondents_per_area=n_per,
        known_names=["a", "b", "c"],
        hidden_names=["victims", "offenders"],
        denominators={"victims": "children", "offenders": "adults"},
        seed=2,
    )
    areas = [f"A{j:03d}" for j in range(1, 13)]
    assert list(sim.survey.columns) == [
        "id",
        "area",
        "weight",
        "a",
        "b",
        "c",
        "victims",
        "offenders",
    ]
    assert len(sim.survey) == n_per.sum()
    assert sim.survey["id"].is_unique
    assert sim.survey.groupby("area").size().reindex(areas).tolist() == n_per.tolist()
    at = sim.area_table
    assert list(at.columns) == ["area", "population", "a", "b", "c", "children", "adults"]
    assert at["area"].tolist() == areas
    assert (at["population"] >= 5_000).all() and (at["population"] <= 2_000_000).all()
    np.testing.assert_allclose(at["children"], np.rint(0.35 * at["population"]))
    np.testing.assert_allclose(at["adults"], np.rint(0.6 * at["population"]))
    assert sim.total_population == pytest.approx(at["population"].sum())
    assert sim.denominators == {"victims": "children", "offenders": "adults"}

    t = sim.truth
    size = t[t["quantity"] == "size"]
    prev = t[t["quantity"] == "prevalence"]
    area_size = size[size["area"] != ""].pivot(index="area", columns="group", values="value")
    national = size[size["area"] == ""].set_index("group")["value"]
    for g in sim.known + sim.hidden:
        assert national[g] == pytest.approx(area_size[g].sum())
    for g in sim.known:
        np.testing.assert_allclose(area_size.loc[areas, g], at[g])
        row = sim.known_sizes.set_index("group")["size"]
        assert row[g] == pytest.approx(at[g].sum())
    nat_prev = prev[prev["area"] == ""].set_index("group")["value"]
    assert nat_prev["victims"] == pytest.approx(national["victims"] / at["children"].sum())
    assert nat_prev["offenders"] == pytest.approx(national["offenders"] / at["adults"].sum())
    assert nat_prev["a"] == pytest.approx(national["a"] / at["population"].sum())
    area_prev = prev[prev["area"] == "A001"].set_index("group")["value"]
    assert area_prev["victims"] == pytest.approx(
        area_size.loc["A001", "victims"] / at.loc[0, "children"]
    )
    # every group has a per-area and a national row for both quantities
    assert len(t) == (12 + 1) * 5 * 2


def test_pooled_defaults():
    sim = _small_pooled()
    assert sim.known == ["known_01", "known_02", "known_03", "known_04"]
    assert sim.hidden == ["hidden_1", "hidden_2"]
    assert sim.denominators is None
    assert list(sim.area_table.columns) == ["area", "population", *sim.known]
    assert sim.params["nb_shape"] == {
        "known_01": 2.0,
        "known_02": 2.0,
        "known_03": 2.0,
        "known_04": 2.0,
        "hidden_1": 0.5,
        "hidden_2": 0.5,
    }
    assert sim.params["area_effects"].shape == (12, 6)


def test_scale_of_harm_design():
    sim = simulate_scale_of_harm(n_areas=40, respondents_per_area=5, seed=0)
    assert sim.hidden == ["victims", "offenders"]
    assert "teachers" in sim.known and "children_0_2" in sim.known and len(sim.known) == 10
    assert {"children", "adults"} <= set(sim.area_table.columns)
    assert sim.denominators == {"victims": "children", "offenders": "adults"}
    nat = sim.truth[(sim.truth["area"] == "") & (sim.truth["quantity"] == "prevalence")]
    nat = nat.set_index("group")["value"]
    # medians 1 in 100 children and 3 in 1000 adults; area effects sd 0.3 move the national
    # figure by far less than the factor allowed here
    assert 0.007 < nat["victims"] < 0.014
    assert 0.002 < nat["offenders"] < 0.0045
    assert 0.04 < nat["children_0_2"] < 0.08


# -- the generative model --------------------------------------------------------------------
def _mean_check(y: np.ndarray, expected: np.ndarray, var: np.ndarray) -> None:
    """Sample mean of y within 5 standard errors of the mean of its expectations."""
    n = len(y)
    se = math.sqrt(var.sum()) / n
    assert abs(y.mean() - expected.mean()) < 5 * se, (y.mean(), expected.mean(), se)


@pytest.mark.parametrize("likelihood", ["binomial", "poisson", "negbin"])
def test_known_group_mean_matches_model(likelihood):
    m = 0.02
    omega = 3.0 if likelihood == "negbin" else None
    sim = simulate_ard(
        n_respondents=20_000,
        known_sizes={"a": m * N},
        hidden_sizes={"h": 0.004 * N},
        likelihood=likelihood,
        omega=omega,
        seed=11,
    )
    d = sim.degrees.astype(float)
    y = sim.survey["a"].to_numpy()
    mean = d * m
    var = {"binomial": d * m * (1 - m), "poisson": d * m, "negbin": 3.0 * d * m}[likelihood]
    _mean_check(y, mean, var)
    if likelihood == "negbin":
        # Zheng et al.: variance = omega * mean; the dispersion statistic estimates omega
        disp = ((y - mean) ** 2).sum() / mean.sum()
        assert 2.5 < disp < 3.5


@pytest.mark.parametrize("degree", ["lognormal", "gamma"])
def test_degree_moments_match_lognormal(degree):
    mu, sigma = 5.0, 0.8
    sim = simulate_ard(
        n_respondents=100_000,
        known_sizes={"a": 0.01 * N},
        hidden_sizes={},
        degree=degree,
        mu=mu,
        sigma=sigma,
        likelihood="poisson",
        seed=5,
    )
    mean, var = lognormal_moments(mu, sigma)
    d = sim.degrees
    n = len(d)
    assert abs(d.mean() - mean) < 5 * math.sqrt(var / n)
    # relative SE of the sample variance is sqrt((excess kurtosis + 2) / n): about 1.8% for this
    # log-normal (excess kurtosis ~31), less for the gamma; 10% is more than 5 SE
    assert d.var() == pytest.approx(var, rel=0.10)


def test_gamma_and_lognormal_degrees_differ_in_shape():
    kw = {"n_respondents": 20_000, "hidden_sizes": {}, "likelihood": "poisson", "seed": 5}
    ln = simulate_ard(degree="lognormal", **kw).degrees
    ga = simulate_ard(degree="gamma", **kw).degrees
    # same mean and variance, but the gamma has far more mass near zero than the log-normal
    assert (ga < 20).mean() > 2 * (ln < 20).mean()


def test_barrier_increases_variance_and_keeps_mean():
    m, rho = 0.02, 0.05
    kw = {
        "n_respondents": 20_000,
        "known_sizes": {"a": m * N},
        "hidden_sizes": {},
        "seed": 3,
    }
    plain = simulate_ard(**kw)
    barrier = simulate_ard(rho=rho, **kw)
    np.testing.assert_array_equal(plain.degrees, barrier.degrees)  # degrees use their own stream
    y0 = plain.survey["a"].to_numpy()
    y1 = barrier.survey["a"].to_numpy()
    d = barrier.degrees.astype(float)
    # beta-binomial variance d m (1-m) (1 + (d - 1) rho): ~11x the binomial one at d ~ 200
    assert y1.var() > 2 * y0.var()
    _mean_check(y1, d * m, d * m * (1 - m) * (1 + (d - 1) * rho))
    assert barrier.params["rho"] == {"a": rho}


def test_tau_and_degree_ratio_scale_hidden_counts():
    m = 0.01
    kw = {
        "n_respondents": 20_000,
        "known_sizes": {"a": 0.02 * N},
        "hidden_sizes": {"h": m * N},
        "seed": 9,
    }
    base = simulate_ard(**kw)
    scaled = simulate_ard(tau=0.4, degree_ratio={"h": 1.5}, **kw)
    # known groups are untouched (tau = 1 for known groups; same random stream)
    pd.testing.assert_series_equal(base.survey["a"], scaled.survey["a"])
    d = scaled.degrees.astype(float)
    p = 0.4 * 1.5 * m
    _mean_check(scaled.survey["h"].to_numpy(), d * p, d * p * (1 - p))
    assert scaled.params["tau"] == {"a": 1.0, "h": 0.4}
    assert scaled.survey["h"].mean() < 0.8 * base.survey["h"].mean()


def test_pooled_gamma_area_effects_are_the_study_model():
    """``area_distribution = "gamma"``: rho = -log p ~ Gamma(mean -log mu, sd sigma_area).
    4,000 areas: the mean of rho within 4 standard errors (0.008) of -log 0.01, its sd within 4
    standard errors (0.006) of 0.5, and its skewness (2/sqrt(shape) = 0.22 here, 0 for the
    lognormal default) within 4 standard errors (sqrt(6/4000) = 0.039) of the gamma's."""
    kw = dict(n_areas=4000, respondents_per_area=1, sigma_area=0.5, seed=3)
    kw["prevalence"] = {"known_01": 0.01}
    skews = {}
    for dist in ("gamma", "lognormal"):
        sim = simulate_pooled(**kw, area_distribution=dist)
        rho = -np.log(sim.params["area_prevalence"][:, 0])
        skews[dist] = float(np.mean((rho - rho.mean()) ** 3) / rho.std() ** 3)
        assert abs(rho.mean() - np.log(100)) < 4 * 0.5 / np.sqrt(4000)
        assert abs(rho.std() - 0.5) < 4 * 0.5 / np.sqrt(2 * 4000)
    expected = 2 / np.sqrt((np.log(100) / 0.5) ** 2)
    assert abs(skews["gamma"] - expected) < 4 * np.sqrt(6 / 4000)
    assert abs(skews["lognormal"]) < 4 * np.sqrt(6 / 4000)


def test_pooled_counts_match_model():
    sim = simulate_pooled(n_areas=30, respondents_per_area=200, seed=4)
    area_idx = np.repeat(np.arange(30), 200)
    rate = sim.params["area_rate"]
    shape = sim.params["nb_shape"]
    for k, g in enumerate(sim.known + sim.hidden):
        mean = sim.degrees * rate[area_idx, k]
        var = mean + mean**2 / shape[g]
        _mean_check(sim.survey[g].to_numpy(), mean, var)
    # the rate is the true size over the area population
    size = sim.params["area_sizes"]
    np.testing.assert_allclose(rate, size / sim.area_table["population"].to_numpy()[:, None])


# -- writing ---------------------------------------------------------------------------------
def test_write_single_area(tmp_path):
    sim = simulate_ard(
        n_respondents=30, hidden_sizes={"h": 3000}, denominators={"h": 250_000}, seed=0
    )
    paths = sim.write(tmp_path / "out", name="demo")
    assert set(paths) == {"survey", "known_sizes", "truth", "spec"}
    spec_path = paths["spec"]
    assert spec_path == tmp_path / "out" / "spec.toml"
    spec = tomllib.loads(spec_path.read_text())
    data = spec["data"]
    assert data["survey"] == "survey.csv" and data["known_sizes"] == "known_sizes.csv"
    assert data["total_population"] == 1_000_000 and isinstance(data["total_population"], int)
    assert "area" not in data and "area_table" not in data
    assert spec["groups"]["known"] == sim.known and spec["groups"]["hidden"] == ["h"]
    assert spec["groups"]["denominators"] == {"h": 250_000}
    assert spec["model"]["name"] == "killworth" and spec["output"]["dir"] == "results"
    base = spec_path.parent
    survey = pd.read_csv(base / data["survey"])
    assert list(survey.columns) == list(sim.survey.columns)
    np.testing.assert_array_equal(survey[sim.known].to_numpy(), sim.survey[sim.known].to_numpy())
    ks = pd.read_csv(base / data["known_sizes"])
    pd.testing.assert_frame_equal(ks, sim.known_sizes)
    truth = pd.read_csv(paths["truth"], keep_default_na=False)
    assert (truth["area"] == "").all() and len(truth) == len(sim.truth)


def test_write_multi_area(tmp_path):
    sim = simulate_scale_of_harm(n_areas=5, respondents_per_area=3, seed=0)
    paths = sim.write(tmp_path)
    spec = tomllib.loads(paths["spec"].read_text())
    data = spec["data"]
    assert data["area"] == "area" and data["area_table"] == "area_table.csv"
    assert "known_sizes" not in data
    assert data["total_population"] == pytest.approx(sim.total_population)
    assert spec["groups"]["denominators"] == {"victims": "children", "offenders": "adults"}
    at = pd.read_csv(tmp_path / data["area_table"])
    pd.testing.assert_frame_equal(at, sim.area_table)
    survey = pd.read_csv(tmp_path / data["survey"])
    assert set(survey["area"]) <= set(at["area"])
    truth = pd.read_csv(paths["truth"], keep_default_na=False)
    assert set(truth["area"]) == {"", *at["area"]}


# -- presets ---------------------------------------------------------------------------------
def _preset_csv(name: str) -> pd.DataFrame:
    with (files("bayes_nsum") / "data" / "presets" / f"{name}_groups.csv").open() as fh:
        return pd.read_csv(fh)


@pytest.mark.parametrize(
    ("name", "n_known", "hidden", "total"),
    [
        ("mccarty", 29, "unknown1", 250_000_000),
        ("curitiba", 20, "heavy.drug.user", 1_817_434),
    ],
)
def test_load_preset(name, n_known, hidden, total):
    csv = _preset_csv(name)
    assert (csv["type"] == "known").sum() == n_known
    p = load_preset(name)
    assert set(p) == {
        "known_sizes",
        "hidden_sizes",
        "total_population",
        "mu",
        "sigma",
        "rho",
        "tau",
    }
    assert len(p["known_sizes"]) == n_known
    assert list(p["hidden_sizes"]) == [hidden]
    assert p["total_population"] == total
    assert set(p["rho"]) == set(csv["group"])
    assert list(p["tau"]) == [hidden]
    row = csv.set_index("group").loc[hidden]
    assert p["hidden_sizes"][hidden] == row["size"] and p["tau"][hidden] == row["tau_sim"]


def test_simulate_preset():
    sim = simulate_preset("curitiba", n_respondents=100, seed=1)
    assert len(sim.known) == 20 and sim.hidden == ["heavy.drug.user"]
    assert sim.params["tau"]["heavy.drug.user"] == pytest.approx(0.542)
    assert sim.params["barrier"] is True and sim.params["mu"] == pytest.approx(4.86)
    plain = simulate_preset("curitiba", n_respondents=100, barrier=False, transmission=False)
    assert plain.params["barrier"] is False
    assert plain.params["tau"]["heavy.drug.user"] == 1.0
    assert all(v is None for v in plain.params["rho"].values())


# -- argument validation ---------------------------------------------------------------------
BAD_CALLS = {
    "unknown preset": lambda: load_preset("nowhere"),
    "unknown preset (simulate)": lambda: simulate_preset("nowhere"),
    "size <= 0": lambda: simulate_ard(known_sizes={"a": 0}),
    "size > N": lambda: simulate_ard(hidden_sizes={"h": 2 * N}),
    "rho = 0": lambda: simulate_ard(rho=0.0),
    "rho = 1": lambda: simulate_ard(rho={"known_01": 1.0}),
    "rho unknown group": lambda: simulate_ard(rho={"nope": 0.1}),
    "tau = 0": lambda: simulate_ard(tau=0.0),
    "tau > 1": lambda: simulate_ard(tau={"hidden_1": 1.2}),
    "tau on known group": lambda: simulate_ard(tau={"known_01": 0.5}),
    "degree keyword": lambda: simulate_ard(degree="weibull"),
    "likelihood keyword": lambda: simulate_ard(likelihood="normal"),
    "known and hidden": lambda: simulate_ard(known_sizes={"a": 10}, hidden_sizes={"a": 10}),
    "no known groups": lambda: simulate_ard(known_sizes={}),
    "reserved name": lambda: simulate_ard(known_sizes={"weight": 10}),
    "n_respondents": lambda: simulate_ard(n_respondents=0),
    "sigma": lambda: simulate_ard(sigma=0.0),
    "omega < 1": lambda: simulate_ard(likelihood="negbin", omega=0.5),
    "omega without negbin": lambda: simulate_ard(omega=2.0),
    "degree_ratio <= 0": lambda: simulate_ard(degree_ratio={"hidden_1": 0.0}),
    "denominator < size": lambda: simulate_ard(denominators={"hidden_1": 10}),
    "denominator on known": lambda: simulate_ard(denominators={"known_01": 1e5}),
    "total_population": lambda: simulate_ard(total_population=-1),
    "pooled n_areas": lambda: simulate_pooled(n_areas=0),
    "pooled respondents length": lambda: simulate_pooled(n_areas=3, respondents_per_area=[1, 2]),
    "pooled respondents < 1": lambda: simulate_pooled(n_areas=2, respondents_per_area=[0, 2]),
    "pooled known and hidden": lambda: simulate_pooled(known_names=["a"], hidden_names=["a"]),
    "pooled names vs n": lambda: simulate_pooled(n_known=3, known_names=["a", "b"]),
    "pooled prevalence": lambda: simulate_pooled(prevalence={"known_01": 0.7}),
    "pooled sigma_area": lambda: simulate_pooled(sigma_area=-0.1),
    "pooled nb_shape": lambda: simulate_pooled(nb_shape={"hidden_1": 0}),
    "pooled denominator column": lambda: simulate_pooled(denominators={"hidden_1": "elders"}),
    "pooled denominator group": lambda: simulate_pooled(denominators={"known_01": "adults"}),
    "pooled area_population": lambda: simulate_pooled(n_areas=2, area_population=[1000, -5]),
    "pooled area_distribution": lambda: simulate_pooled(area_distribution="weibull"),
}


@pytest.mark.parametrize("call", list(BAD_CALLS.values()), ids=list(BAD_CALLS))
def test_bad_arguments_raise_data_error(call):
    with pytest.raises(DataError) as info:
        call()
    assert "\n" not in str(info.value)
