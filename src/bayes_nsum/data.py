"""The ARD container: validated aggregated relational data with named dims.

:func:`load_survey` reads the files a spec names, checks them and returns an :class:`ARD` (before
pre-processing). Every check raises :class:`~bayes_nsum.errors.DataError` with one line naming
the file, the column and the rows at fault. Rows are named by position (row 1 is the first
respondent), never by respondent id, and no message quotes an answer.

Answer columns must hold counts: numbers (integers >= 0, empty for a missing answer); a column of
true/false values, dates, times or text is refused, naming the column. Implausible answers are
refused after pre-processing (:func:`bayes_nsum.preflight.check_answers`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .columns import column, labels, numbers
from .columns import counts as count_columns
from .errors import DataError, SpecError, format_rows
from .hidden_sample import HiddenSample, load_hidden_sample
from .io import frame_hash, read_rows, read_table
from .roster import Roster, roster_from_spec
from .spec import Spec


@dataclass(frozen=True)
class ARD:
    """Aggregated relational data ("how many X do you know") ready for estimation.

    Attributes
    ----------
    counts : DataFrame
        Index ``respondent``: the survey row number (int; 1 is the first respondent), never
        the respondent id, so that every message downstream names rows by position; one
        float column per group (known groups then hidden); NaN marks a missing answer (only
        where pre-processing left it for the model).
    known, hidden : tuple of str
        Group names. Known groups have sizes; hidden groups are estimated.
    known_sizes : Series
        National size of each known group (the sum over areas when an area table is given).
    total_population : float
        Size N of the frame population.
    weights, strata, cluster, area : Series or None
        Respondent-level design variables, indexed like ``counts``.
    area_table : DataFrame or None
        Index ``area``; column ``population``, one column per known group's size in the area and
        any denominator columns. Areas without respondents may appear (they are predicted).
    denominators : dict
        Hidden group -> a number (national denominator) or an area-table column name. Groups not
        listed use the frame population.
    covariates : DataFrame or None
        Respondent covariates.
    source : str
        Where the survey came from (for messages and provenance).
    ids : Series or None
        Respondent ids (text) indexed like ``counts``, from the survey's id column; used only
        for the restricted respondent-level tables (``[output] respondent_level``).
    roster : Roster or None
        What a household roster (``[data] roster``) gave the area table: the counts behind
        the derived columns (:attr:`roster_counts`), their log and settings
        (:mod:`bayes_nsum.roster`).
    """

    counts: pd.DataFrame
    known: tuple[str, ...]
    hidden: tuple[str, ...]
    known_sizes: pd.Series
    total_population: float
    weights: pd.Series | None = None
    strata: pd.Series | None = None
    cluster: pd.Series | None = None
    area: pd.Series | None = None
    area_table: pd.DataFrame | None = None
    denominators: dict = field(default_factory=dict)
    covariates: pd.DataFrame | None = None
    source: str = "survey"
    ids: pd.Series | None = None
    roster: Roster | None = None
    hidden_sample: HiddenSample | None = None

    # -- basic facts --------------------------------------------------------------------
    @property
    def n(self) -> int:
        return len(self.counts)

    @property
    def groups(self) -> list[str]:
        return list(self.known) + list(self.hidden)

    @property
    def has_areas(self) -> bool:
        return self.area is not None and self.area_table is not None

    @property
    def roster_counts(self) -> pd.DataFrame | None:
        """Household-roster counts per area (None without ``[data] roster``): index ``area``
        (every area of the area table, in its order), columns ``households`` (when the roster
        identifies households), ``members`` (:math:`M_j`, members rostered) and one column per
        derived area-table column (:math:`m_{jk}`, members in it); unweighted integers, 0 in
        areas without a roster (whose sizes use the national roster share)."""
        return None if self.roster is None else self.roster.counts

    @property
    def areas(self) -> list[str]:
        """All areas of the area table (including those without respondents)."""
        return [] if self.area_table is None else [str(a) for a in self.area_table.index]

    def data_hash(self) -> str:
        """Content hash of the counts and design columns (provenance)."""
        parts = [self.counts]
        for s in (self.weights, self.strata, self.cluster, self.area):
            if s is not None:
                parts.append(s.to_frame())
        if self.area_table is not None:
            parts.append(self.area_table)
        if self.hidden_sample is not None:
            parts.append(self.hidden_sample.dataset().to_dataframe().reset_index())
        return frame_hash(pd.concat([p.reset_index(drop=True) for p in parts], axis=1))

    def denominator(self, group: str, area: str | None = None) -> float:
        """Population that a hidden group's prevalence is relative to (national or one area)."""
        den = self.denominators.get(group)
        if area is None:
            if den is None:
                return float(self.total_population)
            if isinstance(den, str):
                return float(self.area_table[den].sum())
            return float(den)
        if den is None:
            return float(self.area_table.loc[area, "population"])
        if isinstance(den, str):
            return float(self.area_table.loc[area, den])
        raise DataError(
            f"denominator of '{group}' is one national number ({den}); per-area prevalences "
            "need an area_table column name"
        )

    def with_counts(self, counts: pd.DataFrame) -> ARD:
        """A copy restricted to the respondents (rows) of ``counts``."""
        idx = counts.index

        def sub(s):
            return None if s is None else s.loc[idx]

        return replace(
            self,
            counts=counts,
            weights=sub(self.weights),
            strata=sub(self.strata),
            cluster=sub(self.cluster),
            area=sub(self.area),
            covariates=sub(self.covariates),
            ids=sub(self.ids),
        )

    def with_groups(self, known: list[str] | None = None, hidden: list[str] | None = None) -> ARD:
        """A copy using other known / hidden groups (e.g. a known group held out as hidden)."""
        known = list(self.known) if known is None else list(known)
        hidden = list(self.hidden) if hidden is None else list(hidden)
        cols = known + hidden
        missing = [c for c in cols if c not in self.counts.columns]
        if missing:
            raise DataError(f"groups not in the survey: {', '.join(missing)}")
        sizes = self.known_sizes.reindex(known)
        return replace(
            self,
            counts=self.counts[cols],
            known=tuple(known),
            hidden=tuple(hidden),
            known_sizes=sizes,
        )

    def summary(self) -> pd.DataFrame:
        """Per-group data summary: mean answer, share of zeros, 90th percentile, missing."""
        rows = []
        for g in self.groups:
            col = self.counts[g]
            rows.append(
                {
                    "group": g,
                    "type": "known" if g in self.known else "hidden",
                    "size": float(self.known_sizes[g]) if g in self.known else np.nan,
                    "mean": float(col.mean()),
                    "share_zero": float((col == 0).mean()),
                    "p90": float(col.quantile(0.9)),
                    "max": float(col.max()),
                    "missing": int(col.isna().sum()),
                }
            )
        return pd.DataFrame(rows)

    def constant_dataset(self) -> xr.Dataset:
        """Everything but the answers that a model sees, respondents by position (no ids):
        known sizes, N, weights, each respondent's area index, the area table; the
        denominators in ``attrs``. :meth:`from_datasets` is the inverse."""
        ds = xr.Dataset(
            {
                "known_size": ("known", self.known_sizes.loc[list(self.known)].to_numpy(float)),
                "total_population": ((), float(self.total_population)),
            },
            coords={"known": list(self.known), "hidden": list(self.hidden)},
            attrs={"denominators": json.dumps(self.denominators)},
        )
        if self.weights is not None:
            ds["weight"] = ("respondent", self.weights.to_numpy(float))
        if self.area is not None and self.area_table is not None:
            pos = {a: j for j, a in enumerate(self.areas)}
            at = self.area_table.select_dtypes("number")  # text columns (e.g. a region) stay out
            ds = ds.assign_coords(area=self.areas, area_column=[str(c) for c in at.columns])
            ds["area_of"] = ("respondent", np.array([pos[str(a)] for a in self.area], int))
            ds["area_table"] = (("area", "area_column"), at.to_numpy(float))
            if self.roster is not None:
                rc = self.roster.counts.reindex(self.areas)
                ds = ds.assign_coords(roster_column=[str(c) for c in rc.columns])
                ds["roster_count"] = (("area", "roster_column"), rc.to_numpy(float))
        if self.hidden_sample is not None:
            ds = ds.merge(self.hidden_sample.dataset(), combine_attrs="no_conflicts")
        if self.covariates is not None and self.covariates.shape[1]:
            ds = ds.assign_coords(covariate=[str(c) for c in self.covariates.columns])
            ds["covariates"] = (("respondent", "covariate"), self.covariates.to_numpy(float))
        if "respondent" in ds.dims:
            ds = ds.assign_coords(respondent=np.arange(self.n))
        return ds

    @classmethod
    def from_datasets(
        cls, observed: xr.Dataset, constant: xr.Dataset, known: list[str], hidden: list[str]
    ) -> ARD:
        """Rebuild the data a model saw from a fit's ``observed_data`` and ``constant_data``
        (respondents labelled by position)."""
        y = observed["y"].transpose("respondent", "group")
        index = pd.Index([str(int(i)) for i in y["respondent"].values], name="respondent")
        counts = pd.DataFrame(y.values, index=index, columns=[str(g) for g in y["group"].values])
        counts = counts[list(known) + list(hidden)]
        sizes = pd.Series(constant["known_size"].values, index=[str(k) for k in known])
        weights = area = area_table = None
        if "weight" in constant:
            weights = pd.Series(constant["weight"].values, index=index)
        if "area_table" in constant:
            areas = [str(a) for a in constant["area"].values]
            area_table = pd.DataFrame(
                constant["area_table"].values,
                index=pd.Index(areas, name="area"),
                columns=[str(c) for c in constant["area_column"].values],
            )
            area = pd.Series([areas[j] for j in constant["area_of"].values], index=index)
        roster = None
        if "roster_count" in constant:
            rc = constant["roster_count"]
            roster = Roster(
                area_table=area_table,
                counts=pd.DataFrame(
                    rc.values.astype(int),
                    index=pd.Index(areas, name="area"),
                    columns=[str(c) for c in rc["roster_column"].values],
                ),
            )
        covariates = None
        if "covariates" in constant:
            covariates = pd.DataFrame(
                constant["covariates"].transpose("respondent", "covariate").values,
                index=index,
                columns=[str(c) for c in constant["covariate"].values],
            )
        dens = constant.attrs.get("denominators") or "{}"
        return cls(
            counts=counts,
            known=tuple(known),
            hidden=tuple(hidden),
            known_sizes=sizes,
            total_population=float(constant["total_population"].values),
            weights=weights,
            area=area,
            area_table=area_table,
            denominators=json.loads(dens) if isinstance(dens, str) else dict(dens),
            source="saved fit",
            roster=roster,
            covariates=covariates,
            hidden_sample=HiddenSample.from_dataset(constant),
        )


