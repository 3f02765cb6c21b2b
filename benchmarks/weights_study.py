"""Survey weights in the Bayesian degree model under informative sampling.

    python benchmarks/weights_study.py --replications 40 --out benchmarks/results/weights

Design (issue 12): a frame population of 200,000 people with log-normal network sizes
(mu = 5, sigma = 0.8); a person's contacts fall in the hidden group at a rate that rises with
their network size, r_i = r0 (d_i / median d)^0.5, scaled so that the population-level share
sum_i d_i r_i / sum_i d_i equals N_H / N = 0.004 (the quantity scale-up estimates); ten known
groups are known at their population shares. Respondents are drawn by Poisson sampling with
inclusion probability proportional to d_i (expected n = 800), so people with large networks --
who know more hidden-group members per contact -- are over-represented; the weights are the
inverse inclusion probabilities. Each replication fits the Bayesian degree model three ways:
unweighted, weighted pseudo-likelihood without the design adjustment, and weighted with the
Williams-Savitsky adjustment (the package default when weights are given), and records the
hidden size's posterior median and 90% interval. Results: OUT/weights_study.csv and .json.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

N = 10_000_000.0
SHARE_H = 0.004
KNOWN = {f"known_{k:02d}": float(p) for k, p in enumerate(np.geomspace(0.002, 0.03, 10))}


def population(seed: int, size: int = 200_000):
    rng = np.random.default_rng(seed)
    d = np.exp(rng.normal(5.0, 0.8, size))
    tilt = (d / np.median(d)) ** 0.5
    r = tilt * SHARE_H * d.sum() / (d * tilt).sum()  # sum d r / sum d = SHARE_H
    return d, r


def sample(seed: int, d, r, n_expected: int = 800):
    from bayes_nsum.data import ARD

    rng = np.random.default_rng(seed)
    pi = np.minimum(1.0, n_expected * d / d.sum())
    keep = rng.random(len(d)) < pi
    dk, rk, w = d[keep], r[keep], 1 / pi[keep]
    y = np.column_stack(
        [rng.poisson(dk * m) for m in KNOWN.values()] + [rng.poisson(dk * rk)]
    ).astype(float)
    groups = [*KNOWN, "hidden"]
    ids = [str(i) for i in range(len(y))]
    return ARD(
        counts=pd.DataFrame(y, index=ids, columns=groups),
        known=tuple(KNOWN),
        hidden=("hidden",),
        known_sizes=pd.Series({k: p * N for k, p in KNOWN.items()}),
        total_population=N,
        weights=pd.Series(w, index=ids),
    )


_COMPILED: dict = {}


def fit(ard, how: str, seed: int) -> dict:
    """Fit one configuration; the model is compiled once per configuration and each survey's
    data (and weights) swapped in."""
    from bayes_nsum.estimators import MODELS
    from bayes_nsum.fit import compile_nutpie

    weighted = how != "unweighted"
    model = MODELS["degree"](ard, survey_weights=weighted)
    if how == "weighted, no adjustment":
        model.adjust_posterior = lambda post: (post, None)  # the raw pseudo-posterior
    if weighted not in _COMPILED:
        _COMPILED[weighted] = compile_nutpie(model.model)
    compiled = _COMPILED[weighted]
    used = {v.name for v in compiled.shared_var_keys}
    data = {k: v for k, v in model.data_arrays(model.answers()).items() if k in used}
    res = model.fit(
        compiled=compiled.with_data(**data),
        draws=1000,
        tune=1000,
        chains=2,
        seed=seed,
        progress=False,
    )
    s = res.summary(0.9).set_index(["group", "quantity"]).loc[("hidden", "size")]
    diag = res.diagnostics()
    return {
        "estimate": float(s["estimate"]),
        "lower": float(s["lower"]),
        "upper": float(s["upper"]),
        "converged": bool(diag["passed"]),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--replications", type=int, default=40)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="benchmarks/out/weights")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    truth = SHARE_H * N
    d, r = population(a.seed)
    rows = []
    t0 = time.perf_counter()
    for rep in range(a.replications):
        ard = sample(a.seed * 1000 + rep, d, r)
        for how in ("unweighted", "weighted, no adjustment", "weighted, adjusted"):
            res = fit(replace(ard), how, seed=rep)
            rows.append({"replication": rep, "n": ard.n, "fit": how, "truth": truth, **res})
        print(json.dumps(rows[-3:]), flush=True)
        table = pd.DataFrame(rows)
        table.to_csv(out / "weights_study.csv", index=False)
    table["covered"] = (table["lower"] <= truth) & (truth <= table["upper"])
    table["rel_error"] = table["estimate"] / truth - 1
    summary = (
        table.groupby("fit", sort=False)
        .agg(
            bias=("rel_error", "mean"),
            rmse=("rel_error", lambda e: float(np.sqrt(np.mean(e**2)))),
            coverage_90=("covered", "mean"),
            mean_width=("upper", "mean"),
            converged=("converged", "mean"),
        )
        .reset_index()
    )
    summary["mean_width"] = (
        table.assign(w=table["upper"] - table["lower"]).groupby("fit", sort=False)["w"].mean()
    ).to_numpy() / truth
    summary["se_coverage"] = np.sqrt(0.9 * 0.1 / a.replications)
    print(summary.to_string(index=False))
    (out / "weights_study.json").write_text(
        json.dumps(
            {
                "replications": a.replications,
                "truth": truth,
                "wall_s": time.perf_counter() - t0,
                "summary": summary.to_dict(orient="records"),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
