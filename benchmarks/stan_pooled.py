"""The pooled model against an independent Stan implementation of the study's model, same data.

The Scale of Harm team fitted a partially pooled negative-binomial NSUM in Stan (Nyarko-Agyei,
Moser, Seymour et al., "A Partially Pooled NSUM Model", arXiv 2407.13267; summarised in
``shared/design/methods.md``). This script writes that model in Stan from the paper's description
(:data:`STAN_CODE`: our reconstruction, not the authors' code), fits it with pystan on a survey
simulated from the published design, fits ``bayes_nsum``'s pooled model at its shipped defaults on
the same survey in the same run, adds the per-area Killworth estimate, and compares

* wall time and sampling time, the smallest bulk ESS over the areas' hidden prevalences and the
  largest R-hat;
* the mean absolute relative error (MARE) of the areas' hidden sizes against the truth and the
  coverage of the 90% intervals, overall and by respondents per area.

The study's model (respondent i in area j, group k)::

    y_ik ~ NegBin2(mean exp(delta_i - rho_jk), shape phi_k)
    delta_i ~ Normal(5.5, sigma_delta)
    rho_jk ~ Gamma(mean m_k, sd s_k)          # partial pooling of -log prevalence across areas

After sampling, each area's draws are scaled by its known groups (Zheng et al. 2006, per area):
``C_j = log sum_k N_jk/P_j - log sum_k exp(-rho_jk)`` over the known groups, hidden prevalence
``exp(C_j - rho_jH)``. Priors (ours; the paper gives the family, not every value):
``sigma_delta ~ HalfNormal(1)``, ``m_k ~ Normal+(5, 3)``, ``s_k ~ HalfNormal(2)``,
``phi_k ~ Gamma(2, 1)`` (mean 2, allows the sparse groups' 0.3).

Usage::

    python benchmarks/stan_pooled.py                       # 150 areas, published Stan settings
    python benchmarks/stan_pooled.py --areas 30 --stan-draws 100 --quick   # a smoke run

Needs ``pystan`` (``pip install pystan``; it compiles the model with the system C++ compiler on
first use, about a minute). Writes ``docs/benchmarks/stan_pooled.md`` and a JSON record under
``benchmarks/results/stan_pooled/`` (``--out`` and ``--results`` move them: the multi-seed study
of ``benchmarks/stan_seeds.py`` gives each seed its own folder).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pooled_vs_killworth import SIZES, killworth_rows, load, score  # noqa: E402

from bayes_nsum.estimators.pooled import PooledModel  # noqa: E402
from bayes_nsum.result import array_diagnostics  # noqa: E402
from bayes_nsum.simulate import simulate_pooled  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

STAN_CODE = """
data {
  int<lower=1> J;
  int<lower=1> K;
  int<lower=1> N;
  int<lower=1> M;                       // observed cells
  array[M] int<lower=1, upper=N> cell_i;
  array[M] int<lower=1, upper=J * K> cell_jk;   // column-major index of (area, group)
  array[M] int<lower=1, upper=K> cell_k;
  array[M] int<lower=0> y;
}
parameters {
  vector[N] delta;
  real<lower=0> sigma_delta;
  vector<lower=0>[K] m;
  vector<lower=0>[K] s;
  matrix<lower=0>[J, K] rho;
  vector<lower=0>[K] phi;
}
model {
  sigma_delta ~ normal(0, 1);
  m ~ normal(5, 3);
  s ~ normal(0, 2);
  phi ~ gamma(2, 1);
  delta ~ normal(5.5, sigma_delta);
  for (k in 1:K)
    col(rho, k) ~ gamma(square(m[k] / s[k]), m[k] / square(s[k]));
  y ~ neg_binomial_2_log(delta[cell_i] - to_vector(rho)[cell_jk], phi[cell_k]);
}
"""


def simulate(seed: int, n_areas: int, area_dist: str = "lognormal"):
    """The study-like design of the accuracy comparison: area spread sd 1, sparse hidden group;
    ``area_dist = "gamma"``: the area effects of the study's own model (gamma -log prevalences)."""
    n_per = np.resize(np.array(SIZES), n_areas)
    return simulate_pooled(
        n_areas=n_areas,
        respondents_per_area=n_per,
        sigma_area=1.0,
        nb_shape={"hidden_1": 0.3, "hidden_2": 0.5},
        seed=seed,
        area_distribution=area_dist,
    )