# ---------------------------------------------------------------------------------------------
# loading and validation
# ---------------------------------------------------------------------------------------------


def _read_known_sizes(spec: Spec, data: dict) -> pd.Series:
    path = spec.resolve(data["known_sizes"])
    ks = read_table(path, "known_sizes")
    gcol = data.get("known_sizes_group_column", ks.columns[0])
    scol = data.get("known_sizes_size_column", "size")
    for c in (gcol, scol):
        if c not in ks.columns:
            raise DataError(f"known_sizes file {path}: column '{c}' not found")
    sizes = pd.to_numeric(ks[scol], errors="coerce")
    sizes = sizes.where(np.isfinite(sizes.astype(float)))
    if sizes.isna().any():
        rows = ks.index[sizes.isna()] + 2
        raise DataError(f"known_sizes file {path}: non-numeric size in lines {format_rows(rows)}")
    s = pd.Series(sizes.to_numpy(float), index=ks[gcol].astype(str), name="size")
    dup = s.index[s.index.duplicated()]
    if len(dup):
        raise DataError(f"known_sizes file {path}: group listed twice: {format_rows(dup)}")
    return s


def _read_area_table(spec: Spec, data: dict) -> pd.DataFrame:
    path = spec.resolve(data["area_table"])
    at = read_table(path, "area_table")
    for c in ("area", "population"):
        if c not in at.columns:
            raise DataError(f"area_table file {path}: column '{c}' not found")
    at = at.copy()
    at["area"] = labels(at["area"])
    dup = at["area"][at["area"].duplicated()]
    if len(dup):
        raise DataError(f"area_table file {path}: area listed twice: {format_rows(dup)}")
    at = at.set_index("area")
    pop = pd.to_numeric(at["population"], errors="coerce")
    bad = at.index[~((pop > 0) & np.isfinite(pop))]
    if len(bad):
        raise DataError(
            f"area_table file {path}: population must be a finite number > 0 in areas "
            f"{format_rows(bad)}"
        )
    at["population"] = pop.astype(float)
    return at


