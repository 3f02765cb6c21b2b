"""Paper-ready comparison tables (report/tables.py): wide layout, rounding, unconverged marks,
LaTeX escaping."""

from __future__ import annotations

import pandas as pd

from bayes_nsum.report.tables import latex, markdown, wide_table, write_wide


def long_rows():
    rows = []
    for label, conv, k in (("maltiel2015", True, 1.0), ("weakly_informative", False, 1.5)):
        for g in ("sex.workers", "msm"):
            rows.append({"prior_set": label, "area": "", "group": g, "quantity": "size",
                         "estimate": 34123.0 * k, "lower": 28345.0 * k, "upper": 40210.0 * k,
                         "converged": conv})  # fmt: skip
            rows.append({"prior_set": label, "area": "", "group": g, "quantity": "prevalence",
                         "estimate": 0.0051439 * k, "lower": 0.0046203 * k,
                         "upper": 0.0055729 * k, "converged": conv})  # fmt: skip
            rows.append({"prior_set": label, "area": "A1", "group": g, "quantity": "size",
                         "estimate": 1.0, "lower": 0.5, "upper": 2.0, "converged": conv})  # fmt: skip
    return pd.DataFrame(rows)


def test_wide_table_one_row_per_group_and_quantity():
    wide = wide_table(long_rows(), "prior_set")
    assert list(wide.index) == [
        ("msm", "size"), ("msm", "prevalence"), ("sex.workers", "size"),
        ("sex.workers", "prevalence"),
    ]  # fmt: skip
    assert list(dict.fromkeys(wide.columns.get_level_values(0))) == [
        "maltiel2015", "weakly_informative"
    ]  # fmt: skip
    assert wide.loc[("msm", "size"), ("weakly_informative", "estimate")] == 34123.0 * 1.5


def test_markdown_and_latex_round_mark_and_escape(tmp_path):
    wide = wide_table(long_rows(), "prior_set")
    md = markdown(wide, {"weakly_informative"})
    assert "34,000 (28,000 to 40,000)" in md and "0.514% (0.462 to 0.557%)" in md
    assert "weakly_informative †" in md and "do not report" in md
    tex = latex(wide, {"weakly_informative"})
    assert r"weakly\_informative $^\dagger$" in tex and r"0.514\%" in tex
    assert tex.startswith(r"\begin{tabular}{llrr}")
    paths = write_wide(long_rows(), "prior_set", tmp_path, "comparison")
    csv = pd.read_csv(paths["csv"])
    assert "maltiel2015: estimate" in csv.columns and len(csv) == 4
    assert paths["md"].read_text().count("†") == 2  # header mark and footnote
