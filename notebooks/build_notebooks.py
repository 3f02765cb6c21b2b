"""Generate the notebooks in ``notebooks/`` from plain lists of cells (the reviewable source).

Each notebook is a list of ``("md", text)`` and ``("code", source)`` cells below; this script
writes them as ``.ipynb`` files without outputs. Edit this file, not the notebooks, then run::

    .venv/bin/python notebooks/build_notebooks.py          # rewrite notebooks/*.ipynb
    .venv/bin/python notebooks/build_notebooks.py --check  # exit 1 if a notebook is stale

The notebooks are executed by the slow test tier (``tests/test_docs.py``) with
``BAYES_NSUM_NB_FAST=1``, which shrinks the sampler settings (draws, chains, replications) and
nothing else. Rules the cells follow: every number in the text is computed and printed by the
notebook (no typed results), every figure has labelled axes with units, results go to a
temporary folder (never into the repository).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

# ---------------------------------------------------------------------------------------------
# shared cells
# ---------------------------------------------------------------------------------------------


def setup_cell(tag: str, seed: int = 20240521) -> tuple[str, str]:
    """Imports, fast mode, sampler settings, repository root and a temporary output folder."""
    return (
        "code",
        f"""\
import os
import tempfile
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

warnings.filterwarnings("ignore", category=FutureWarning)
pd.set_option("display.width", 120)
pd.set_option("display.float_format", "{{:,.4g}}".format)

# BAYES_NSUM_NB_FAST=1 (set by the tests) shrinks the sampler settings, never the steps.
FAST = os.environ.get("BAYES_NSUM_NB_FAST") == "1"
SAMPLER = dict(
    draws=150 if FAST else 1000,
    tune=150 if FAST else 1000,
    chains=2 if FAST else 4,
    cores=2,
    seed={seed},
    progress=False,
)
ROOT = next(
    p for p in [Path.cwd(), *Path.cwd().parents] if (p / "models" / "rwanda_example.toml").is_file()
)
OUT = Path(tempfile.mkdtemp(prefix="bayes_nsum_{tag}_"))
print(f"fast mode: {{FAST}}; sampler: {{SAMPLER}}")
print(f"repository: {{ROOT}}; results written to {{OUT}}")""",
    )


def fmt_cell() -> tuple[str, str]:
    return (
        "code",
        '''\
def people(x: float) -> str:
    """A size rounded to 3 significant figures, with thousands separators."""
    return f"{float(f'{x:.3g}'):,.0f}"


def interval(lo: float, hi: float) -> str:
    return f"{people(lo)} to {people(hi)}"''',
    )


# ---------------------------------------------------------------------------------------------
# 1. quickstart
# ---------------------------------------------------------------------------------------------

QUICKSTART = [
    (
        "md",
        """\
# Quickstart: classical and Bayesian estimates of the bundled survey

This notebook runs the whole analysis of the survey that ships with `bayes_nsum`: the Rwanda
2011 network scale-up design (data from the R package `networkreporting`, MIT licence). Every
respondent was asked how many people they know in each of a list of groups of known size
(widowers, teachers, nurses or doctors, people with given first names, ...) and in four hidden
groups (female sex workers, men who have sex with men, people who inject drugs, clients of sex
workers).

Steps: load and pre-process the survey; check the method on the known groups (internal
consistency); the classical Killworth estimate with bootstrap intervals; the Bayesian random
degree model; the two side by side.""",
    ),
    setup_cell("nb01"),
    fmt_cell(),
    (
        "md",
        "## The data and its pre-processing\n\nThe example analysis is a spec (`bayes_nsum.demo.demo_spec`, the same as `models/rwanda_example.toml`).",
    ),
    (
        "code",
        """\
from bayes_nsum.analysis import build_model, classical_estimates, prepare
from bayes_nsum.demo import demo_spec

spec = demo_spec(OUT)
prep = prepare(spec)
ard = prep.ard
print(
    f"{prep.raw.n:,} respondents in the survey file, {ard.n:,} after pre-processing; "
    f"{len(ard.known)} known groups and {len(ard.hidden)} hidden groups "
    f"({', '.join(ard.hidden)})."
)
print(f"Frame population N = {ard.total_population:,.0f}.")
print("Pre-processing settings:", spec.section("preprocess"))""",
    ),
    (
        "code",
        """\
log = prep.log.summary()
changes = prep.log.to_frame()
by_rule = changes.groupby("rule").size()
for rule, n in by_rule.items():
    print(f"rule {rule!r}: {n:,} changes")
top = log[log.rule == "topcode"].sort_values("n_changed", ascending=False).head(5)
top""",
    ),
    (
        "md",
        """\
Every change is listed respondent by respondent (`prep.log.to_frame()`), so nothing is dropped
or capped silently. The listing is respondent-level data: the command line writes it only when
the spec asks (`[output] respondent_level = true`), to the results folder's `restricted/`
subfolder; `preprocess_log.csv` holds the counts above.

## Does the method work on this survey? Internal consistency

Each known group is estimated as if it were hidden, from the others, and compared with its true
size. Groups far from the diagonal are answered with a bias (recall error, barrier effects).""",
    ),
    (
        "code",
        """\
from bayes_nsum import classical

ic = classical.internal_consistency(
    ard.counts[list(ard.known)], ard.known_sizes, ard.total_population, weights=ard.weights
)
ic_summary = classical.summarize_internal_consistency(ic)
worst = ic.reindex(ic.relative_error.abs().sort_values(ascending=False).index).head(3)
print(
    f"Median relative error over the {ic_summary['n_groups']} known groups: "
    f"{ic_summary['median_relative_error']:+.0%}; worst recovered: "
    + ", ".join(f"{r.group} ({r.relative_error:+.0%})" for r in worst.itertuples())
)

fig, ax = plt.subplots(figsize=(5.5, 5))
ax.loglog(ic.true_size, ic.estimate, "o", color="#4477aa")
lims = [min(ic.true_size.min(), ic.estimate.min()) / 1.5, max(ic.true_size.max(), ic.estimate.max()) * 1.5]
ax.plot(lims, lims, "k--", lw=1, label="estimate = true size")
for r in worst.itertuples():
    ax.annotate(r.group, (r.true_size, r.estimate), fontsize=8, xytext=(4, 4), textcoords="offset points")
ax.set_xlabel("true size of the known group (people)")
ax.set_ylabel("Killworth estimate with the group held out (people)")
ax.set_title("Internal consistency of the known groups")
ax.legend()
plt.show()""",
    ),
    (
        "md",
        "## Classical (Killworth) estimates\n\nBasic scale-up estimates with percentile intervals from the rescaled bootstrap, which resamples clusters within regions and rescales the survey weights.",
    ),
    (
        "code",
        """\
cl = classical_estimates(prep)
cl_size = cl[cl.quantity == "size"].set_index("group")
cl_size""",
    ),
    (
        "md",
        """\
## The Bayesian random degree model

The `degree` model (Maltiel et al. 2015) treats every respondent's network size as random
(log-normal) and every answer as a Poisson count; the network sizes are integrated out exactly,
so the fit takes seconds. We change one key of the spec and fit.""",
    ),
    (
        "code",
        """\
