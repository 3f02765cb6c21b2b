r"""Known-group sizes per area from a household roster (``[data] roster`` and ``[roster]``).

The Scale of Harm study estimated each municipality's known-group sizes (teachers, nurses,
children by age band, ...) from the rosters of the surveyed households: every member of every
surveyed household is listed with the facts that place them in a group (occupation, age, ...).
:func:`roster_from_spec` turns such a roster into the columns of the area table.

Layouts (``[roster] layout``)
-----------------------------
``"member"`` (default)
    One row per household member: the area column, optionally a household id column
    (``[roster] household``; needed to count households and for the mean household size) and
    the columns that define the categories. A category is an indicator column (0/1 or
    true/false: ``students = "is_student"``), a text or code column matched against values
    (``teachers = {column = "occupation", equals = ["teacher", "head teacher"]}``; an empty
    cell matches nothing) or a numeric range, bounds included
    (``children_0_2 = {column = "age", min = 0, max = 2}``).
``"household"``
    One row per household: the area column, the number of members (``[roster] members``) and,
    per category, the number of the household's members in it (``teachers = "n_teachers"``).

Estimator
---------
In area :math:`j`, :math:`M_j` members are rostered and :math:`m_{jk}` of them are in
category :math:`k`. The share of the area's population in :math:`k` is estimated by the share
among the rostered members, and the size by that share times the area's population
:math:`P_j`:

.. math::
    \hat r_{jk} = \frac{m_{jk}}{M_j}, \qquad \hat N_{jk} = \hat r_{jk} P_j .

With household expansion factors (``[roster] weight``, one per household, repeated on each
member row of the member layout) the shares are weighted,
:math:`\hat r_{jk} = \sum_i w_i 1\{i \in k\} / \sum_i w_i` over the area's members.
``[roster] smoothing = a`` (a number of members, default 0) pulls each share towards the
national roster share :math:`\bar r_k` (all areas together, weighted alike):
:math:`(M_j \hat r_{jk} + a \bar r_k)/(M_j + a)`, the posterior mean under a
Beta(:math:`a \bar r_k`, :math:`a (1 - \bar r_k)`) prior. With ``a = 0`` a group that no
rostered member of an area belongs to gets size 0 there; a known group of size 0 in an area
whose respondents may know its members cannot be used, so that is refused (naming the group
and the areas) with advice to set ``smoothing``. An area of the area table without any
rostered member gets the national share :math:`\bar r_k` (logged as such).

Populations :math:`P_j` come from ``[data] area_table`` (its ``population`` column; every
rostered area must be listed there) or, without an area table, from the expansion factors:
:math:`P_j = \sum_i w_i` over the area's rostered members. ``[roster] household_size`` names a
column written with each area's mean household size (members per household, weighted by the
households' expansion factors), e.g. for the imputation rule
(``[preprocess] impute.household_size = "household_size"``).

The derived counts (:attr:`Roster.counts`: households, members and members in each category
per area, unweighted) stay with the data (:attr:`bayes_nsum.data.ARD.roster_counts`) for a
model that keeps their sampling uncertainty (:math:`m_{jk} \sim \mathrm{Binomial}(M_j,
r_{jk})`). Every derived value is logged per area and column (:attr:`Roster.log`, written as
``roster_log.csv`` with the areas of few rostered households suppressed,
:func:`roster_log_table`); no household or member row leaves this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .columns import column, counts, labels, numbers
from .errors import DataError, SpecError, format_rows
from .io import read_table

LAYOUTS = ("member", "household")
#: every ``[roster]`` key (their descriptions: ``bayes_nsum.spec.SCHEMA``)
ROSTER_KEYS = (
    "layout",
    "area",
    "household",
    "members",
    "weight",
    "smoothing",
    "household_size",
    "categories",
)
_CATEGORY_KEYS = ("column", "equals", "min", "max")
#: columns of the roster log
LOG_COLUMNS = [
    "area",
    "column",
    "source",
    "households",
    "members",
    "members_in_group",
    "roster_share",
    "share",
    "population",
    "value",
]
SOURCE_ROSTER = "roster"
SOURCE_NATIONAL = "national roster share (no rostered member in the area)"


@dataclass(frozen=True)
class Category:
    """How the members of one derived column are recognised in the roster."""

    name: str
    column: str
    values: tuple[str, ...] = ()
    low: float = -math.inf
    high: float = math.inf
    kind: str = "indicator"  # indicator | equals | range | count

    def describe(self) -> str:
        if self.kind == "equals":
            return f"{self.column} in {list(self.values)}"
        if self.kind == "range":
            if math.isinf(self.low):
                return f"{self.column} <= {self.high:g}"
            if math.isinf(self.high):
                return f"{self.column} >= {self.low:g}"
            return f"{self.low:g} <= {self.column} <= {self.high:g}"
        return f"{self.column} ({'members counted' if self.kind == 'count' else 'indicator'})"


@dataclass(frozen=True)
class RosterConfig:
    """The checked ``[roster]`` section."""

    layout: str
    area: str
    categories: tuple[Category, ...]
    household: str | None = None
    members: str | None = None
    weight: str | None = None
    smoothing: float = 0.0
    household_size: str | None = None


def _code(value: Any) -> str:
    """A TOML value as the text a roster cell is compared with (whole numbers without .0)."""
    if isinstance(value, float) and value.is_integer():
        return f"{value:.0f}"
    return str(value)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_roster(section: dict[str, Any], default_area: str, where: str = "spec") -> RosterConfig:
    """Check a spec's ``[roster]`` section; one :class:`SpecError` naming the key at fault."""
    if not isinstance(section, dict):
        raise SpecError(f"{where}: [roster] must be a table")
    for key in section:
        if key not in ROSTER_KEYS:
            raise SpecError(f"{where}: unknown key '{key}' in [roster] ({', '.join(ROSTER_KEYS)})")
    layout = section.get("layout", "member")
    if layout not in LAYOUTS:
        raise SpecError(f"{where}: [roster] layout must be 'member' or 'household', got {layout!r}")
    names = {}
    for key in ("area", "household", "members", "weight", "household_size"):
        value = section.get(key)
        if value is not None and not (isinstance(value, str) and value.strip()):
            raise SpecError(f"{where}: [roster] {key} must be a column name (text)")
        names[key] = value
    if layout == "household" and not names["members"]:
        raise SpecError(
            f"{where}: [roster] members (the column of each household's number of members) is "
            "needed with layout = 'household'"
        )
    if layout == "member" and names["members"]:
        raise SpecError(f"{where}: [roster] members is read only with layout = 'household'")
    if names["household_size"] and layout == "member" and not names["household"]:
        raise SpecError(
            f"{where}: [roster] household_size needs [roster] household (the household id "
            "column) to count households"
        )
    smoothing = section.get("smoothing", 0)
    if not _number(smoothing) or smoothing < 0:
        raise SpecError(f"{where}: [roster] smoothing must be a number >= 0 (members)")
    cats = section.get("categories")
    if not isinstance(cats, dict) or not cats:
        raise SpecError(
            f"{where}: [roster] categories must be a table: column of the area table -> how its "
            "members are recognised in the roster"
        )
    out = []
    for name, rule in cats.items():
        w = f"{where}: [roster.categories] {name}"
        if (
            name in ("area", "population", "members", "households")
            or name == names["household_size"]
        ):
            raise SpecError(f"{w}: '{name}' is not a name a derived column may take")
        if isinstance(rule, str):
            rule = {"column": rule}
        if not isinstance(rule, dict) or not isinstance(rule.get("column"), str):
            raise SpecError(f"{w}: must be a column name or a table with a 'column' key")
        bad = [k for k in rule if k not in _CATEGORY_KEYS]
        if bad:
            raise SpecError(f"{w}: unknown key '{bad[0]}' ({', '.join(_CATEGORY_KEYS)})")
        has_range = "min" in rule or "max" in rule
        if layout == "household" and ("equals" in rule or has_range):
            raise SpecError(
                f"{w}: with layout = 'household' a category is a column of member counts"
            )
        if "equals" in rule and has_range:
            raise SpecError(f"{w}: give either 'equals' or 'min' / 'max', not both")
        kind = "count" if layout == "household" else "indicator"
        values: tuple[str, ...] = ()
        low, high = -math.inf, math.inf
        if "equals" in rule:
            eq = rule["equals"]
            eq = eq if isinstance(eq, list) else [eq]
            if not eq or not all(isinstance(v, (str, int, float)) for v in eq):
                raise SpecError(f"{w}: 'equals' must be a value or a list of values")
            kind, values = "equals", tuple(_code(v) for v in eq)
        if has_range:
            for k in ("min", "max"):
                if k in rule and not _number(rule[k]):
                    raise SpecError(f"{w}: '{k}' must be a number")
            low, high = float(rule.get("min", -math.inf)), float(rule.get("max", math.inf))
            if low > high:
                raise SpecError(f"{w}: 'min' is larger than 'max'")
            kind = "range"
        out.append(Category(str(name), rule["column"], values, low, high, kind))
    return RosterConfig(
        layout=layout,
        area=names["area"] or default_area,
        categories=tuple(out),
        household=names["household"],
        members=names["members"],
        weight=names["weight"],
        smoothing=float(smoothing),
        household_size=names["household_size"],
    )


