"""What every command shares: exit statuses, table and headline printing, sampler options."""

from __future__ import annotations

import argparse

EXIT_OK = 0
#: some sweep scenarios failed
EXIT_SCENARIOS_FAILED = 1
#: bad input: one line on stderr, no traceback
EXIT_BAD_INPUT = 2
#: a fit did not pass its convergence checks (results still written and flagged)
EXIT_UNCONVERGED = 3


def fmt_number(x) -> str:
    """Counts with thousands separators, small numbers with 4 significant digits."""
    if isinstance(x, float) and abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.4g}"


def print_table(df, columns=None) -> None:
    import pandas as pd

    with pd.option_context(
        "display.width", 120, "display.max_rows", 200, "display.float_format", fmt_number
    ):
        print((df[columns] if columns else df).to_string(index=False))


def print_headlines(summary, kind: str = "eti") -> None:
    """One line per hidden group: national size, "1 in X" and prevalence, each naming the
    group's denominator population (the summary's ``denominator`` column), e.g.
    ``victims: 46,000 (90% CrI ...); about 1 in 92 children; prevalence 1.08% of children``."""
    from ..report.page import headline, percent_headline

    nat = summary[summary["area"].fillna("") == ""]
    for _, row in nat[nat["quantity"] == "size"].iterrows():
        of_group = nat[nat["group"] == row["group"]]
        inv = of_group.loc[of_group["quantity"] == "one_in_x", "estimate"]
        line = f"{row['group']}: {headline(row, float(inv.iloc[0]) if len(inv) else None, kind)}"
        prev = of_group[of_group["quantity"] == "prevalence"]
        if len(prev):
            line += f"; prevalence {percent_headline(prev.iloc[0], kind)}"
        print(line)


#: columns of the console tables of a fit
FIT_COLUMNS = [
    "group",
    "quantity",
    "denominator",
    "estimate",
    "lower",
    "upper",
    "r_hat",
    "ess_bulk",
]


def extreme_areas(summary, n: int = 3):
    """Per hidden group, the areas to look at first: the ``n`` highest and lowest per-area
    prevalences (posterior medians; sizes without a prevalence) and the ``n`` least determined
    (widest interval relative to the estimate). Suppressed areas are left out."""
    import pandas as pd

    rows = summary[(summary["area"].fillna("") != "") & summary["estimate"].notna()]
    out = []
    for g in dict.fromkeys(rows["group"]):
        of = rows[rows["group"] == g]
        q = "prevalence" if (of["quantity"] == "prevalence").any() else "size"
        of = of[of["quantity"] == q]
        if of.empty:
            continue
        rel = (of["upper"] - of["lower"]) / of["estimate"].where(of["estimate"] > 0)
        picks = (
            ("highest", of.nlargest(n, "estimate")),
            ("lowest", of.nsmallest(n, "estimate")),
            ("least determined", of.loc[rel.nlargest(n).index]),
        )
        for which, sel in picks:
            out.append(sel.assign(which=which))
    return pd.concat(out, ignore_index=True) if out else rows.iloc[:0].assign(which="")


def print_fit_summary(outdir, kind: str = "eti", n: int = 3) -> None:
    """A fit's console summary from its ``summary.csv`` (suppressed areas already empty), one
    screen long whatever the number of areas: the national rows and headlines, and for
    per-area results only the few areas to look at first (:func:`extreme_areas`) and where the
    full table is."""
    from pathlib import Path

    import pandas as pd

    summary = pd.read_csv(Path(outdir) / "summary.csv")
    summary["area"] = summary["area"].fillna("").astype(str)
    summary["denominator"] = summary["denominator"].fillna("")
    area = summary["area"]
    main = summary["quantity"].isin(["size", "prevalence", "one_in_x"])
    print_table(summary[main & (area == "")], FIT_COLUMNS)
    per_area = summary[main & (area != "")]
    if len(per_area):
        areas = per_area["area"].nunique()
        small = 0
        if "suppressed" in per_area:
            sup = per_area["suppressed"].astype(str).str.lower() == "true"
            small = per_area.loc[sup, "area"].nunique()
        print(f"\nPer area ({areas} areas{f', {small} suppressed' if small else ''}):")
        print_table(
            extreme_areas(summary, n),
            ["group", "which", "area", "quantity", "estimate", "lower", "upper", "r_hat"],
        )
        where, report = Path(outdir), Path(outdir) / "report.html"
        also = f" (and {report})" if report.is_file() else ""
        print(f"full per-area table: {where / 'summary.csv'}{also}")
    print()
    print_headlines(summary, kind)
    print(f"wrote {outdir}")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def seed_int(text: str) -> int:
    """argparse type: a seed, an integer in [0, 2^32)."""
    value = int(text)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2^32), got {text}")
    return value


def acceptance(text: str) -> float:
    """argparse type: a target acceptance rate, a number strictly between 0 and 1."""
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, got {text}")
    return value


def add_sampler_options(p: argparse.ArgumentParser, what: str = "") -> None:
    p.add_argument("--draws", type=positive_int, help=f"posterior draws per chain{what}")
    p.add_argument("--tune", type=positive_int, help=f"tuning steps per chain{what}")
    p.add_argument("--chains", type=positive_int, help=f"chains{what}")
    p.add_argument("--seed", type=seed_int, help=f"sampler seed{what}")
    p.add_argument("--target-accept", type=acceptance, help=f"NUTS target acceptance{what}")


def sampler_overrides(args) -> dict:
    return {
        "draws": args.draws,
        "tune": args.tune,
        "chains": args.chains,
        "seed": args.seed,
        "target_accept": args.target_accept,
    }