prep_bayes = prepare(spec.with_value("model.name", "degree"))
model = build_model(prep_bayes)
result = model.fit(**SAMPLER)
diag = result.diagnostics(prep_bayes.spec.diagnostics)
print(
    f"Sampling took {result.timings['sample_s']:.1f} s after {result.timings.get('compile_s', 0):.1f} s "
    f"of compilation. Convergence checks passed: {diag['passed']} (largest R-hat "
    f"{diag['max_r_hat']:.3f}, smallest bulk ESS {diag['min_ess_bulk']:.0f})."
)
if not diag["passed"]:
    print("Advice:", *diag["advice"], sep="\\n  ")""",
    ),
    (
        "code",
        """\
post = result.posterior
mean_degree = np.exp(post["mu"] + post["sigma"] ** 2 / 2)
kp_degree = classical.known_population_degree(
    ard.counts[list(ard.known)], ard.known_sizes, ard.total_population
)
print(
    f"Mean network size: {float(mean_degree.median()):.0f} people (posterior median of "
    f"exp(mu + sigma^2/2)); the classical known-population degree averages "
    f"{kp_degree.mean():.0f} (unweighted)."
)
bay = result.summary(prob=spec.interval_prob)
bay_size = bay[(bay.quantity == "size") & (bay.area == "")].set_index("group")
bay_size[["estimate", "lower", "upper", "r_hat", "ess_bulk"]]""",
    ),
    ("md", "## Side by side"),
    (
        "code",
        """\
side = pd.DataFrame(
    {
        "killworth": cl_size.estimate,
        "killworth_lower": cl_size.lower,
        "killworth_upper": cl_size.upper,
        "bayes_degree": bay_size.estimate,
        "bayes_lower": bay_size.lower,
        "bayes_upper": bay_size.upper,
    }
).loc[list(ard.hidden)]
side["ratio"] = side.bayes_degree / side.killworth
prob = spec.interval_prob
for g, r in side.iterrows():
    print(
        f"{g}: Killworth {people(r.killworth)} ({prob:.0%} interval {interval(r.killworth_lower, r.killworth_upper)}), "
        f"degree model {people(r.bayes_degree)} ({interval(r.bayes_lower, r.bayes_upper)}): "
        f"ratio {r.ratio:.2f}"
    )

fig, ax = plt.subplots(figsize=(7, 3.5))
y = np.arange(len(side))
ax.errorbar(side.killworth, y - 0.12, xerr=[side.killworth - side.killworth_lower, side.killworth_upper - side.killworth],
            fmt="o", label="Killworth (bootstrap interval)", color="#4477aa")
ax.errorbar(side.bayes_degree, y + 0.12, xerr=[side.bayes_degree - side.bayes_lower, side.bayes_upper - side.bayes_degree],
            fmt="s", label="degree model (credible interval)", color="#ee6677")
ax.set_xscale("log")
ax.set_yticks(y, side.index)
ax.set_xlabel(f"estimated size (people, log scale; {prob:.0%} intervals)")
ax.set_ylabel("hidden group")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()""",
    ),
    (
        "md",
        """\
Both estimators rest on the same scale-up idea, so they should broadly agree; the Bayesian
model treats respondents as exchangeable (it ignores the weights and the cluster design), while
the bootstrap respects the design. Neither accounts for transmission error: these are sizes of
the *visible* part of each group. The transmission and combined models, and the sensitivity
notebook, take that up.""",
    ),
]

# ---------------------------------------------------------------------------------------------
# 2. Scale of Harm
# ---------------------------------------------------------------------------------------------

SCALE_OF_HARM = [
    (
        "md",
        """\
# A Scale-of-Harm-style analysis: victims and offenders by area

The Scale of Harm study (IJM and the University of Nottingham Rights Lab) estimated how many
children in the Philippines were abused to produce sexual exploitation material, and how many
adults trafficked them, from a national household survey spread over many municipalities. Most
municipalities had few respondents; a partially pooled model (Nyarko-Agyei et al.) let each area
borrow strength from the others.

This notebook runs that kind of analysis on the **synthetic** survey in
`models/scale_of_harm_example/` (simulated with `bayes_nsum.simulate.simulate_scale_of_harm`, so
the truth is known): separate Killworth estimates per area, the pooled model, and both compared
with the truth, area by area and nationally.""",
    ),
    setup_cell("nb02"),
    fmt_cell(),
    (
        "code",
        """\
from bayes_nsum.analysis import build_model, classical_estimates, prepare
from bayes_nsum.spec import Spec

EXAMPLE = ROOT / "models" / "scale_of_harm_example"
spec = Spec.from_file(EXAMPLE / "spec.toml")
prep = prepare(spec)
ard = prep.ard
per_area = ard.area.value_counts()
print(
    f"{ard.n:,} respondents in {ard.area.nunique()} areas with respondents "
    f"({len(ard.areas)} areas in the area table); respondents per area from {per_area.min()} "
    f"to {per_area.max()} (median {per_area.median():.0f})."
)
print(f"known groups: {', '.join(ard.known)}")
print(f"hidden groups: {', '.join(ard.hidden)}; denominators: {ard.denominators}")
print("model section of the spec:", spec.section("model"))
print("pre-processing:", spec.section("preprocess"))""",
    ),
    (
        "code",
        """\
truth = pd.read_csv(EXAMPLE / "truth.csv", keep_default_na=False)
truth_prev = truth[(truth.quantity == "prevalence") & truth.group.isin(ard.hidden)]
truth_area = truth_prev[truth_prev.area != ""].pivot(index="area", columns="group", values="value")
truth_nat = truth[(truth.area == "") & truth.group.isin(ard.hidden)].pivot(
    index="group", columns="quantity", values="value"
)
for g, r in truth_nat.iterrows():
    print(f"true national {g}: {people(r['size'])} people, 1 in {1 / r['prevalence']:,.0f}")""",
    ),
    (
        "md",
        "## Separate Killworth estimates per area\n\nThe classical estimator run area by area, with each area's own known-group sizes and population.",
    ),
    (
        "code",
        """\
cl = classical_estimates(prep)
cl_prev = cl[(cl.quantity == "prevalence") & (cl.area != "")].pivot(
    index="area", columns="group", values="estimate"
)
n_missing = int(cl_prev.isna().sum().sum())
print(f"{len(cl_prev)} areas estimated; {n_missing} area-group estimates undefined.")""",
    ),
    (
        "md",
        """\
## The partially pooled model

Each hidden group's log-prevalence varies across areas around a common mean; areas with few
respondents are pulled towards it. The known groups' per-area sizes anchor the respondents'
network sizes in the likelihood.""",
    ),
    (
        "code",
        """\
pooled_spec = spec if spec.model_name == "pooled" else spec.with_value("model.name", "pooled")
prep_pooled = prepare(pooled_spec)
model = build_model(prep_pooled)
result = model.fit(**SAMPLER)
diag = result.diagnostics(prep_pooled.spec.diagnostics)
print(
    f"Sampling took {result.timings['sample_s']:.0f} s. Convergence checks passed: "
    f"{diag['passed']} (largest R-hat {diag['max_r_hat']:.3f}, smallest bulk ESS "
    f"{diag['min_ess_bulk']:.0f}, {diag['divergences']} divergences)."
)
summ = result.summary(prob=spec.interval_prob)""",
    ),
    ("md", "## Area by area against the truth"),
    (
        "code",
        """\
