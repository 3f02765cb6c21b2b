"""Disclosure control: what a results folder may hold about respondents, in one place.

The survey data behind this package are reports about child sexual abuse, and a results folder
is something an analyst sends to an advisory council. So, by default:

* no respondent id and no respondent-level table is written. With ``[output] respondent_level
  = true`` the respondent-level tables (respondents' network sizes, the pre-processing changes
  with survey rows and ids) go to the :data:`RESTRICTED` subfolder (:func:`restricted_dir`,
  readable by its owner only); otherwise only summaries are written (counts per rule and group,
  the distribution of network sizes). ``posterior.nc`` keeps the answers by position (no ids);
* per-area rows of areas with fewer analysed respondents than ``[output]
  min_area_respondents`` (default 10) are suppressed in every output table
  (:func:`suppress_small_areas`) and the report names them;
* error messages name survey rows by position and never quote an answer
  (:mod:`bayes_nsum.errors`).

``docs/guide/data-protection.md`` lists every output file, what it holds and who may see it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

#: subfolder of a results folder for respondent-level tables (only with
#: ``[output] respondent_level = true``)
RESTRICTED = "restricted"


def restricted_dir(folder: str | Path) -> Path:
    """The ``restricted/`` subfolder of a results folder (respondent-level tables), created
    readable by its owner only."""
    path = Path(folder) / RESTRICTED
    path.mkdir(mode=0o700, exist_ok=True)
    return path


#: columns emptied in the per-area rows of a suppressed area
SUPPRESSED_VALUES = ("estimate", "mean", "lower", "upper")


def suppress_small_areas(
    table: pd.DataFrame, respondents: Mapping[str, int], least: int
) -> pd.DataFrame:
    """Suppress the per-area rows of areas with fewer than ``least`` analysed respondents.

    An area estimate from a handful of respondents is close to a function of their own
    answers (and too imprecise to publish); areas without respondents are predictions of the
    model alone and are kept. A table with area rows gets a ``suppressed`` column (True on the
    suppressed rows, whose :data:`SUPPRESSED_VALUES` are emptied); a table without area rows is
    returned unchanged.

    Parameters
    ----------
    table : DataFrame
        A table with an ``area`` column (empty for national rows).
    respondents : mapping
        Area -> number of analysed respondents.
    least : int
        ``[output] min_area_respondents``.
    """
    if "area" not in table.columns or table.empty:
        return table
    area = table["area"].fillna("").astype(str)
    if not (area != "").any():
        return table
    n = area.map(lambda a: int(respondents.get(a, 0)))
    small = ((area != "") & (n > 0) & (n < int(least))).to_numpy()
    out = table.copy()
    for col in SUPPRESSED_VALUES:
        if col in out.columns:
            out[col] = out[col].astype(float).where(~small)
    out["suppressed"] = small
    return out
