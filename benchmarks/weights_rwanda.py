"""Survey weights on the bundled Rwanda survey: classical and Bayesian degree-model estimates,
weighted and unweighted, side by side.

    python benchmarks/weights_rwanda.py --out benchmarks/results/weights_rwanda

Uses models/rwanda_example.toml (weights ``indweight``, strata ``region``, clusters ``cluster``,
known answers top-coded at 30); the degree model with 4 chains x 1000 draws. Writes
OUT/weights_rwanda.csv.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="benchmarks/out/weights_rwanda")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    from dataclasses import replace

    from bayes_nsum.analysis import build_model, classical_estimates, prepare
    from bayes_nsum.classical import estimate_table

    prep = prepare(ROOT / "models" / "rwanda_example.toml")
    rows = []
    cl = classical_estimates(prep)
    for r in cl[cl["quantity"] == "size"].itertuples():
        rows.append(
            {
                "estimator": "Killworth, weighted",
                "group": r.group,
                "estimate": r.estimate,
                "lower": r.lower,
                "upper": r.upper,
            }
        )
    ard = prep.ard
    un = estimate_table(
        ard.counts[ard.groups],
        ard.known_sizes,
        ard.total_population,
        list(ard.hidden),
        n_boot=200,
        seed=1,
    )
    for r in un[un["quantity"] == "size"].itertuples():
        rows.append(
            {
                "estimator": "Killworth, unweighted",
                "group": r.group,
                "estimate": r.estimate,
                "lower": r.lower,
                "upper": r.upper,
            }
        )
    spec = prep.spec.with_value("model.name", "degree")
    degree = replace(prep, spec=spec)
    info = {}
    for label, weights in (
        ("degree model, weighted (adjusted)", True),
        ("degree model, unweighted", False),
    ):
        model = build_model(replace(degree, spec=spec.with_value("model.survey_weights", weights)))
        res = model.fit(draws=1000, tune=1000, chains=4, seed=20240521, progress=False)
        s = res.summary(0.9).query("quantity == 'size'")
        for r in s.itertuples():
            rows.append(
                {
                    "estimator": label,
                    "group": r.group,
                    "estimate": r.estimate,
                    "lower": r.lower,
                    "upper": r.upper,
                }
            )
        info[label] = {
            "converged": res.diagnostics()["passed"],
            "design_adjustment": res.tree.attrs.get("design_adjustment"),
        }
    table = pd.DataFrame(rows)
    table.to_csv(out / "weights_rwanda.csv", index=False)
    (out / "weights_rwanda.json").write_text(json.dumps(info, indent=1, default=str))
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