pooled_prev = summ[(summ.quantity == "prevalence") & (summ.area != "")].pivot(
    index="area", columns="group", values="estimate"
)
areas = truth_area.index.intersection(cl_prev.index)
rows = []
for g in ard.hidden:
    t = truth_area.loc[areas, g]
    for name, est in (("killworth", cl_prev.loc[areas, g]), ("pooled", pooled_prev.loc[areas, g])):
        rel = ((est - t).abs() / t).dropna()
        rows.append({"group": g, "estimator": name, "mean_abs_rel_error": rel.mean(), "areas": len(rel)})
errors = pd.DataFrame(rows).pivot(index="group", columns="estimator", values="mean_abs_rel_error")
for g, r in errors.iterrows():
    print(
        f"{g}: mean absolute relative error of the area prevalences {r.killworth:.0%} (Killworth) "
        f"vs {r.pooled:.0%} (pooled)"
    )
errors""",
    ),
    (
        "code",
        """\
from matplotlib.ticker import NullFormatter

fig, axes = plt.subplots(1, len(ard.hidden), figsize=(5 * len(ard.hidden), 4.5), squeeze=False)
for ax, g in zip(axes[0], ard.hidden, strict=True):
    t = truth_area.loc[areas, g]
    k = cl_prev.loc[areas, g]
    shown = k > 0  # an area where nobody knows a member gets a Killworth estimate of 0
    ax.scatter(t[shown], k[shown], s=14, label="Killworth per area", color="#4477aa", alpha=0.6)
    ax.scatter(t, pooled_prev.loc[areas, g], s=14, label="pooled model (posterior median)", color="#ee6677", alpha=0.8)
    lims = [t.min() / 3, t.max() * 3]
    ax.plot(lims, lims, "k--", lw=1, label="estimate = truth")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"true prevalence of {g} in the area (share of its denominator)")
    ax.set_ylabel("estimated prevalence (share of its denominator)")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_minor_formatter(NullFormatter())
    n_zero = int((~shown).sum())
    ax.set_title(g + (f" ({n_zero} areas with a Killworth estimate of 0 not shown)" if n_zero else ""), fontsize=9)
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()""",
    ),
    ("md", "## National headline figures"),
    (
        "code",
        """\
nat = summ[(summ.area == "") & summ.quantity.isin(["size", "one_in_x"])]
nat = nat.pivot(index="group", columns="quantity", values=["estimate", "lower", "upper"])
prob = spec.interval_prob
for g in ard.hidden:
    size = nat.loc[g, ("estimate", "size")]
    lo, hi = nat.loc[g, ("lower", "size")], nat.loc[g, ("upper", "size")]
    one_in = nat.loc[g, ("estimate", "one_in_x")]
    covered = lo <= truth_nat.loc[g, "size"] <= hi
    print(
        f"{g}: {people(size)} people ({prob:.0%} interval {interval(lo, hi)}), about 1 in "
        f"{one_in:,.0f} of its denominator population; true size {people(truth_nat.loc[g, 'size'])} "
        f"{'inside' if covered else 'outside'} the interval."
    )""",
    ),
    (
        "md",
        """\
The pooled model's sizes are sizes of the *visible* population: like the study, a real analysis
must state and vary how visible victims and offenders are to their contacts (see the sensitivity
notebook). With the fast settings used by the tests the sampler runs are short; run the notebook
without `BAYES_NSUM_NB_FAST` for numbers worth reading.""",
    ),
]

# ---------------------------------------------------------------------------------------------
# 3. comparing priors
# ---------------------------------------------------------------------------------------------

COMPARING_PRIORS = [
    (
        "md",
        """\
# Comparing priors for a methodology paper

A methods paper has to show which conclusions depend on the priors. Here the same analysis of the
bundled survey is fitted under each prior set in `models/priors/` with
`bayes_nsum.sweep.compare_priors` (the function behind `bayes-nsum compare-priors`), which also
runs two prior checks for every set:

* a **prior predictive check**: what each set implies about a survey *before* seeing the data,
  set beside the statistics of the real survey;
* **power-scaling sensitivity** (Kallioinen et al. 2024): how much each posterior quantity moves
  when the prior, or the likelihood, is made slightly stronger or weaker.

Two kinds of parameters should behave differently. Those the answers **inform** (network-size
distribution, visible prevalences) should barely move between reasonable sets; those the answers
**cannot inform** (the transmission rate) keep their prior, and the estimated sizes inherit it.
The comparison uses the fast `transmission` model, whose likelihood integrates the network sizes
out.""",
    ),
    setup_cell("nb03"),
    fmt_cell(),
    (
        "code",
        """\
from bayes_nsum.priors import available_prior_sets, load_prior_set
from bayes_nsum.spec import Spec
from bayes_nsum.sweep import SyncExecutor, compare_priors

spec = Spec.from_file(ROOT / "models" / "rwanda_example.toml").with_value("model.name", "transmission")
prior_dir = ROOT / "models" / "priors"
sets = available_prior_sets([prior_dir])
print(f"prior sets found: {', '.join(sets)}")
for name in sets:
    body = load_prior_set(name, [prior_dir])
    print(f"  {name}: priors for {', '.join(sorted(body))}")""",
    ),
    (
        "code",
        """\
cmp = compare_priors(
    spec,
    sets,
    out=OUT / "compare_priors",
    executor=SyncExecutor(),  # fits one after the other in this process (no Dask cluster)
    sampler={k: SAMPLER[k] for k in ("draws", "tune", "chains", "seed", "cores", "progress")},
    prior_predictive_draws=200 if FAST else 1000,
)
# compare_priors switches matplotlib to the file-only Agg backend: show figures inline again
%matplotlib inline
for note in cmp.notes:
    print("note:", note)
runs = cmp.table.drop_duplicates("prior_set").set_index("prior_set")
for name, r in runs.iterrows():
    print(f"{name}: {r.status}; convergence checks passed: {r.converged} (largest R-hat {r.max_r_hat:.3f})")""",
    ),
    (
        "md",
        """\
## Before the data: prior predictive checks

For each set, the distribution of simple statistics of simulated surveys (median network size,
mean answer and share of zero answers per group) and where the real survey falls in it
(`observed_percentile`): a percentile near either end means the set gives almost no weight to
surveys like this one.""",
    ),
    (
        "code",
        """\
pp = cmp.prior_predictive
deg = pp[pp.quantity == "median_degree"].set_index("prior_set")
for name, r in deg.iterrows():
    print(
        f"{name}: prior predictive median network size between {r.q05:,.0f} and {r.q95:,.0f} "
        f"(5th-95th percentile); the survey's {r.observed:,.0f} sits at percentile {r.observed_percentile:.0f}"
    )
extreme = pp[(pp.observed_percentile < 1) | (pp.observed_percentile > 99)]
print(f"{len(extreme)} statistic(s) of the survey outside the 1st-99th percentile of a prior set")
extreme[["prior_set", "quantity", "group", "q05", "q95", "observed", "observed_percentile"]]""",
    ),
    ("md", "## After the data: what moved and what did not"),
    (
        "code",
        """\
from bayes_nsum.result import load_result

