"""Generalized NSUM (Feehan & Salganik 2016): the hidden-population sample's loading and
checks, the classical generalized scale-up estimator with its bootstrap, the Bayesian model's
hidden-sample likelihood, and recovery of a simulated truth (slow)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytensor.tensor as pt
import pytest
from pytensor.graph.replace import graph_replace
from scipy import integrate, stats

from bayes_nsum.analysis import build_model, classical_estimates, prepare
from bayes_nsum.classical.gnsum import gnsum_estimate_table
from bayes_nsum.data import ARD
from bayes_nsum.errors import BayesNsumError, DataError, SpecError
from bayes_nsum.estimators import MODELS
from bayes_nsum.estimators.gnsum import GNSUMModel
from bayes_nsum.hidden_sample import HiddenSample
from bayes_nsum.simulate import simulate_gnsum
from bayes_nsum.spec import load_spec


def _sample(sim) -> HiddenSample:
    hs = sim.hidden_sample
    aware = hs[[f"{k}_aware" for k in sim.known]].set_axis(sim.known, axis=1)
    return HiddenSample(sim.hidden_group, hs[sim.known].astype(float), aware.astype(float))


def _sizes(sim) -> pd.Series:
    return pd.Series(sim.known_sizes["size"].to_numpy(float), index=sim.known_sizes["group"])


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    sim = simulate_gnsum(n_respondents=300, n_hidden_sample=60, seed=4)
    d = tmp_path_factory.mktemp("gnsum")
    sim.write(d)
    return d


def _spec(d, model="gnsum", **data):
    spec = load_spec(d / "spec.toml")
    spec = spec.with_value("model.name", model) if model != "gnsum" else spec
    for k, v in data.items():
        spec = spec.with_value(f"data.{k}", v)
    return spec


# -- data ----------------------------------------------------------------------------------


def test_hidden_sample_loads_and_round_trips_by_position(sim_dir):
    prep = prepare(sim_dir / "spec.toml")
    hs = prep.ard.hidden_sample
    assert hs.group == "hidden_1" and hs.n == 60 and hs.known == list(prep.ard.known)
    ds = prep.ard.constant_dataset()
    assert ds["hidden_sample_y"].dims == ("hidden_member", "hidden_known")
    back = HiddenSample.from_dataset(ds)
    pd.testing.assert_frame_equal(back.known_answers, hs.known_answers, check_names=False)
    pd.testing.assert_frame_equal(back.aware, hs.aware, check_names=False)
    assert back.group == hs.group


def _write_bad(sim_dir, tmp_path, edit):
    df = pd.read_csv(sim_dir / "hidden_sample.csv")
    df = edit(df)
    path = tmp_path / "bad_hidden.csv"
    df.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.drop(columns=["known_03_aware"]), "no column for aware answers"),
        (lambda d: d.assign(known_02_aware=d["known_02"] + 1), "larger than 'known_02'"),
        (lambda d: d.assign(known_04=d["known_04"].where(d.index != 2)), "both given or both"),
        (lambda d: d.assign(known_01=d["known_01"].astype(float) + 0.5), "non-integer counts"),
        (lambda d: d.assign(known_01=2000), "larger than the known group itself"),
        (lambda d: d.iloc[:0], "has no rows"),
    ],
)
def test_bad_hidden_sample_is_one_line_naming_column_and_rows(sim_dir, tmp_path, edit, message):
    path = _write_bad(sim_dir, tmp_path, edit)
    with pytest.raises(DataError) as err:
        prepare(_spec(sim_dir, hidden_sample=path))
    text = str(err.value)
    assert message in text and "\n" not in text
    if " in rows " in text:
        assert "rows 1" in text or "rows 3" in text  # by position, never an answer or id


@pytest.mark.parametrize(
    "model, data, model_keys, message",
    [
        ("killworth", {}, {}, "hidden_sample is not used by the killworth model"),
        ("degree", {}, {}, "hidden_sample is not used by the degree model"),
        ("gnsum_bayes", {}, {"method": "pimle"}, "method not used with a hidden sample"),
        ("gnsum", {"hidden_sample_group": "nope"}, {}, "is not a hidden group"),
    ],
)
def test_spec_refuses_hidden_sample_where_unused(sim_dir, model, data, model_keys, message):
    with pytest.raises(SpecError, match=message):
        spec = load_spec(sim_dir / "spec.toml").with_value("model.name", model)
        for k, v in {**{f"data.{k}": v for k, v in data.items()}, **model_keys}.items():
            spec = spec.with_value(k if "." in k else f"model.{k}", v)
        prepare(spec)


def test_gnsum_models_need_a_hidden_sample(sim_dir):
    spec = load_spec(sim_dir / "spec.toml")
    del spec.raw["data"]["hidden_sample"]
    del spec.raw["data"]["hidden_sample_group"]
    for name in ("gnsum", "gnsum_bayes"):
        spec.raw["model"]["name"] = name
        with pytest.raises(SpecError, match="needs \\[data\\] hidden_sample"):
            spec.check()
    spec.raw["data"]["hidden_sample_group"] = "hidden_1"
    spec.raw["model"]["name"] = "killworth"
    with pytest.raises(SpecError, match="names no hidden_sample"):
        prepare(spec)


# -- classical -----------------------------------------------------------------------------


def test_classical_gnsum_is_the_papers_formula():
    """N_H = [sum w y_iH / sum w] * [sum_j sum_k N_k] / [sum_j sum_k v_jk], by hand."""
    known = {"a": 1000.0, "b": 4000.0}
    counts = pd.DataFrame({"a": [1, 0, 2, 1], "b": [4, 3, 5, 2], "h": [1, 0, 2, 0]}, dtype=float)
    w = pd.Series([1.0, 2.0, 1.0, 0.5])
    y = pd.DataFrame({"a": [2, 1, np.nan], "b": [6, 3, 4]}, dtype=float)
    v = pd.DataFrame({"a": [1, 1, np.nan], "b": [3, 0, 2]}, dtype=float)
    t = gnsum_estimate_table(counts, pd.Series(known), 1e6, HiddenSample("h", y, v), weights=w)
    y_fh = (w @ counts["h"]) / w.sum()
    expected = y_fh * (5000 + 5000 + 4000) / (1 + 3 + 1 + 0 + 2)
    assert t.loc[t.quantity == "size", "estimate"].item() == pytest.approx(expected)
    assert t.attrs["transmission"] == pytest.approx(7 / 16)
    # the decomposition of Feehan & Salganik: basic / (degree ratio * transmission)
    a = t.attrs
    assert a["basic"] / (a["degree_ratio"] * a["transmission"]) == pytest.approx(expected)


def test_classical_gnsum_is_nearly_unbiased_and_its_interval_covers():
    """Over 30 simulated designs (n = 400, m = 80) the mean estimate is within 12% of the
    truth (one estimate's sd is about 15%, so the mean's is about 3%; the ratio estimator's
    bias is a few percent) and the 90% bootstrap interval covers the truth at least 20 times
    (expected 27; 20 or fewer has probability below 0.2% if coverage is 90%)."""
    est, cover = [], 0
    for s in range(30):
        sim = simulate_gnsum(n_respondents=400, n_hidden_sample=80, seed=100 + s)
        counts = sim.survey[sim.known + sim.hidden].astype(float)
        t = gnsum_estimate_table(
            counts, _sizes(sim), sim.total_population, _sample(sim), n_boot=200, seed=s
        )
        row = t[t.quantity == "size"].iloc[0]
        est.append(row.estimate)
        cover += row.lower <= 5000 <= row.upper
    assert abs(np.mean(est) / 5000 - 1) < 0.12
    assert cover >= 20


def test_workflow_baseline_is_gnsum_and_refuses_other_hidden_groups(sim_dir):
    prep = prepare(sim_dir / "spec.toml")
    table = classical_estimates(prep)
    assert list(table.quantity) == ["size", "prevalence"] and table.attrs["method"] == "gnsum"
    assert table.lower.iloc[0] < table.estimate.iloc[0] < table.upper.iloc[0]
    ard = prep.ard
    two = replace(
        ard,
        counts=ard.counts.assign(other=0.0),
        hidden=(*ard.hidden, "other"),
    )
    with pytest.raises(DataError, match="estimate other in a spec of its own"):
        classical_estimates(replace(prep, ard=two))


# -- Bayesian ------------------------------------------------------------------------------


def test_other_models_refuse_a_hidden_sample_and_gnsum_needs_one(sim_dir):
    prep = prepare(sim_dir / "spec.toml")
    with pytest.raises(BayesNsumError, match="does not use a hidden-population sample"):
        MODELS["transmission"](prep.ard)
    with pytest.raises(BayesNsumError, match="needs a hidden-population sample"):
        GNSUMModel(replace(prep.ard, hidden_sample=None))
    with pytest.raises(BayesNsumError, match="has no option"):
        GNSUMModel(prep.ard, recall_calibration=True)
    model = build_model(prep, name="gnsum_bayes")
    assert model.priors["tau"]["hidden_1"].dist == "Beta"


def _tiny_ard(sample: HiddenSample) -> ARD:
    known = {"k1": 3000.0, "k2": 8000.0, "k3": 15000.0}
    y = np.array([[1, 2, 4, 0], [0, 1, 3, 1], [2, 3, 5, 0]], float)
    return ARD(
        counts=pd.DataFrame(y, columns=[*known, "h"]),
        known=tuple(known),
        hidden=("h",),
        known_sizes=pd.Series(known),
        total_population=1e6,
        hidden_sample=sample,
    )


def test_hidden_sample_likelihood_matches_direct_integration():
    """The potential ``hidden_sample`` equals, at a parameter point, the sum over members of
    the log of the integral over the log-normal degree of the Poisson answers (scipy quad)
    plus the binomial log-pmf of the aware counts (tolerance 1e-6: quadrature error ~1e-8)."""
    y = pd.DataFrame({"k1": [1, 0, 2], "k2": [3, 1, np.nan], "k3": [6, 2, 4]}, dtype=float)
    v = pd.DataFrame({"k1": [1, 0, 0], "k2": [1, 1, np.nan], "k3": [2, 0, 3]}, dtype=float)
    model = GNSUMModel(_tiny_ard(HiddenSample("h", y, v)))
    point = {"mu": 5.0, "sigma": 0.7, "tau": 0.4, "delta": 1.3, "log_prevalence": -5.0}
    m = model.model
    pot = [p for p in m.potentials if p.name == "hidden_sample"][0]
    fixed = {
        rv: pt.constant(np.full(rv.type.ndim * (1,), point[rv.name]), dtype="float64")
        for rv in m.free_RVs
    }
    got = float(graph_replace(pot, fixed, strict=False).eval())
    share = np.array([3000.0, 8000.0, 15000.0]) / 1e6
    mu, sd = point["mu"] + np.log(point["delta"]), point["sigma"]
    want = 0.0
    for j in range(3):
        ok = ~np.isnan(y.iloc[j].to_numpy())
        yj, vj, r = y.iloc[j].to_numpy()[ok], v.iloc[j].to_numpy()[ok], share[ok]

        def f(x, yj=yj, r=r):
            return np.exp(stats.poisson.logpmf(yj, np.exp(x) * r).sum()) * stats.norm.pdf(x, mu, sd)

        want += np.log(integrate.quad(f, mu - 12 * sd, mu + 12 * sd, epsabs=0, limit=200)[0])
        want += stats.binom.logpmf(vj, yj, point["tau"]).sum()
    assert got == pytest.approx(want, abs=1e-6)


def test_hidden_sample_simulator_matches_the_model():
    """Simulated members at one draw: aware/known ~ tau and mean known-group answers ~
    exp(mu + log delta + sigma^2/2) * sum N_k/N, each within 5 standard errors."""
    y = pd.DataFrame(np.ones((4, 3)), columns=["k1", "k2", "k3"])
    model = GNSUMModel(_tiny_ard(HiddenSample("h", y, y.copy())))
    theta = model.prior_draws(1, seed=2)
    ys, vs = model.simulate_hidden_sample(theta, np.random.default_rng(1), n_members=20_000)
    th = theta.isel(chain=0, draw=0)
    tau = float(th["tau"].values.ravel()[0])
    total = ys.sum()
    assert abs(vs.sum() / total - tau) < 5 * np.sqrt(tau * (1 - tau) / total)
    mean = np.exp(float(th["mu"]) + np.log(float(th["delta"].values.ravel()[0])))
    mean *= np.exp(float(th["sigma"]) ** 2 / 2) * (26000 / 1e6)
    row = ys[0].sum(axis=1)
    assert abs(row.mean() - mean) < 5 * row.std() / np.sqrt(len(row))


def test_calibration_hooks_simulate_a_hidden_sample():
    from bayes_nsum.checks.calibration import sbc_template

    template = GNSUMModel.calibration_data(
        sbc_template(50, {"a": 0.01, "b": 0.02}, ("h",), 1e6), n_members=30
    )
    model = GNSUMModel(template, priors=GNSUMModel.calibration_priors)
    theta = model.prior_draws(1, seed=1)
    arrays = model.simulate_auxiliary(theta, np.random.default_rng(0))
    assert {"hidden_sample_aware", "hidden_sample_totals"} <= set(arrays)
    assert set(arrays) <= {v.name for v in model.model.data_vars}


def test_saved_fit_keeps_the_hidden_sample_and_estimate_writes_gnsum(
    sim_dir, fake_sampling, tmp_path
):
    import json

    import xarray as xr

    from bayes_nsum.analysis import run_estimate
    from bayes_nsum.estimators.base import NSUMModel

    fake_sampling(seed=2)
    prep = prepare(sim_dir / "spec.toml")
    model = build_model(prep, name="gnsum_bayes")
    tree = model.fit(draws=4, chains=2, progress=False).tree
    tree.attrs = {
        k: (v if isinstance(v, str) else json.dumps(v, default=str)) for k, v in tree.attrs.items()
    }
    tree.to_netcdf(tmp_path / "fit.nc", engine="h5netcdf")
    with xr.open_datatree(tmp_path / "fit.nc", engine="h5netcdf") as saved:
        again = NSUMModel.from_tree(saved.load())
    assert type(again) is GNSUMModel
    np.testing.assert_array_equal(again.sample.arrays()[1], model.sample.arrays()[1])
    assert again.data.hidden_sample.group == "hidden_1"
    assert again.structure_key() == model.structure_key()
    table, out = run_estimate(sim_dir / "spec.toml", tmp_path / "est")
    written = pd.read_csv(out / "estimates.csv")
    assert list(written.group) == ["hidden_1", "hidden_1"]
    assert written.estimate.iloc[0] == pytest.approx(table.estimate.iloc[0])


# -- recovery (slow) -----------------------------------------------------------------------


@pytest.mark.slow
def test_gnsum_bayes_recovers_size_and_tau(tmp_path):
    """One simulated design under the papers' binomial process (n = 800, m = 200,
    N_H = 5,000, tau = 0.5, delta = 0.8; seed fixed, not chosen): the central 99% intervals
    of the size, tau and delta contain the truth (a miss has probability about 1% each if the
    posterior is calibrated), the size's median is within 30% of the truth (the posterior sd of
    log N_H is about 0.1 here) and within 15% of the classical generalized scale-up estimate of
    the same data (both estimate the same quantity; their sampling sd is about 10%)."""
    sim = simulate_gnsum(n_respondents=800, n_hidden_sample=200, seed=11)
    sim.write(tmp_path, model="gnsum_bayes")
    prep = prepare(tmp_path / "spec.toml")
    classical = classical_estimates(prep).estimate.iloc[0]
    post = build_model(prep).fit(draws=200, tune=200, chains=2, progress=False, seed=3)
    post = post.tree["posterior"]

    def q(name):
        return np.quantile(post[name].values.ravel(), [0.005, 0.5, 0.995])

    size, tau, delta = q("size"), q("tau"), q("delta")
    assert size[0] < 5000 < size[2] and abs(size[1] / 5000 - 1) < 0.3
    assert abs(size[1] / classical - 1) < 0.15
    assert tau[0] < 0.5 < tau[2] and delta[0] < 0.8 < delta[2]


def test_cli_simulates_a_gnsum_design_and_estimates_it(capsys, tmp_path):
    from bayes_nsum.cli import main

    out = tmp_path / "sim"
    assert (
        main(["simulate", "gnsum", "--out", str(out), "--n", "200", "--hidden-sample", "50"]) == 0
    )
    assert len(pd.read_csv(out / "hidden_sample.csv")) == 50
    assert main(["estimate", str(out / "spec.toml"), "--out", str(tmp_path / "est")]) == 0
    assert main(["simulate", "gnsum", "--out", str(tmp_path / "x"), "--model", "degree"]) == 2
    err = capsys.readouterr().err
    assert "gnsum design" in err and len(err.strip().splitlines()) == 1