def load_survey(spec: Spec) -> ARD:
    """Read and validate the survey and known sizes named by a spec.

    Returns the :class:`ARD` before pre-processing (missing answers still NaN, nothing top-coded).
    """
    data = spec.section("data")
    groups = spec.section("groups")
    survey_path = spec.resolve(data["survey"])
    # Rows are labelled by position (1 = first respondent; line 2 of a CSV file): every message
    # names rows this way, never by respondent id (an integer index is also light on memory).
    df, where = read_rows(survey_path, "survey", "survey", "respondent")
    id_col = data.get("id", "id" if "id" in df.columns else None)
    ids = None
    if id_col is not None:
        col = column(df, id_col, where, "[data] id")
        if col.isna().any():
            raise DataError(
                f"{where}: respondent id column '{id_col}' is empty in rows "
                f"{format_rows(col.index[col.isna()])}"
            )
        ids = labels(col).rename("id")
        dup = ids.duplicated(keep=False)
        if dup.any():
            raise DataError(
                f"{where}: respondent ids in column '{id_col}' are not unique: rows "
                f"{format_rows(ids.index[dup])} repeat an id"
            )

    # sizes
    area_table = _read_area_table(spec, data) if "area_table" in data else None
    roster = None
    if "roster" in data:
        roster = roster_from_spec(spec, area_table)
        area_table = roster.area_table
    if "known_sizes" in data:
        known_sizes = _read_known_sizes(spec, data)
    else:
        known_sizes = pd.Series(dtype=float)
    hidden = list(groups["hidden"])
    known = groups.get("known")
    if known is None:
        if len(known_sizes):
            known = list(known_sizes.index)
        else:
            reserved = {"population"} | {
                v for v in groups.get("denominators", {}).values() if isinstance(v, str)
            }
            if roster is not None:
                reserved.add(roster.settings.get("household_size"))
            numeric = area_table.select_dtypes("number").columns  # not e.g. a region's name
            known = [c for c in area_table.columns if c not in reserved and c in numeric]
    if roster is not None:
        roster.check_known(known)
    both = sorted(set(known) & set(hidden))
    if both:
        raise DataError(f"group(s) listed as both known and hidden: {', '.join(both)}")
    if area_table is not None:
        missing = [k for k in known if k not in area_table.columns and k not in known_sizes.index]
        if missing:
            raise DataError(f"area_table: no size column for known group(s) {', '.join(missing)}")
        area_sizes = {}
        for k in known:
            if k in area_table.columns:
                col = pd.to_numeric(area_table[k], errors="coerce")
                bad = area_table.index[~((col >= 0) & np.isfinite(col))]
                if len(bad):
                    raise DataError(
                        f"area_table: column '{k}' needs sizes >= 0; bad in areas {format_rows(bad)}"
                    )
                over = area_table.index[col > area_table["population"]]
                if len(over):
                    raise DataError(
                        f"area_table: column '{k}' is larger than the population in areas "
                        f"{format_rows(over)}"
                    )
                area_table[k] = col.astype(float)
                area_sizes[k] = float(col.sum())
        if area_sizes:
            known_sizes = pd.concat(
                [known_sizes.drop(list(area_sizes), errors="ignore"), pd.Series(area_sizes)]
            )
    missing = [k for k in known if k not in known_sizes.index]
    if missing:
        raise DataError(
            f"known group(s) without a size: {', '.join(missing)} (not in known_sizes/area_table)"
        )
    known_sizes = known_sizes.loc[known].astype(float)

    total = data.get("total_population")
    if total is None:
        if area_table is None:
            raise SpecError(f"{spec.where}: [data] total_population is required without area_table")
        total = float(area_table["population"].sum())
    total = float(total)
    bad = known_sizes.index[(known_sizes <= 0) | (known_sizes > total)]
    if len(bad):
        files = [str(spec.resolve(data[k])) for k in ("known_sizes", "area_table") if k in data]
        raise DataError(
            f"{' / '.join(files)}: known size must be > 0 and <= total population {total:g}: "
            + ", ".join(f"{g}={known_sizes[g]:g}" for g in bad[:5])
        )

    # A group built by [preprocess] combine (e.g. victims = max of two questions) need not have
    # a column yet: its source columns are validated and carried instead.
    combine = spec.section("preprocess").get("combine") or {}
    count_cols = []
    for g in known + hidden:
        rule = combine.get(g) if isinstance(combine, dict) else None
        if g not in df.columns and isinstance(rule, dict) and rule.get("sources"):
            count_cols.extend(s for s in rule["sources"] if s not in count_cols)
        elif g not in count_cols:
            count_cols.append(g)
    counts = count_columns(df, count_cols, where)

    def design(key: str) -> pd.Series | None:
        col = data.get(key)
        return None if col is None else column(df, col, where, f"[data] {key}")

    weights = design("weight")
    if weights is not None:
        w = numbers(weights, where, f"weight column '{data['weight']}'")
        bad = ~(np.isfinite(w) & (w > 0))
        if bad.any():
            raise DataError(
                f"{where}: weight column '{data['weight']}' is missing, infinite or <= 0 in rows "
                f"{format_rows(weights.index[bad])}"
            )
        weights = pd.Series(w, index=weights.index, name="weight")
    strata = design("strata")
    cluster = design("cluster")
    for name, s in (("strata", strata), ("cluster", cluster)):
        if s is not None and s.isna().any():
            raise DataError(
                f"{where}: {name} column '{data[name]}' is missing in rows "
                f"{format_rows(s.index[s.isna()])}"
            )
    area = design("area")
    if area is not None:
        if area.isna().any():
            raise DataError(
                f"{where}: area column '{data['area']}' is missing in rows "
                f"{format_rows(area.index[area.isna()])}"
            )
        area = labels(area).rename("area")
        if area_table is not None:
            unknown = sorted(set(area) - set(area_table.index))
            if unknown:
                raise DataError(
                    f"{where}: area(s) {format_rows(unknown)} in column '{data['area']}' are "
                    f"missing from the area table"
                )
    elif area_table is not None:
        key = "roster" if roster is not None else "area_table"
        raise SpecError(f"{spec.where}: [data] {key} needs an area column ([data] area)")

    denominators = dict(groups.get("denominators", {}))
    for g, den in denominators.items():
        if g not in hidden:
            raise SpecError(
                f"{spec.where}: [groups.denominators] '{g}' is not a hidden group "
                f"({', '.join(hidden)})"
            )
        if isinstance(den, str):
            if area_table is None or den not in area_table.columns:
                raise DataError(
                    f"[groups.denominators] {g} = '{den}': no such column in the area table"
                )
            col = pd.to_numeric(area_table[den], errors="coerce")
            bad = area_table.index[~(col > 0)]
            if len(bad):
                raise DataError(
                    f"area_table: denominator column '{den}' must be > 0; bad in areas "
                    f"{format_rows(bad)}"
                )
            area_table[den] = col.astype(float)
        elif not isinstance(den, (int, float)) or den <= 0 or den > total:
            raise DataError(
                f"[groups.denominators] {g} = {den!r}: must be a number in (0, {total:g}] or an "
                "area-table column name"
            )

    covariates = None
    if data.get("covariates"):
        cols = {}
        for c in data["covariates"]:
            x = numbers(column(df, c, where, "[data] covariates"), where, f"covariate '{c}'")
            bad = np.flatnonzero(~np.isfinite(x))
            if len(bad):
                raise DataError(
                    f"{where}: covariate '{c}' is missing or not finite in rows "
                    f"{format_rows(bad + 1)} (the models need every respondent's covariates)"
                )
            cols[c] = x
        covariates = pd.DataFrame(cols, index=df.index)

    return ARD(
        counts=counts,
        known=tuple(known),
        hidden=tuple(hidden),
        known_sizes=known_sizes,
        total_population=total,
        weights=weights,
        strata=strata,
        cluster=cluster,
        area=area,
        area_table=area_table,
        denominators=denominators,
        covariates=covariates,
        source=str(survey_path),
        ids=ids,
        roster=roster,
        hidden_sample=load_hidden_sample(spec, known, hidden, known_sizes),
    )


def example_dir() -> Path:
    """Folder of the bundled example survey (Rwanda design, MIT licence)."""
    from importlib.resources import files

    return Path(str(files("bayes_nsum") / "data" / "rwanda"))