posteriors = {
    name: load_result(cmp.out / "scenarios" / r.scenario).posterior
    for name, r in runs.iterrows()
    if r.status == "complete"
}
rows = []
for name, post in posteriors.items():
    for g in post["size"].hidden.values:
        rows.append({
            "prior_set": name,
            "group": g,
            "mu": float(post["mu"].median()),
            "visible_prevalence": float(np.exp(post["log_visible"].sel(hidden=g)).median()),
            "tau": float(post["tau"].sel(hidden=g).median()),
            "size": float(post["size"].sel(hidden=g).median()),
        })
table = pd.DataFrame(rows)
mu = table.drop_duplicates("prior_set").mu
print(f"posterior median of mu (mean log network size): from {mu.min():.3f} to {mu.max():.3f} across sets")
spread = table.groupby("group").agg(
    visible_min=("visible_prevalence", "min"), visible_max=("visible_prevalence", "max"),
    size_min=("size", "min"), size_max=("size", "max"),
)
for g, r in spread.iterrows():
    print(
        f"{g}: across sets the posterior median visible prevalence varies by a factor "
        f"{r.visible_max / r.visible_min:.2f}, the size by a factor {r.size_max / r.size_min:.2f}"
    )
sizes = cmp.table[(cmp.table.quantity == "size") & (cmp.table.area.fillna("") == "")]
sizes.pivot(index="group", columns="prior_set", values="estimate")""",
    ),
    (
        "code",
        """\
group = str(table.group.iloc[0])
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for name, post in posteriors.items():
    tau_post = post["tau"].sel(hidden=group).values.ravel()
    size_post = post["size"].sel(hidden=group).values.ravel()
    axes[0].hist(tau_post, bins=30, density=True, histtype="step", lw=1.5, label=name)
    axes[1].hist(np.log10(size_post), bins=30, density=True, histtype="step", lw=1.5, label=name)
axes[0].set_xlabel(f"transmission rate tau of {group} (share of contacts aware, 0-1)")
axes[0].set_ylabel("posterior density (per unit of tau)")
axes[1].set_xlabel(f"log10 of the size of {group} (log10 people)")
axes[1].set_ylabel("posterior density (per log10 unit)")
axes[0].legend(fontsize=8)
plt.tight_layout()
plt.show()""",
    ),
    (
        "md",
        """\
## Which quantities are driven by the prior? Power-scaling sensitivity

A quantity is flagged when its posterior reacts to scaling the prior but not to scaling the
likelihood (*strong prior / weak likelihood*), or to both (*prior-data conflict*).""",
    ),
    (
        "code",
        """\
sens = cmp.sensitivity
if len(sens):
    flagged = sens[sens.diagnosis.isin(["prior-data conflict", "strong prior / weak likelihood"])]
    for (name, diagnosis), grp in flagged.groupby(["prior_set", "diagnosis"]):
        print(f"{name}: {diagnosis}: {', '.join(sorted(set(grp.variable)))}")
    print(f"{len(flagged)} of {len(sens)} quantity-set pairs flagged")
sens.head(12)""",
    ),
    (
        "md",
        """\
The posterior of the transmission rate is its prior under every set: the survey contains no
information about it. A methods paper should therefore report the visible prevalence (which the
data do determine) separately from the assumption about visibility, and show the size as a
function of that assumption (see the sensitivity notebook).""",
    ),
]

# ---------------------------------------------------------------------------------------------
# 4. sensitivity
# ---------------------------------------------------------------------------------------------

SENSITIVITY = [
    (
        "md",
        """\
# Sensitivity checks for an advisory council

Before a number is published, an advisory council asks: *what if respondents see fewer of the
hidden group than assumed? what if one of the known groups is answered badly? what if the
extreme answers are capped differently?* Each question is one changed key of the spec
(`Spec.with_value`), re-run through the same analysis functions. The bundled survey serves as
the example.""",
    ),
    setup_cell("nb04"),
    fmt_cell(),
    (
        "code",
        """\
from bayes_nsum.analysis import build_model, classical_estimates, prepare
from bayes_nsum.spec import Spec

base = Spec.from_file(ROOT / "models" / "rwanda_example.toml")
# fewer bootstrap replicates in fast mode (the estimates themselves do not change)
base = base.with_value("model.n_boot", 40 if FAST else 200)
prep0 = prepare(base)
hidden = list(prep0.ard.hidden)
known = list(prep0.ard.known)
ref = classical_estimates(prep0).query("quantity == 'size'").set_index("group").estimate
print("reference Killworth sizes:", {g: people(v) for g, v in ref.items()})""",
    ),
    (
        "md",
        """\
## Transmission rate: how visible is the hidden group?

The `transmission` model divides the visible size by a transmission rate tau whose prior we
choose; the data cannot inform it. Three what-ifs for every hidden group: mostly hidden, the
placeholder default, mostly visible.""",
    ),
    (
        "code",
        """\
TAU_MEANS = [0.4, 0.6, 0.8]
tspec = base.with_value("model.name", "transmission")
tau_specs, tau_summaries, tau_rows = {}, {}, []
for m in TAU_MEANS:
    s = tspec.with_value("priors.tau", {"dist": "Beta", "mean": m, "concentration": 20})
    p = prepare(s)
    result = build_model(p).fit(**SAMPLER)
    summ = result.summary(prob=s.interval_prob)
    tau_specs[m], tau_summaries[m] = s, summ
    diag = result.diagnostics(s.diagnostics)
    for r in summ[(summ.quantity == "size") & (summ.area == "")].itertuples():
        tau_rows.append({"tau_mean": m, "group": r.group, "estimate": r.estimate,
                         "lower": r.lower, "upper": r.upper, "converged": diag["passed"]})
tau_table = pd.DataFrame(tau_rows)
for g in hidden:
    t = tau_table[tau_table.group == g].set_index("tau_mean")
    print(
        f"{g}: {people(t.estimate.iloc[0])} if tau is about {t.index[0]:.1f}, "
        f"{people(t.estimate.iloc[-1])} if about {t.index[-1]:.1f} "
        f"(a factor {t.estimate.iloc[0] / t.estimate.iloc[-1]:.2f})"
    )""",
    ),
    (
        "code",
        """\
fig, ax = plt.subplots(figsize=(6.5, 4))
for g in hidden:
    t = tau_table[tau_table.group == g]
    ax.errorbar(t.tau_mean, t.estimate, yerr=[t.estimate - t.lower, t.upper - t.estimate],
                marker="o", capsize=3, label=g)
ax.set_yscale("log")
ax.set_xlabel("prior mean of the transmission rate tau (share of contacts aware, 0-1)")
ax.set_ylabel(f"estimated size (people, log scale; {base.interval_prob:.0%} interval)")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()""",
    ),
    (
        "md",
        """\
## Drop one known group

Every known group in turn is left out of the set used to learn the network sizes. A group whose
removal moves the hidden estimates a lot deserves a closer look (recall error, a barrier).""",
    ),
    (
        "code",
        """\
drop_rows = []
for k in known:
    s = base.with_value("groups.known", [g for g in known if g != k])
    est = classical_estimates(prepare(s)).query("quantity == 'size'").set_index("group").estimate
    for g in hidden:
        drop_rows.append({"dropped": k, "group": g, "change": est[g] / ref[g] - 1})