def stan_data(ard) -> tuple[dict, list[str], list[str]]:
    groups = list(ard.groups)
    areas = list(ard.area_table.index)
    y = ard.counts[groups].to_numpy(float)
    j = pd.Index(areas).get_indexer(ard.area.astype(str))
    i_idx, k_idx = np.nonzero(np.isfinite(y))
    data = {
        "J": len(areas),
        "K": len(groups),
        "N": len(y),
        "M": len(i_idx),
        "cell_i": (i_idx + 1).tolist(),
        "cell_jk": (k_idx * len(areas) + j[i_idx] + 1).tolist(),
        "cell_k": (k_idx + 1).tolist(),
        "y": y[i_idx, k_idx].astype(int).tolist(),
    }
    return data, groups, areas


def stan_fit(ard, draws: int, warmup: int, chains: int, seed: int):
    import stan

    data, groups, areas = stan_data(ard)
    t0 = time.perf_counter()
    post = stan.build(STAN_CODE, data=data, random_seed=seed)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit = post.sample(num_chains=chains, num_samples=draws, num_warmup=warmup)
    t_sample = time.perf_counter() - t0
    # pystan 3: shape (J, K, draws * chains), the chains interleaved (draw-major)
    rho = np.asarray(fit["rho"]).reshape(len(areas), len(groups), draws, chains)
    rho = rho.transpose(3, 2, 0, 1)  # (chain, draw, area, group)
    known = list(ard.known)
    kidx = [groups.index(k) for k in known]
    tab = ard.area_table.loc[areas]
    share = (tab[known].to_numpy(float) / tab["population"].to_numpy(float)[:, None]).sum(1)
    scale = np.log(share)[None, None, :] - np.log(np.exp(-rho[..., kidx]).sum(-1))
    rows = []
    pa_all = []
    for h in ard.hidden:
        prev_frame = np.exp(scale - rho[..., groups.index(h)])  # contacts per frame member
        size = prev_frame * tab["population"].to_numpy(float)[None, None, :]
        denom = ard.denominators.get(h) if ard.denominators else None
        base = tab[denom].to_numpy(float) if denom else tab["population"].to_numpy(float)
        prev = size / base[None, None, :]
        pa_all.append(prev)
        flat = prev.reshape(-1, prev.shape[-1])
        for a, col in zip(areas, flat.T, strict=True):
            rows.append(
                {
                    "area": a,
                    "group": h,
                    "estimate": float(np.median(col)),
                    "lower": float(np.quantile(col, 0.05)),
                    "upper": float(np.quantile(col, 0.95)),
                }
            )
    pa = np.concatenate(pa_all, axis=-1)
    dg = array_diagnostics(pa)
    info = {
        "build_s": t_build,
        "sample_s": t_sample,
        "wall_s": t_build + t_sample,
        "min_ess_prev_area": float(np.nanmin(dg["ess_bulk"])),
        "max_r_hat_prev_area": float(np.nanmax(dg["r_hat"])),
        "divergences": int(np.sum(np.asarray(fit["divergent__"]))),
        "settings": f"{chains} x ({warmup} warm-up + {draws})",
    }
    return pd.DataFrame(rows), info


def pooled_fit(ard, settings: dict):
    t0 = time.perf_counter()
    res = PooledModel(ard).fit(**settings)
    wall = time.perf_counter() - t0
    s = res.summary()
    s = s[(s.area != "") & (s.quantity == "prevalence")]
    pa = res.posterior["prevalence_area"].transpose("chain", "draw", "area", "hidden").values
    dg = array_diagnostics(pa.reshape(pa.shape[0], pa.shape[1], -1))
    diag = res.diagnostics()
    info = {
        "wall_s": wall,
        "sample_s": float(res.timings.get("sample_s", float("nan"))),
        "min_ess_prev_area": float(np.nanmin(dg["ess_bulk"])),
        "max_r_hat_prev_area": float(np.nanmax(dg["r_hat"])),
        "min_ess_all": diag["min_ess_bulk"],
        "max_r_hat_all": diag["max_r_hat"],
        "divergences": diag["divergences"],
        "settings": f"{res.settings['chains']} x ({res.settings['tune']} tuning + "
        f"{res.settings['draws']})",
    }
    return s[["area", "group", "estimate", "lower", "upper"]], info