@dataclass(frozen=True)
class Roster:
    """What a roster gave: area-table columns, the counts behind them and their log.

    Attributes
    ----------
    area_table : DataFrame
        Index ``area``: ``population`` and the derived columns (one per category, and the mean
        household size when asked), joined to the spec's area table when there is one.
    counts : DataFrame
        Index ``area`` (every area of ``area_table``, in its order): ``households`` (when
        known), ``members`` (:math:`M_j`, rostered members) and one column per category
        (:math:`m_{jk}`, members in it); unweighted integers, 0 where nobody was rostered.
    log : DataFrame
        One row per area and derived column (:data:`LOG_COLUMNS`): where the value came from,
        the counts, the roster share, the share used, the population and the value.
    settings : dict
        What was done (file, layout, columns, smoothing, weighting), for the provenance.
    """

    area_table: pd.DataFrame
    counts: pd.DataFrame
    log: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=LOG_COLUMNS))
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """The derived category columns."""
        return [c for c in self.counts.columns if c not in ("households", "members")]

    def check_known(self, known: list[str]) -> None:
        """Refuse a known group with no rostered member in an area that has a roster (its size
        there would be 0) unless ``smoothing`` is positive."""
        if self.settings.get("smoothing", 0) > 0:
            return
        rostered = self.counts["members"] > 0
        for k in known:
            if k not in self.counts.columns:
                continue
            empty = self.counts.index[rostered & (self.counts[k] == 0)]
            if len(empty):
                raise DataError(
                    f"roster: no rostered member of known group '{k}' in areas "
                    f"{format_rows(empty)}, so its size there would be 0; set [roster] "
                    "smoothing (e.g. 5 members) to pull the shares towards the national roster "
                    "share, or leave the group out of [groups] known"
                )