drop = pd.DataFrame(drop_rows).pivot(index="dropped", columns="group", values="change")
most = drop.abs().mean(axis=1).sort_values(ascending=False)
print(
    f"Largest influence: dropping {most.index[0]!r} changes the hidden estimates by "
    f"{most.iloc[0]:.1%} on average; the median over known groups is {most.median():.1%}."
)
between = float((drop.max(axis=1) - drop.min(axis=1)).max())
print(
    f"The change differs between hidden groups by at most {100 * between:.2g} percentage points: "
    "dropping a known group rescales every respondent's estimated network size, and with it every "
    "hidden estimate alike."
)

fig, ax = plt.subplots(figsize=(7, 6))
order = most.index[::-1]
ax.barh(np.arange(len(order)), 100 * drop.loc[order].mean(axis=1), color="#4477aa")
ax.axvline(0, color="k", lw=0.8)
ax.set_yticks(np.arange(len(order)), order, fontsize=7)
ax.set_xlabel("change of the Killworth estimates when the group is dropped (%, mean over hidden groups)")
ax.set_ylabel("known group left out")
plt.tight_layout()
plt.show()""",
    ),
    (
        "code",
        """\
# The Bayesian transmission model (middle tau what-if above) without the most influential group
m = TAU_MEANS[len(TAU_MEANS) // 2]
s = tau_specs[m].with_value("groups.known", [g for g in known if g != most.index[0]])
summ = build_model(prepare(s)).fit(**SAMPLER).summary(prob=s.interval_prob)
with_all = tau_summaries[m].query("quantity == 'size' and area == ''").set_index("group").estimate
without = summ.query("quantity == 'size' and area == ''").set_index("group").estimate
for g in hidden:
    print(
        f"{g}: transmission model (tau about {m:.1f}) {people(with_all[g])} with all known groups, "
        f"{people(without[g])} without {most.index[0]} ({without[g] / with_all[g] - 1:+.1%})"
    )""",
    ),
    (
        "md",
        """\
## Another top-code

Answers about known groups are capped before estimation (the example caps them at the value in
its spec). Lower caps shrink the estimated network sizes and so raise the hidden estimates.""",
    ),
    (
        "code",
        """\
CAPS = [10, 20, 30, 50, 100]
cap_rows = []
for cap in CAPS:
    p = prepare(base.with_value("preprocess.topcode", {"known": cap}))
    n_capped = int((p.log.to_frame().rule == "topcode").sum())
    est = classical_estimates(p).query("quantity == 'size'").set_index("group")
    for g in hidden:
        cap_rows.append({"cap": cap, "group": g, "estimate": est.estimate[g], "lower": est.lower[g],
                         "upper": est.upper[g], "answers_capped": n_capped})
caps = pd.DataFrame(cap_rows)
for g in hidden:
    c = caps[caps.group == g].set_index("cap").estimate
    print(f"{g}: {people(c.iloc[0])} with a cap of {c.index[0]}, {people(c.iloc[-1])} with a cap of {c.index[-1]}")
print("answers capped:", caps.drop_duplicates("cap").set_index("cap").answers_capped.to_dict())

fig, ax = plt.subplots(figsize=(6.5, 4))
for g in hidden:
    c = caps[caps.group == g]
    ax.errorbar(c.cap, c.estimate, yerr=[c.estimate - c.lower, c.upper - c.estimate], marker="o", capsize=3, label=g)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("top-code of the known-group answers (contacts, log scale)")
ax.set_ylabel(f"Killworth estimate (people, log scale; {base.interval_prob:.0%} interval)")
ax.legend(fontsize=8, loc="center right")
plt.tight_layout()
plt.show()""",
    ),
    (
        "md",
        """\
## What to report

The headline number with the assumption it rests on (the transmission rate), then the range over
these what-ifs. Every result folder written by `bayes-nsum` keeps the full spec in
`provenance.json`, so each number can be traced to its assumptions.""",
    ),
]

# ---------------------------------------------------------------------------------------------
# 5. simulation-based calibration
# ---------------------------------------------------------------------------------------------

CALIBRATION = [
    (
        "md",
        """\
# Simulation-based calibration of a model

Does the model code, together with the sampler, return the right posterior? Simulation-based
calibration (SBC; Talts et al. 2018) checks it without any real data: draw parameters from the
prior, simulate a survey from them, fit the model, and record the rank of the true value among
the posterior draws. If everything is right the ranks are uniform. A slope means bias, a U shape
over-confidence (intervals too narrow), a hump under-confidence.

`bayes_nsum.checks.calibration.run_sbc` compiles the model once and swaps in each simulated survey, so a
replication costs a short sampler run.""",
    ),
    setup_cell("nb05"),
    (
        "code",
        """\
from bayes_nsum.checks.calibration import run_sbc

REPLICATIONS = 20 if FAST else 200
res = run_sbc(
    model_name="degree",
    replications=REPLICATIONS,
    n_respondents=300,
    draws=SAMPLER["draws"],
    tune=SAMPLER["tune"],
    chains=SAMPLER["chains"],
    seed=7,
)
print(f"{REPLICATIONS} replications of the degree model with {res.settings['n_respondents']} respondents each")
res.uniformity""",
    ),
    (
        "code",
        """\
alpha = res.settings["alpha"]
k = len(res.uniformity)
for r in res.uniformity.itertuples():
    verdict = "consistent with uniform" if r.p_value >= alpha / k else "NOT uniform"
    print(f"{r.parameter}: chi-square p-value {r.p_value:.3f} -> {verdict} at level {alpha / k:.4f} (Bonferroni over {k})")
print(f"calibration passed: {res.passed}")
fig = res.plot()
plt.show()""",
    ),
    (
        "md",
        "In the rank histograms above, the grey band is where the bars of a uniform histogram would fall with high probability. Next, recovery: the posterior median against the true value of each replication.",
    ),
    (
        "code",
        """\
params = list(res.uniformity.parameter)
fig, axes = plt.subplots(1, len(params), figsize=(4 * len(params), 3.8), squeeze=False)
units = {"mu": "log people", "sigma": "log people", "log_visible": "log share"}
for ax, p in zip(axes[0], params, strict=True):
    r = res.ranks[res.ranks.parameter == p]
    ax.plot(r.truth, r.posterior_median, "o", ms=4, color="#4477aa")
    lims = [min(r.truth.min(), r.posterior_median.min()), max(r.truth.max(), r.posterior_median.max())]
    ax.plot(lims, lims, "k--", lw=1)
    unit = units.get(p.split("[")[0], "parameter units")
    ax.set_xlabel(f"true value ({unit})")
    ax.set_ylabel(f"posterior median ({unit})")
    corr = np.corrcoef(r.truth, r.posterior_median)[0, 1]
    ax.set_title(f"{p}: correlation {corr:.2f}", fontsize=9)  # log_visible: log of N_H / N
    print(f"{p}: correlation between truth and posterior median {corr:.2f} over {len(r)} replications")
plt.tight_layout()
plt.show()""",
    ),
    (
        "md",
        """\
With the fast settings of the tests there are few replications and short chains, so the test has
little power; the benchmark pages report full calibration runs.""",
    ),
]


# ---------------------------------------------------------------------------------------------
# 6. Scale of Harm from the raw survey
# ---------------------------------------------------------------------------------------------

SCALE_OF_HARM_RAW = [
    (
        "md",
        """\
# The Scale of Harm analysis from the raw survey

A study team does not start from a clean area table: it has a household survey. This notebook
runs the whole Scale of Harm analysis from raw files, with the **synthetic** survey in
`models/scale_of_harm_raw/` (written by its `make_data.py` with a fixed seed, in the study's
shape, with the truth known):

* `municipalities.csv`: each municipality's population;
* `roster.csv`: every member of every surveyed household, with age and occupation;
* `survey.csv`: fourteen "how many ... do you know" questions about known groups, and victims
  and offenders each asked twice (in general and for livestreamed abuse), some answers missing;
* `municipalities.geojson`: synthetic boundaries for the maps.

One spec, `models/scale_of_harm_raw/spec.toml`, takes them to the report: the roster gives the
area table, the pre-processing combines the questions, imputes and top-codes, and the partially
pooled model estimates victims per child and offenders per adult, per municipality and
nationally.""",
    ),
    setup_cell("nb06", seed=2022),
    fmt_cell(),
    (
        "code",
        """\
RAW = ROOT / "models" / "scale_of_harm_raw"
muni = pd.read_csv(RAW / "municipalities.csv")
roster = pd.read_csv(RAW / "roster.csv")
survey = pd.read_csv(RAW / "survey.csv")
truth = pd.read_csv(RAW / "truth.csv", keep_default_na=False)
print(
    f"{len(muni)} municipalities; a roster of {len(roster):,} members in "
    f"{roster.household_id.nunique():,} households; {len(survey):,} respondents in "
    f"{survey.municipality.nunique()} municipalities."
)
print("roster columns:", ", ".join(roster.columns))
print("survey columns:", ", ".join(survey.columns))
missing = survey.drop(columns=["respondent_id", "municipality", "household_id"]).isna().sum()
print(f"missing answers: {int(missing.sum())} over {int((missing > 0).sum())} questions")
roster.occupation.value_counts().head(8)""",
    ),
    (
        "md",
        """\
## The spec

Everything that happens is in the spec: where the files are, how the roster is read, the
pre-processing rules and the model.""",
    ),
    ("code", 'print((RAW / "spec.toml").read_text())'),
    (
        "md",
        """\
## From the roster to the area table

For each municipality and each category of the `[roster.categories]` table, the share of the
rostered members in the category times the municipality's population is the category's size
there. `smoothing` pulls each share towards the national roster share by a few members' worth,
so that a rare occupation that no rostered member of a small municipality has does not get a
size of zero; a municipality without any rostered household gets the national share. The roster
also gives each municipality's mean household size, used by the imputation below. Every
derived value is logged (`roster_log.csv` in the results folder).""",
    ),
    (
        "code",
        """\
from bayes_nsum.analysis import prepare
from bayes_nsum.spec import Spec

spec = Spec.from_file(RAW / "spec.toml")
prep = prepare(spec)
ard = prep.ard
at = ard.area_table
counts = ard.roster_counts
print(prep.raw.roster.settings["estimator"])
print(
    f"members rostered per municipality: median {counts.members[counts.members > 0].median():.0f}; "
    f"municipalities with no roster (national shares): {len(prep.raw.roster.settings['areas_national_share'])}"
)
counts.head()""",
    ),
    (
        "code",
        """\
true_size = truth[(truth.quantity == "size") & (truth.area != "")].pivot(
    index="area", columns="group", values="value"
)
shown = ["teachers", "drivers", "children_0_2", "children_13_17", "doctors"]
fig, ax = plt.subplots(figsize=(6, 5))
for g in shown:
    ax.scatter(true_size.loc[at.index, g], at[g], s=12, label=g, alpha=0.7)
lims = [true_size[shown].min().min() / 2, true_size[shown].max().max() * 2]
ax.plot(lims, lims, "k--", lw=1, label="derived = true")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("true size in the municipality (people)")
ax.set_ylabel("size derived from the roster (people)")
ax.set_title("Known-group sizes from the household roster")
ax.legend(fontsize=8)
plt.show()
big = counts.members >= counts.members[counts.members > 0].median()
for g in shown:
    rel = (at.loc[big, g] / true_size.loc[counts.index[big], g] - 1).abs().median()
    print(f"{g}: median relative error {rel:.0%} in the municipalities with the larger rosters")""",
    ),
    (
        "md",
        """\
Rare groups (doctors) are estimated poorly from a few households per municipality: the roster
sample is small. The model below uses the sizes as exact.

## Pre-processing

The two questions of each hidden group are combined by taking the larger answer; respondents
who report offenders but no victims, or victims but no offenders, have the missing side imputed
(the study's rule: offenders set to the municipality's mean household size, here the column the
roster wrote); the known groups' answers are top-coded at their `p95`. Every change is logged.""",
    ),
    (
        "code",
        """\
log = prep.log.summary()
print(log[log.rule.isin(["combine", "impute"])].to_string(index=False))
steps = {st["rule"]: st["settings"] for st in prep.log.to_dict()["steps"]}
imp = steps["impute"]
print(
    f"victims per offender used by the imputation: {imp['victims_per_offender']:.2f} "
    f"({imp['victims_per_offender_source']}); household sizes from the area-table column "
    f"{imp['household_size_column']!r}"
)
caps = pd.Series(steps["topcode"]["caps"]).sort_values()
print("top-coding caps (95th percentile of each known group's answers):")
print(caps.to_string())""",
    ),
    (
        "md",
        """\
## The partially pooled model, end to end

`run_fit` is what `bayes-nsum fit` runs: the same checks, the fit, the post-fit checks and the
results folder with the report and the maps.""",
    ),
    (
        "code",
        """\
from bayes_nsum.analysis import run_fit

result, diag, outdir = run_fit(spec, OUT / "fit", SAMPLER)
print(
    f"Sampling took {result.timings['sample_s']:.0f} s. Convergence checks passed: {diag['passed']} "
    f"(largest R-hat {diag['max_r_hat']:.3f}, smallest bulk ESS {diag['min_ess_bulk']:.0f})."
)
summary = pd.read_csv(outdir / "summary.csv", keep_default_na=False)
nat = summary[(summary.area == "") & summary.quantity.isin(["prevalence", "one_in_x"])]
true_prev = truth[(truth.area == "") & (truth.quantity == "prevalence")].set_index("group").value
for g in ard.hidden:
    p = nat[(nat.group == g) & (nat.quantity == "prevalence")].iloc[0]
    x = nat[(nat.group == g) & (nat.quantity == "one_in_x")].iloc[0]
    lo, hi = float(p.lower), float(p.upper)
    print(
        f"{g}: {100 * float(p.estimate):.2f}% of {p.denominator} ({spec.interval_prob:.0%} interval "
        f"{100 * lo:.2f}% to {100 * hi:.2f}%), about 1 in {float(x.estimate):,.0f}; true "
        f"{100 * true_prev[g]:.2f}% ({'inside' if lo <= true_prev[g] <= hi else 'outside'} the interval)"
    )""",
    ),
    (
        "md",
        """\
## What the roster's noise costs

The model takes the roster-derived sizes as exact. Here the truth is known, so the same fit can
be run with the true known-group sizes (and the true children, adults and household sizes) in
place of the roster's: the difference is what treating a small roster sample as exact costs.""",
    ),
    (
        "code",
        """\
import shutil
import tomllib

import tomli_w

exact = OUT / "true_sizes"
exact.mkdir()
for name in ("survey.csv", "municipalities.geojson"):
    shutil.copy(RAW / name, exact / name)
true_cols = truth[(truth.area != "") & truth.quantity.isin(["size", "mean"])].pivot(
    index="area", columns="group", values="value"
)
muni.set_index("area").join(true_cols).reset_index().to_csv(exact / "area_table.csv", index=False)
raw_spec = tomllib.loads((RAW / "spec.toml").read_text())
del raw_spec["data"]["roster"], raw_spec["roster"]
raw_spec["data"]["area_table"] = "area_table.csv"
(exact / "spec.toml").write_text(tomli_w.dumps(raw_spec))
res_exact, diag_exact, out_exact = run_fit(exact / "spec.toml", exact / "fit", SAMPLER, steps=())
s_exact = pd.read_csv(out_exact / "summary.csv", keep_default_na=False)
for g in ard.hidden:
    pick = lambda t: float(t[(t.area == "") & (t.group == g) & (t.quantity == "prevalence")].estimate.iloc[0])
    print(
        f"{g}: {100 * pick(summary):.2f}% with the roster's sizes, {100 * pick(s_exact):.2f}% with "
        f"the true sizes; true {100 * true_prev[g]:.2f}%"
    )""",
    ),
    (
        "md",
        """\
Sizes estimated from a few households per municipality are noisy, and noise in the known sizes
does not average out in the model: the degrees absorb it. The counts behind the sizes stay on
the data (`ard.roster_counts`) for a model that keeps their uncertainty.

The offenders' estimate is pushed up by the imputation rule: a respondent who knows victims but
reports no offender is taken to know a whole household's worth of offenders. The rule is the
study's; the log says how many answers it changed, and a sensitivity analysis can switch it off.

## Municipality by municipality

Municipalities without respondents are predictions from the pooling distribution; those with
fewer respondents than `[output] min_area_respondents` are suppressed in every table.""",
    ),
    (
        "code",
        """\
prev = summary[(summary.quantity == "prevalence") & (summary.area != "")]
prev = prev[prev.estimate != ""].astype({"estimate": float, "lower": float, "upper": float})
true_area = truth[(truth.quantity == "prevalence") & (truth.area != "")].pivot(
    index="area", columns="group", values="value"
)
no_resp = set(ard.areas) - set(ard.area)
fig, axes = plt.subplots(1, len(ard.hidden), figsize=(5 * len(ard.hidden), 4.5), squeeze=False)
for ax, g in zip(axes[0], ard.hidden, strict=True):
    r = prev[prev.group == g].set_index("area")
    t = true_area.loc[r.index, g]
    pred = r.index.isin(no_resp)
    ax.errorbar(t[~pred], r.estimate[~pred], yerr=[r.estimate[~pred] - r.lower[~pred], r.upper[~pred] - r.estimate[~pred]],
                fmt="o", ms=3, alpha=0.6, label="with respondents")
    ax.errorbar(t[pred], r.estimate[pred], yerr=[r.estimate[pred] - r.lower[pred], r.upper[pred] - r.estimate[pred]],
                fmt="s", ms=4, mfc="white", label="no respondents (predicted)")
    lims = [t.min() / 1.5, t.max() * 1.5]
    ax.plot(lims, lims, "k--", lw=1, label="estimate = truth")
    ax.set_xlabel(f"true prevalence of {g} (share of {r.denominator.iloc[0]})")
    ax.set_ylabel("posterior median and interval (share)")
    covered = ((r.lower <= t) & (t <= r.upper)).mean()
    ax.set_title(f"{g}: {covered:.0%} of the intervals cover the truth", fontsize=9)
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()""",
    ),
    (
        "md",
        """\
## Maps

With `[data] boundaries` (and GeoPandas, the `maps` extra) the report holds a map of each hidden
group's prevalence and one of its interval width per municipality; the images are also in the
results folder's `maps/` subfolder.""",
    ),
    (
        "code",
        """\
from IPython.display import Image, display

maps = sorted((outdir / "maps").glob("*.png"))
print(f"report: {outdir / 'report.html'}; {len(maps)} map images")
for path in maps[:2]:
    display(Image(filename=str(path)))
if not maps:
    from bayes_nsum.report.maps import geopandas_missing

    print(geopandas_missing())""",
    ),
    (
        "md",
        """\
With the fast settings used by the tests the sampler runs are short and the convergence checks
may fail; run the notebook without `BAYES_NSUM_NB_FAST` (or `bayes-nsum fit` on the spec) for
numbers worth reading.""",
    ),
]

