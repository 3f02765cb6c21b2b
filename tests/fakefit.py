"""Fake fits for the fast tier: models of a small known design and posteriors whose draws sit
(with a little jitter) at the parameters that generated the data, so that the predictive
distribution is known. Nothing here samples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayes_nsum.data import ARD
from bayes_nsum.estimators import MODELS
from bayes_nsum.estimators.components import gamma_shape_rate

N = 1_000_000.0
KNOWN = {"k1": 2000.0, "k2": 5000.0, "k3": 10000.0, "k4": 20000.0, "k5": 40000.0}
HIDDEN = {"h1": 6000.0}
GROUPS = list(KNOWN) + list(HIDDEN)
RATES = np.array([*KNOWN.values(), *HIDDEN.values()]) / N


def simulate(rng, n, rates=RATES, mu=5.0, sigma=0.8, shape=None, kind="lognormal"):
    """Answers from the Maltiel degree (Poisson) or barrier (NB2, ``shape``) model."""
    if kind == "gamma":
        a, b = gamma_shape_rate(np.array(mu), np.array(sigma))
        d = rng.gamma(a, 1 / b, size=n)
    else:
        d = np.exp(rng.normal(mu, sigma, size=n))
    m = d[:, None] * rates[None, :]
    if shape is None:
        return rng.poisson(m).astype(float)
    return rng.poisson(rng.gamma(shape, m / shape)).astype(float)


def ard_of(y: np.ndarray, sizes: dict | None = None, area=None, area_table=None) -> ARD:
    ids = [str(i) for i in range(y.shape[0])]
    return ARD(
        counts=pd.DataFrame(y, index=ids, columns=GROUPS),
        known=tuple(KNOWN),
        hidden=tuple(HIDDEN),
        known_sizes=pd.Series(sizes or KNOWN),
        total_population=N,
        area=None if area is None else pd.Series(area, index=ids),
        area_table=area_table,
    )


def model_of(name: str, y: np.ndarray, sizes: dict | None = None, **options):
    """The named model of the answers ``y`` (design of this module)."""
    return MODELS[name](ard_of(y, sizes), **options)


def jit(rng, value, shape=(), sd=0.005, chains=2, draws=300):
    value = np.asarray(value, float)
    return value + sd * rng.normal(size=(chains, draws, *shape))


def maltiel_posterior(rng, mu=5.0, sigma=0.8, rates=RATES, shape=None, draws=300, sd=0.005):
    lr = jit(rng, np.log(rates), (len(rates),), sd, draws=draws)
    post = {
        "mu": (("chain", "draw"), jit(rng, mu, sd=sd, draws=draws)),
        "sigma": (("chain", "draw"), jit(rng, sigma, sd=sd, draws=draws)),
        "log_rate": (("chain", "draw", "group"), lr),
        "log_visible": (("chain", "draw", "hidden"), lr[..., len(KNOWN) :]),
    }
    if shape is not None:
        post["barrier_shape"] = (
            ("chain", "draw", "group"),
            np.exp(jit(rng, np.log(shape), (len(rates),), sd, draws=draws)),
        )
    size = np.exp(lr[..., len(KNOWN) :]) * N
    post.update(
        {
            "size": (("chain", "draw", "hidden"), size),
            "prevalence": (("chain", "draw", "hidden"), size / N),
            "one_in_x": (("chain", "draw", "hidden"), N / size),
        }
    )
    return xr.Dataset(post, coords={"group": GROUPS, "hidden": list(HIDDEN)})


def make_tree(post: xr.Dataset, model, caps=None):
    """A saved-fit-shaped DataTree of ``model`` with posterior ``post`` (and its provenance)."""
    rng = np.random.default_rng(99)
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    stats = xr.Dataset(
        {
            "diverging": (("chain", "draw"), np.zeros((nc, nd), bool)),
            "energy": (("chain", "draw"), rng.normal(size=(nc, nd))),
        }
    )
    steps = [{"rule": "missing_drop", "settings": {"policy": "drop"}, "counts": {"k1": 0}}]
    if caps:
        steps.append(
            {
                "rule": "topcode",
                "settings": {"threshold": 30, "caps": caps},
                "counts": dict.fromkeys(caps, 1),
            }
        )
    n = model.data.n
    prov = {
        "versions": {"python": "3.12", "bayes_nsum": "0.1.0"},
        "spec": {
            "data": {"survey": "survey.csv", "total_population": N},
            "groups": {"hidden": list(HIDDEN)},
            "model": {"name": model.name},
            "output": {"interval_prob": 0.9},
        },
        "spec_hash": "abc123",
        "data_hash": "def456",
        "n_respondents": n,
        "n_respondents_raw": n + 3,
        "preprocess": {"steps": steps},
        "sampler": {"seed": 7, "draws": nd, "chains": nc},
        "model": model.config(),
        "command": "fit",
    }
    tree = xr.DataTree.from_dict(
        {
            "posterior": post,
            "sample_stats": stats,
            "observed_data": model.observed_dataset(),
            "constant_data": model.constant_dataset(),
        }
    )
    tree.attrs = {
        "model": model.name,
        "model_config": json.dumps(model.config()),
        "provenance": json.dumps(prov),
    }
    return tree, prov


def write_results(d: Path, tree, prov, passed: bool = True, areas: bool = False) -> Path:
    """A results folder as ``bayes-nsum fit`` writes it, from a fake fit."""
    from bayes_nsum.checks.predictive import posterior_predictive, ppc_of_tree, topcode_caps
    from bayes_nsum.estimators.base import NSUMModel
    from bayes_nsum.result import compute_diagnostics, summarize_posterior

    d.mkdir(parents=True, exist_ok=True)
    post = tree["posterior"].to_dataset()
    try:
        model = NSUMModel.from_tree(tree)
        caps = topcode_caps(prov["preprocess"]["steps"])
        tree["posterior_predictive"] = xr.DataTree(
            posterior_predictive(model, post, 60, seed=1, topcode=caps)
        )
        ppc_of_tree(tree).to_csv(d / "ppc.csv", index=False)
    except Exception as exc:  # noqa: BLE001 - as the workflow records it
        (d / "ppc_error.json").write_text(json.dumps({"error": str(exc)}))
    tree.to_netcdf(d / "posterior.nc", engine="h5netcdf")
    summary = summarize_posterior(post, 0.9)
    if areas:
        rows = []
        for j, a in enumerate(["north", "south", "east", "west", "centre"]):
            est = 0.004 + 0.001 * j
            rows.append(
                {
                    "area": a,
                    "group": "h1",
                    "quantity": "prevalence",
                    "estimate": est,
                    "mean": est,
                    "lower": est * 0.7,
                    "upper": est * 1.4,
                    "interval_prob": 0.9,
                    "r_hat": 1.0,
                    "ess_bulk": 500.0,
                    "ess_tail": 500.0,
                }
            )
        summary = pd.concat([summary, pd.DataFrame(rows)], ignore_index=True)
    summary.to_csv(d / "summary.csv", index=False)
    diag = compute_diagnostics(tree)
    if not passed:
        diag["passed"] = False
        diag["checks"][0]["passed"] = False
        diag["advice"] = ["run longer"]
    (d / "diagnostics.json").write_text(json.dumps(diag, default=str))
    (d / "provenance.json").write_text(json.dumps(prov))
    pd.DataFrame(
        {"rule": ["missing_drop", "topcode"], "group": ["k1", "k5"], "n_changed": [0, 2]}
    ).to_csv(d / "preprocess_log.csv", index=False)
    return d
