"""What every command shares: exit statuses, table printing, sampler options."""

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


def add_sampler_options(p: argparse.ArgumentParser, what: str = "") -> None:
    p.add_argument("--draws", type=int, help=f"posterior draws per chain{what}")
    p.add_argument("--tune", type=int, help=f"tuning steps per chain{what}")
    p.add_argument("--chains", type=int, help=f"chains{what}")
    p.add_argument("--seed", type=int, help=f"sampler seed{what}")


def sampler_overrides(args) -> dict:
    return {"draws": args.draws, "tune": args.tune, "chains": args.chains, "seed": args.seed}