def _membership(df: pd.DataFrame, cat: Category, where: str) -> np.ndarray:
    """Per roster row: 1 / 0 membership (member layout) or the count (household layout)."""
    key = f"[roster.categories] {cat.name}"
    raw = column(df, cat.column, where, key)
    if cat.kind == "equals":
        return (labels(raw).where(raw.notna(), None).isin(cat.values)).to_numpy(float)
    if cat.kind == "count":
        return counts(df[[cat.column]], [cat.column], where, "category")[cat.column].to_numpy()
    x = raw.astype(float).to_numpy() if pd.api.types.is_bool_dtype(raw.dtype) else None
    if x is None:
        x = numbers(raw, where, f"column '{cat.column}' ({key})")
    if np.isnan(x).any():
        rows = np.flatnonzero(np.isnan(x)) + 1
        raise DataError(
            f"{where}: column '{cat.column}' ({key}) is empty in rows {format_rows(rows)}"
        )
    if cat.kind == "range":
        return ((x >= cat.low) & (x <= cat.high)).astype(float)
    bad = ~np.isin(x, (0.0, 1.0))
    if bad.any():
        raise DataError(
            f"{where}: column '{cat.column}' ({key}) must hold 0/1 or true/false; other values "
            f"in rows {format_rows(np.flatnonzero(bad) + 1)}"
        )
    return x


