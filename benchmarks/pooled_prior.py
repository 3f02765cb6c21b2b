"""The pooled model's prior on the area spread: HalfNormal(0.5) against a zero-avoiding Gamma(2, 3).

    OPENBLAS_NUM_THREADS=1 python benchmarks/pooled_prior.py \\
        --out benchmarks/results/pooled_prior_2026-12-02

Fits the pooled model at its shipped defaults (4 chains x 1000 draws, nutpie, ``tune`` auto)
except the prior of ``sigma_area`` (the spread across areas of each hidden group's log
prevalence), on the surveys of the Stan accuracy studies (``benchmarks/stan_seeds.py``: 150
areas of 5 to 100 respondents, area sd 1, log-normal seeds 11-15 and gamma seeds 21-24) and
on the held-out 150 x 30 surveys of issue 13 (seeds 1 and 2, area sd 0.3). For each fit it
records the convergence gate (``NSUMResult.diagnostics``) and, against the simulation's truth,
the mean absolute relative error (MARE) of the areas' hidden prevalences and the coverage of
their 90% intervals, overall and by respondents per area. Where the Stan study's run of the same
survey is in ``benchmarks/results/stan_seeds*/seedS/scores.csv``, its Stan MARE is added
(the surveys are regenerated from the same seeds, so the truth is the same; the check
``truth_matches`` says so per survey).

Writes ``OUT/pooled_prior.json`` (one record per fit, written as each is done).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pooled_vs_killworth import load, score, truth_table  # noqa: E402
from stan_pooled import simulate  # noqa: E402

from bayes_nsum.estimators.pooled import PooledModel  # noqa: E402
from bayes_nsum.priors import Prior  # noqa: E402
from bayes_nsum.simulate import simulate_pooled  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PRIORS = {
    "halfnormal": Prior("HalfNormal", {"sigma": 0.5}),
    "gamma": Prior("Gamma", {"alpha": 2.0, "beta": 3.0}),
}
SURVEYS = "lognormal:11,lognormal:12,lognormal:13,lognormal:14,lognormal:15,gamma:21,gamma:22,gamma:23,gamma:24,150x30:1,150x30:2"


def survey(design: str, seed: int):
    if design == "150x30":
        shapes = {"hidden_1": 0.3, "hidden_2": 0.5}
        return simulate_pooled(n_areas=150, respondents_per_area=30, nb_shape=shapes, seed=seed)
    return simulate(seed, 150, design)


def stan_scores(design: str, seed: int) -> pd.DataFrame | None:
    folder = {"lognormal": "stan_seeds", "gamma": "stan_seeds_gamma"}.get(design)
    path = ROOT / "benchmarks" / "results" / str(folder) / f"seed{seed}" / "scores.csv"
    if folder is None or not path.is_file():
        return None
    s = pd.read_csv(path)
    return s[s["method"] == "Stan"]


def summarise(scored: pd.DataFrame) -> dict:
    scored = scored[scored["truth"] > 0]
    by_n = scored.groupby("n_per_area").agg(
        mare=("abs_rel_err", "mean"), cover90=("covered", "mean")
    )
    out = {
        str(int(n)): {k: round(float(v), 4) for k, v in row.items()} for n, row in by_n.iterrows()
    }
    out["all"] = {
        "mare": round(float(scored["abs_rel_err"].mean()), 4),
        "cover90": round(float(scored["covered"].mean()), 4),
    }
    return out


def one_fit(design: str, seed: int, prior: str) -> dict:
    sim = survey(design, seed)
    with tempfile.TemporaryDirectory() as d:
        ard = load(sim, Path(d))
    truth = truth_table(sim)
    n_per = ard.area.value_counts()
    t0 = time.perf_counter()
    res = PooledModel(ard, priors={"sigma_area": PRIORS[prior]}).fit(seed=seed, progress=False)
    wall = time.perf_counter() - t0
    dg = res.diagnostics()
    s = res.summary()
    s = s[(s.area != "") & (s.quantity == "prevalence")][
        ["area", "group", "estimate", "lower", "upper"]
    ]
    rec = {
        "design": design,
        "seed": seed,
        "prior": prior,
        "sigma_area_prior": PRIORS[prior].to_dict(),
        "fit_s": round(wall, 1),
        "sample_s": round(res.timings["sample_s"], 1),
        "passed": bool(dg["passed"]),
        "max_r_hat": round(float(dg["max_r_hat"]), 4),
        "min_ess_bulk": round(float(dg["min_ess_bulk"])),
        "min_ess_tail": round(float(dg["min_ess_tail"])),
        "failed": [c["check"] for c in dg["checks"] if not c["passed"]],
        "worst": {c["check"]: c["worst"][:1] for c in dg["checks"] if c["worst"]},
        "sigma_area_mean": {
            str(h): round(float(res.tree["posterior"]["sigma_area"].sel(hidden=h).mean()), 4)
            for h in res.tree["posterior"]["sigma_area"].hidden.values
        },
        "accuracy": summarise(score(s, truth, n_per, "pooled")),
    }
    stan = stan_scores(design, seed)
    if stan is not None:  # its scores have no area column: compare the sorted true values
        a = truth.sort_values(["group", "truth"])["truth"].to_numpy()
        b = stan.sort_values(["group", "truth"])["truth"].to_numpy()
        rec["truth_matches"] = bool(len(a) == len(b) and (abs(a - b) <= 1e-12 * abs(a).max()).all())
        rec["stan_accuracy"] = summarise(stan)
    return rec


def table(rows: list[dict]) -> str:
    """Markdown: per survey, both priors side by side (gate, ESS, sampling time, MARE), and
    MARE by respondents per area averaged over the Stan comparison surveys."""
    by = {(r["design"], r["seed"], r["prior"]): r for r in rows}
    surveys = list(dict.fromkeys((r["design"], r["seed"]) for r in rows))
    out = [
        "| survey | prior | gate | max R-hat | min bulk ESS | min tail ESS | sampling (s) | "
        "MARE | cover90 | MARE Stan |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for design, seed in surveys:
        for prior in PRIORS:
            r = by.get((design, seed, prior))
            if r is None:
                continue
            stan = r.get("stan_accuracy", {}).get("all", {}).get("mare")
            out.append(
                f"| {design} {seed} | {prior} | {'passed' if r['passed'] else '**failed**'} | "
                f"{r['max_r_hat']:.4f} | {r['min_ess_bulk']:,} | {r['min_ess_tail']:,} | "
                f"{r['sample_s']:.0f} | {r['accuracy']['all']['mare']:.3f} | "
                f"{r['accuracy']['all']['cover90']:.2f} | {'-' if stan is None else f'{stan:.3f}'} |"
            )
    # MARE by respondents per area over the Stan surveys fitted with every prior (paired)
    paired = [
        sv
        for sv in surveys
        if all((*sv, p) in by for p in PRIORS) and "stan_accuracy" in by[(*sv, next(iter(PRIORS)))]
    ]
    if not paired:
        return "\n".join(out)
    first = by[(*paired[0], next(iter(PRIORS)))]
    ns = sorted(first["accuracy"], key=_order)
    out += [
        "",
        f"Over the {len(paired)} Stan comparison surveys fitted with every prior:",
        "",
        "| respondents per area | " + " | ".join(f"MARE {p}" for p in PRIORS) + " | MARE Stan |",
        "|---" * (len(PRIORS) + 2) + "|",
    ]
    for n in ns:
        cells = [
            sum(by[(*sv, p)]["accuracy"][n]["mare"] for sv in paired) / len(paired) for p in PRIORS
        ]
        stan = sum(by[(*sv, next(iter(PRIORS)))]["stan_accuracy"][n]["mare"] for sv in paired)
        cells.append(stan / len(paired))
        out.append(f"| {n} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
    return "\n".join(out)


def _order(n: str) -> float:
    return float("inf") if n == "all" else float(n)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument(
        "--surveys", default=SURVEYS, help="design:seed,... (designs lognormal, gamma, 150x30)"
    )
    p.add_argument("--priors", default=",".join(PRIORS))
    p.add_argument("--out", default="benchmarks/out/pooled_prior")
    p.add_argument("--table", action="store_true", help="print the tables of OUT's records")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "pooled_prior.json"
    rows = json.loads(path.read_text()) if path.is_file() else []
    if a.table:
        print(table(rows))
        return
    done = {(r["design"], r["seed"], r["prior"]) for r in rows}
    for item in a.surveys.split(","):
        design, seed = item.split(":")
        for prior in a.priors.split(","):
            if (design, int(seed), prior) in done:
                continue
            rows.append(one_fit(design, int(seed), prior))
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "worst"}), flush=True)
            path.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