def markdown(scores: pd.DataFrame, fits: dict, args, n_resp: int, loads=None) -> str:
    methods = list(dict.fromkeys(scores.method))
    agg = scores.groupby(["n_per_area", "method"], sort=False).agg(
        mare=("abs_rel_err", "mean"), cov=("covered", "mean")
    )
    head = ["respondents per area"]
    head += [f"MARE {m}" for m in methods] + [f"cover90 {m}" for m in methods]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for n in sorted(scores.n_per_area.unique()):
        cells = [f"{agg.loc[(n, m), 'mare']:.3f}" for m in methods]
        cells += [f"{agg.loc[(n, m), 'cov']:.2f}" for m in methods]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    tot = scores.groupby("method", sort=False).agg(
        mare=("abs_rel_err", "mean"), cov=("covered", "mean")
    )
    cells = [f"**{tot.loc[m, 'mare']:.3f}**" for m in methods]
    cells += [f"**{tot.loc[m, 'cov']:.2f}**" for m in methods]
    lines.append("| **all** | " + " | ".join(cells) + " |")
    fit_lines = [
        "| fit | settings | wall (s) | sampling (s) | min bulk ESS, area prevalences | "
        "max R-hat | divergences |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, f in fits.items():
        fit_lines.append(
            f"| {name} | {f['settings']} | {f['wall_s']:.0f} | {f['sample_s']:.0f} | "
            f"{f['min_ess_prev_area']:.0f} | {f['max_r_hat_prev_area']:.3f} | "
            f"{f['divergences']} |"
        )
    return "\n".join(
        [
            "# The pooled model against the study's model in Stan",
            "",
            "Generated by `python benchmarks/stan_pooled.py "
            + " ".join(sys.argv[1:])
            + f"` ({time.strftime('%Y-%m-%d')}, {platform.machine()}, "
            + (
                f"1-minute load average {loads[0]:.1f} at the start and {loads[1]:.1f} at the end "
                "on 2 cores, this run's own work included; above 2, other jobs shared the "
                "cores and the times are upper bounds)."
                if loads
                else "load of the machine not recorded: read the times as upper bounds)."
            ),
            "",
            f"Design: `simulate_pooled` with {args.areas} areas whose numbers of respondents cycle "
            f"through 5 to 100 ({n_resp:,} respondents), 4 known and 2 hidden groups, area sd 1 "
            f"of every log-prevalence (the study-like spread; {args.area_dist} area effects), "
            "NB2 shape 0.3 (hidden_1: most "
            f"answers zero) and 0.5 (hidden_2); seed {args.seed}. The Stan model is our "
            "reconstruction of the study's model from the paper (see the script's docstring); "
            "the pooled model runs at the package's shipped defaults.",
            "",
            *fit_lines,
            "",
            "Accuracy of the areas' hidden prevalences (mean absolute relative error of the "
            "posterior median or point estimate; coverage of the 90% intervals):",
            "",
            *lines,
            "",
        ]
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--areas", type=int, default=150)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--stan-draws", type=int, default=150, help="published: 150")
    ap.add_argument("--stan-warmup", type=int, default=150, help="published: 150")
    ap.add_argument("--stan-chains", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="2 x 300 draws for the pooled model")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "stan_pooled.md"))
    ap.add_argument(
        "--area-dist",
        default="lognormal",
        choices=["lognormal", "gamma"],
        help="area effects of the simulated survey: the package's (lognormal) or the study's",
    )
    ap.add_argument(
        "--results",
        default=str(ROOT / "benchmarks" / "results" / "stan_pooled"),
        help="folder for record.json and scores.csv (one per seed in a multi-seed study)",
    )
    args = ap.parse_args(argv)
    sim = simulate(args.seed, args.areas, args.area_dist)
    with tempfile.TemporaryDirectory() as d:
        ard = load(sim, Path(d))
    truth = sim.truth[(sim.truth.area != "") & (sim.truth.quantity == "prevalence")]
    truth = truth[truth.group.isin(sim.hidden)].rename(columns={"value": "truth"})
    truth = truth[["area", "group", "truth"]]
    n_per = ard.area.astype(str).value_counts()
    load_start = os.getloadavg()[0]
    # the shipped defaults (tune "auto": 300 steps for the pooled model with nutpie)
    settings = {"chains": 4, "draws": 1000, "tune": "auto", "cores": 2, "progress": False}
    if args.quick:
        settings.update(chains=2, draws=300, tune=300)
    settings["seed"] = args.seed
    fits, scores = {}, []
    est, fits["bayes_nsum pooled (nutpie)"] = pooled_fit(ard, settings)
    scores.append(score(est, truth, n_per, "pooled"))
    est, fits["study model (pystan)"] = stan_fit(
        ard, args.stan_draws, args.stan_warmup, args.stan_chains, args.seed
    )
    scores.append(score(est, truth, n_per, "Stan"))
    scores.append(score(killworth_rows(ard, 200, args.seed), truth, n_per, "Killworth"))
    scores = pd.concat(scores, ignore_index=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    loads = [load_start, os.getloadavg()[0]]
    record = {"fits": fits, "peak_rss_gib": peak, "argv": sys.argv[1:], "loadavg": loads}
    out_dir = Path(args.results)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "record.json").write_text(json.dumps(record, indent=2))
    scores.drop(columns=["area"]).to_csv(out_dir / "scores.csv", index=False)
    text = markdown(scores, fits, args, len(ard.counts), loads)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