def derive(
    roster: pd.DataFrame,
    cfg: RosterConfig,
    area_table: pd.DataFrame | None = None,
    where: str = "roster",
) -> Roster:
    """Derive area-table columns from a roster (see the module docstring for the estimator).

    Parameters
    ----------
    roster : DataFrame
        The roster file's rows (member or household layout).
    cfg : RosterConfig
        The checked ``[roster]`` section (:func:`check_roster`).
    area_table : DataFrame, optional
        The spec's area table (index ``area``, column ``population``): the populations and the
        list of areas. Without it, populations are the sums of the expansion factors.
    where : str
        The file, for messages.
    """
    df = roster.reset_index(drop=True)
    df.index = pd.RangeIndex(1, len(df) + 1)
    if len(df) == 0:
        raise DataError(f"{where}: the roster has no rows")
    area_raw = column(df, cfg.area, where, "[roster] area")
    if area_raw.isna().any():
        rows = df.index[area_raw.isna()]
        raise DataError(f"{where}: area column '{cfg.area}' is empty in rows {format_rows(rows)}")
    area = labels(area_raw).to_numpy()
    w = np.ones(len(df))
    if cfg.weight:
        w = numbers(
            column(df, cfg.weight, where, "[roster] weight"), where, f"weight column '{cfg.weight}'"
        )
        bad = ~(np.isfinite(w) & (w > 0))
        if bad.any():
            raise DataError(
                f"{where}: weight column '{cfg.weight}' is missing, infinite or <= 0 in rows "
                f"{format_rows(np.flatnonzero(bad) + 1)}"
            )
    if cfg.layout == "household":
        column(df, cfg.members, where, "[roster] members")
        size = counts(df[[cfg.members]], [cfg.members], where, "members")[cfg.members].to_numpy()
        if (size < 1).any() or np.isnan(size).any():
            rows = np.flatnonzero(~(size >= 1)) + 1
            raise DataError(
                f"{where}: members column '{cfg.members}' must be >= 1 in every household; "
                f"rows {format_rows(rows)}"
            )
        hh_key = pd.Series(np.arange(len(df)), index=df.index)
    else:
        size = np.ones(len(df))
        hh_key = None
        if cfg.household:
            hh = column(df, cfg.household, where, "[roster] household")
            if hh.isna().any():
                rows = df.index[hh.isna()]
                raise DataError(
                    f"{where}: household column '{cfg.household}' is empty in rows "
                    f"{format_rows(rows)}"
                )
            hh_key = pd.Series(
                pd.factorize(pd.Series(area, index=df.index) + "\x1f" + labels(hh))[0],
                index=df.index,
            )
    member = {}
    for cat in cfg.categories:
        x = _membership(df, cat, where)
        if cfg.layout == "household" and np.isnan(x).any():
            rows = np.flatnonzero(np.isnan(x)) + 1
            raise DataError(f"{where}: column '{cat.column}' is empty in rows {format_rows(rows)}")
        if (x > size).any():
            rows = np.flatnonzero(x > size) + 1
            raise DataError(
                f"{where}: column '{cat.column}' counts more members than the household has in "
                f"rows {format_rows(rows)}"
            )
        member[cat.name] = x

    # per-area sums: unweighted counts (by) and weighted totals (byw)
    unweighted = pd.DataFrame({"members": size, **member}, index=df.index)
    weighted = pd.DataFrame({"members": w * size, **{k: w * x for k, x in member.items()}})
    by = unweighted.groupby(area, sort=False).sum()
    byw = weighted.set_axis(df.index).groupby(area, sort=False).sum()
    areas_roster = [str(a) for a in by.index]
    if area_table is not None:
        unknown = [a for a in areas_roster if a not in area_table.index]
        if unknown:
            raise DataError(
                f"{where}: areas {format_rows(unknown)} of column '{cfg.area}' are missing from "
                "the area table"
            )
        areas = [str(a) for a in area_table.index]
        population = area_table["population"].astype(float)
        pop_source = "area table"
    elif cfg.weight:
        areas = areas_roster
        population = byw["members"].rename("population")
        pop_source = f"sum of the expansion factors ('{cfg.weight}')"
    else:
        raise SpecError(
            "[roster]: the areas' populations need [data] area_table (column population) or "
            "[roster] weight (household expansion factors)"
        )
    by = by.reindex(areas, fill_value=0.0)
    byw = byw.reindex(areas, fill_value=0.0)
    base = (
        area_table.copy()
        if area_table is not None
        else pd.DataFrame(index=pd.Index(areas, name="area"))
    )
    base["population"] = population.reindex(areas).to_numpy(float)
    tab = pd.DataFrame(index=pd.Index(areas, name="area"))
    if hh_key is not None:
        first = ~hh_key.duplicated().to_numpy()
        hh_frame = pd.DataFrame({"households": 1.0, "w_households": w}, index=df.index)[first]
        hh_by = hh_frame.groupby(area[first], sort=False).sum().reindex(areas, fill_value=0.0)
        tab["households"] = hh_by["households"].astype(int)
    M = by["members"].to_numpy(float)
    tab["members"] = M.astype(int)
    a = cfg.smoothing
    logs, derived = [], {}
    for cat in cfg.categories:
        k = cat.name
        if k in base.columns:
            raise DataError(
                f"[roster.categories] {k}: the area table already has a column '{k}'; derive it "
                "from the roster or give it in the area table, not both"
            )
        tab[k] = by[k].to_numpy(float).astype(int)
        national = float(byw[k].sum() / byw["members"].sum())
        with np.errstate(invalid="ignore", divide="ignore"):
            own = byw[k].to_numpy(float) / byw["members"].to_numpy(float)
            share = np.where(M > 0, (M * np.nan_to_num(own) + a * national) / (M + a), national)
        derived[k] = share * base["population"].to_numpy(float)
        logs.append(
            pd.DataFrame(
                {
                    "area": areas,
                    "column": k,
                    "source": np.where(M > 0, SOURCE_ROSTER, SOURCE_NATIONAL),
                    "households": tab["households"] if "households" in tab else np.nan,
                    "members": M,
                    "members_in_group": tab[k].to_numpy(float),
                    "roster_share": np.where(M > 0, own, np.nan),
                    "share": share,
                    "population": base["population"].to_numpy(float),
                    "value": derived[k],
                }
            )
        )
    if cfg.household_size:
        name = cfg.household_size
        if name in base.columns:
            raise DataError(
                f"[roster] household_size: the area table already has a column '{name}'"
            )
        whh = hh_by["w_households"].to_numpy(float)
        wm = byw["members"].to_numpy(float)
        national = float(wm.sum() / whh.sum())
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(whh > 0, wm / whh, national)
        derived[name] = mean
        logs.append(
            pd.DataFrame(
                {
                    "area": areas,
                    "column": name,
                    "source": np.where(M > 0, "roster (members per household)", SOURCE_NATIONAL),
                    "households": tab["households"],
                    "members": M,
                    "members_in_group": np.nan,
                    "roster_share": np.nan,
                    "share": np.nan,
                    "population": base["population"].to_numpy(float),
                    "value": mean,
                }
            )
        )
    for k, v in derived.items():
        base[k] = v
    base.index.name = "area"
    log = pd.concat(logs, ignore_index=True)[LOG_COLUMNS]
    settings = {
        "layout": cfg.layout,
        "area_column": cfg.area,
        "rows": int(len(df)),
        "members": int(M.sum()),
        "households": int(tab["households"].sum()) if "households" in tab else None,
        "areas_with_roster": int((M > 0).sum()),
        "areas_national_share": [a_ for a_, m in zip(areas, M, strict=True) if m == 0],
        "population": pop_source,
        "weight": cfg.weight,
        "smoothing": a,
        "estimator": "share of the area's rostered members x the area's population"
        + (" (weighted by the expansion factors)" if cfg.weight else "")
        + (f", shares pulled towards the national share by {a:g} members" if a else ""),
        "categories": {c.name: c.describe() for c in cfg.categories},
        "household_size": cfg.household_size,
    }
    return Roster(area_table=base, counts=tab, log=log, settings=settings)


def roster_from_spec(spec, area_table: pd.DataFrame | None = None) -> Roster:
    """Read ``[data] roster`` and derive the area table's columns as ``[roster]`` says."""
    data = spec.section("data")
    cfg = check_roster(spec.section("roster"), data.get("area", "area"), spec.where)
    path = spec.resolve(data["roster"])
    roster = derive(read_table(path, "roster"), cfg, area_table, f"roster {path.name}")
    return Roster(
        roster.area_table, roster.counts, roster.log, {"file": str(path), **roster.settings}
    )


def roster_log_table(roster: Roster, least: int = 1) -> pd.DataFrame:
    """The roster log as written to ``roster_log.csv``: the counts, shares and values of areas
    with fewer rostered households (members, without a household column) than ``least`` are
    left empty and flagged in a ``suppressed`` column (``[output] min_area_respondents``)."""
    log = roster.log.copy()
    n = log["households"] if log["households"].notna().any() else log["members"]
    small = ((n > 0) & (n < int(least))).to_numpy()
    for col in ("households", "members", "members_in_group", "roster_share", "share", "value"):
        log[col] = log[col].astype(float).where(~small)
    log["suppressed"] = small
    return log