# ---------------------------------------------------------------------------------------------
# 7. comparing methods on one simulated survey
# ---------------------------------------------------------------------------------------------

METHODS = [
    (
        "md",
        """\
# Comparing NSUM methods on one simulated survey with known truth

A methods paper compares estimators on data whose truth is known. This notebook simulates one
survey of the general population together with a sample from the hidden population (as the
generalized scale-up method needs), then estimates the hidden group's size with

* the classical **Killworth** estimator (Killworth et al. 1998);
* the **Maltiel combined** model: random degrees, barrier effects and transmission bias
  (Maltiel et al. 2015);
* the **Zheng overdispersed** model (Zheng, Salganik and Gelman 2006);
* the **Laga correlated** model with a respondent covariate on the network size (Laga, Bao and
  Niu 2023);
* the **generalized scale-up** estimator, classical and Bayesian (Feehan and Salganik 2016),
  which learns the visibility of the hidden group from the hidden-population sample.

The simulated hidden group is only partly visible: its members' contacts know of their status
with a probability below one (transmission), and its members have smaller networks than the rest
of the population (degree ratio). Methods that assume full visibility estimate the *visible*
size; the generalized estimator corrects for both from data; the Maltiel model corrects only as
far as its prior on the transmission rate allows. The comparison ends with the paper-ready table
in LaTeX.""",
    ),
    setup_cell("nb07"),
    fmt_cell(),
    ("md", "## The simulated surveys"),
    (
        "code",
        """\
import tomllib

from bayes_nsum.simulate import simulate_gnsum

TRUTH = dict(hidden_size=5_000.0, tau=0.5, degree_ratio=0.8)
sim = simulate_gnsum(n_respondents=500, n_hidden_sample=100, seed=3, **TRUTH)
group = sim.hidden_group
truth = float(sim.truth.query("quantity == 'size' and group == @group")["value"].iloc[0])
# a respondent covariate that carries part of the network size (correlation about 0.7 with
# the log-degree), as household size or occupation might
rng = np.random.default_rng(3)
log_d = np.log(sim.degrees)
z = (log_d - log_d.mean()) / log_d.std()
sim.survey["household_z"] = np.round(0.7 * z + np.sqrt(1 - 0.7**2) * rng.normal(size=len(z)), 3)
paths = sim.write(OUT / "survey", model="gnsum")
raw = tomllib.loads(paths["spec"].read_text())
print(f"{len(sim.survey)} respondents, {len(sim.hidden_sample)} members of the hidden sample")
print(f"known groups: {', '.join(sim.known)}; hidden group: {group}")
print(f"true size {people(truth)}; transmission rate {TRUTH['tau']}, degree ratio {TRUTH['degree_ratio']}")
print(f"visible size (what a method that assumes full visibility estimates): "
      f"{people(truth * TRUTH['tau'] * TRUTH['degree_ratio'])}")
print(f"correlation of the covariate with the log network size: {np.corrcoef(z, sim.survey['household_z'])[0, 1]:.2f}")""",
    ),
    (
        "md",
        """\
Each method gets the spec it can use: the hidden-population sample only for the generalized
estimators, the covariate only for the correlated model. A spec key that the chosen model does
not use is an error in `bayes_nsum`, never silently ignored.""",
    ),
    (
        "code",
        """\
from bayes_nsum.analysis import build_model, classical_estimates, prepare
from bayes_nsum.spec import Spec


def spec_for(name, hidden_sample=False, covariates=False):
    r = {k: dict(v) for k, v in raw.items()}
    if not hidden_sample:
        for key in ("hidden_sample", "hidden_sample_group", "hidden_sample_aware_suffix"):
            r["data"].pop(key, None)
    if covariates:
        r["data"]["covariates"] = ["household_z"]
    r["model"] = {"name": name}
    return Spec.from_dict(r, paths["spec"].parent)


rows = []


def add(label, table, converged=True):
    t = table[table["quantity"].isin(["size", "prevalence"]) & (table["group"] == group)]
    if "area" in t:
        t = t[t["area"].fillna("") == ""]
    for r in t.itertuples():
        rows.append({"model": label, "area": "", "group": r.group, "quantity": r.quantity,
                     "estimate": r.estimate, "lower": r.lower, "upper": r.upper,
                     "converged": converged})


add("Killworth", classical_estimates(prepare(spec_for("killworth"))))
add("GNSUM (classical)", classical_estimates(prepare(spec_for("gnsum", hidden_sample=True))))
print("classical estimates done")""",
    ),
    ("md", "## The Bayesian models"),
    (
        "code",
        """\
import time

BAYES = [
    ("Maltiel combined", "combined", False, False),
    ("Zheng overdispersed", "overdispersed", False, False),
    ("Laga correlated + covariate", "correlated", False, True),
    ("GNSUM (Bayesian)", "gnsum_bayes", True, False),
]
fits = {}
for label, name, hidden_sample, covariates in BAYES:
    t0 = time.perf_counter()
    model = build_model(prepare(spec_for(name, hidden_sample, covariates)))
    res = model.fit(**SAMPLER)
    diag = res.diagnostics()
    add(label, res.summary(), converged=diag["passed"])
    fits[label] = res
    print(f"{label}: {time.perf_counter() - t0:.0f} s; largest R-hat {diag['max_r_hat']:.3f}, "
          f"smallest bulk ESS {diag['min_ess_bulk']:.0f}; convergence checks passed: {diag['passed']}")""",
    ),
    (
        "md",
        """\
## What each method estimates

The table shows each estimate beside the truth. Killworth, Zheng and Laga land near the visible
size; the generalized estimators, which see how many of the hidden members' contacts know their
status, land near the true size; the Maltiel combined model lies between, pulled by its prior
on the transmission rate.""",
    ),
    (
        "code",
        """\
long = pd.DataFrame(rows)
size = long[long["quantity"] == "size"].set_index("model")
for label, r in size.iterrows():
    covered = r.lower <= truth <= r.upper
    print(f"{label:>28}: {people(r.estimate)} ({interval(r.lower, r.upper)}); "
          f"estimate / truth {r.estimate / truth:.2f}; interval holds the truth: {covered}"
          + ("" if r.converged else "  [did not pass its convergence checks]"))""",
    ),
    (
        "code",
        """\
fig, ax = plt.subplots(figsize=(8, 3.6))
ypos = np.arange(len(size))
ax.errorbar(size["estimate"], ypos, xerr=[size["estimate"] - size["lower"], size["upper"] - size["estimate"]],
            fmt="o", color="black", capsize=3)
ax.axvline(truth, color="tab:green", label="true size")
ax.axvline(truth * TRUTH["tau"] * TRUTH["degree_ratio"], color="tab:orange", ls="--", label="visible size")
ax.set_yticks(ypos, size.index)
ax.set_xlabel(f"estimated size of {group} (people; 90% interval)")
ax.set_ylabel("method")
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()""",
    ),
    (
        "md",
        """\
## What the covariate model learns

The correlated model's `theta` is the change in log network size per standard deviation of the
covariate; the simulation built the covariate from the log network size, so `theta` should be
clearly positive.""",
    ),
    (
        "code",
        """\
post = fits["Laga correlated + covariate"].posterior
theta = post["theta"].values.reshape(-1)
lo, hi = np.quantile(theta, [0.05, 0.95])
print(f"theta (per sd of household_z): median {np.median(theta):.2f}, 90% interval {lo:.2f} to {hi:.2f}")
print(f"the log network size's sd in the simulation: {log_d.std():.2f}; "
      f"a covariate correlated 0.7 with it implies theta near {0.7 * log_d.std():.2f}")""",
    ),
    (
        "md",
        """\
## The paper-ready table

`bayes_nsum.report.tables.write_wide` writes the comparison as CSV, Markdown and LaTeX (the
same tables `bayes-nsum compare`, `compare-priors` and `sweep` write). A fit that did not pass
its convergence checks is marked with a dagger.""",
    ),
    (
        "code",
        """\
from bayes_nsum.report.tables import write_wide

files = write_wide(long, "model", OUT, "methods")
print(files["tex"].read_text())""",
    ),
    (
        "md",
        """\
With the fast settings used by the tests the sampler runs are short and the convergence checks
may fail (the correlated model needs long runs); run the notebook without `BAYES_NSUM_NB_FAST`
for numbers worth reading. One simulated survey is one draw: a methods paper repeats this over
many seeds (see the calibration notebook and `benchmarks/`).""",
    ),
]

NOTEBOOKS = {
    "01_quickstart.ipynb": QUICKSTART,
    "02_scale_of_harm.ipynb": SCALE_OF_HARM,
    "03_comparing_priors.ipynb": COMPARING_PRIORS,
    "04_sensitivity.ipynb": SENSITIVITY,
    "05_calibration.ipynb": CALIBRATION,
    "06_scale_of_harm_raw.ipynb": SCALE_OF_HARM_RAW,
    "07_comparing_methods.ipynb": METHODS,
}


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """A notebook (nbformat v4, no outputs) from ``(kind, source)`` cells."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for i, (kind, source) in enumerate(cells):
        if kind == "md":
            cell = new_markdown_cell(source)
        elif kind == "code":
            cell = new_code_cell(source)
        else:
            raise ValueError(f"unknown cell kind {kind!r}")
        cell["id"] = f"cell-{i:02d}"  # stable ids keep the files diff-friendly
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def render(name: str) -> str:
    return nbformat.writes(build(NOTEBOOKS[name])) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a notebook is stale")
    args = parser.parse_args(argv)
    stale = []
    for name in NOTEBOOKS:
        path = HERE / name
        text = render(name)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(
            f"stale notebooks (run notebooks/build_notebooks.py): {', '.join(stale)}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
