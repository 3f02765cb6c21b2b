r"""A sample of the hidden population (generalized NSUM; Feehan & Salganik 2016).

The generalized scale-up estimator replaces the frame survey's unknown visibility of a hidden
group by an estimate from a second survey of members of the hidden group H. Each sampled member
j answers, for every known group k of the frame survey, two questions:

* :math:`y_{jk}`: how many members of group k they know (the same question as the frame
  survey; the column has the known group's name), and
* :math:`\tilde v_{jk}`: how many of those know that j belongs to H (column
  ``k + [data] hidden_sample_aware_suffix``, default ``k_aware``).

The known groups are the "probe alters" of Feehan & Salganik's known-population estimator of
the visibility: :math:`\sum_k \tilde v_{jk}` is the number of in-reports j would give the
members of the known groups, scaled up to the frame population by :math:`N / \sum_k N_k`.

Spec keys: ``[data] hidden_sample`` (the file), ``hidden_sample_group`` (the hidden group it
samples; default the only hidden group) and ``hidden_sample_aware_suffix``. The file's rows
are members, named by position (row 1 is the first member); no id is read and no message
quotes an answer. Each pair of answers is given or missing together, and
:math:`\tilde v_{jk} \le y_{jk}`.

References
----------
Feehan, D. M. and Salganik, M. J. (2016). Generalizing the network scale-up method: a new
estimator for the size of hidden populations. *Sociological Methodology* 46(1), 153-186.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from .columns import counts as count_columns
from .errors import DataError, SpecError, format_rows
from .io import read_rows
from .spec import MAX_ANSWER, Spec

#: default suffix of the "how many of them know your status" columns
AWARE_SUFFIX = "_aware"


@dataclass(frozen=True)
class HiddenSample:
    """Answers of a sample of hidden-population members about the known groups.

    Attributes
    ----------
    group : str
        The hidden group the members belong to.
    known_answers : DataFrame
        Index ``member`` (row position, 1 = first), one float column per known group:
        :math:`y_{jk}`, NaN where missing.
    aware : DataFrame
        Same shape: :math:`\\tilde v_{jk}`, how many of those know j's membership.
    source : str
        Where the sample came from (messages, provenance).
    """

    group: str
    known_answers: pd.DataFrame
    aware: pd.DataFrame
    source: str = "hidden sample"

    @property
    def n(self) -> int:
        return len(self.known_answers)

    @property
    def known(self) -> list[str]:
        return [str(c) for c in self.known_answers.columns]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(y, v)``: the answers (members x known groups) as floats, NaN where missing."""
        return self.known_answers.to_numpy(float), self.aware.to_numpy(float)

    def dataset(self) -> xr.Dataset:
        """The sample by position (no ids) for a fit's ``constant_data``."""
        y, v = self.arrays()
        dims = ("hidden_member", "hidden_known")
        return xr.Dataset(
            {"hidden_sample_y": (dims, y), "hidden_sample_aware": (dims, v)},
            coords={"hidden_member": np.arange(self.n), "hidden_known": self.known},
            attrs={"hidden_sample_group": self.group},
        )

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> HiddenSample | None:
        """Inverse of :meth:`dataset` (None when ``ds`` holds no hidden sample)."""
        if "hidden_sample_y" not in ds:
            return None
        known = [str(k) for k in ds["hidden_known"].values]
        index = pd.RangeIndex(1, ds.sizes["hidden_member"] + 1, name="member")
        y = ds["hidden_sample_y"].transpose("hidden_member", "hidden_known").values
        v = ds["hidden_sample_aware"].transpose("hidden_member", "hidden_known").values
        return cls(
            group=str(ds.attrs["hidden_sample_group"]),
            known_answers=pd.DataFrame(y, index=index, columns=known),
            aware=pd.DataFrame(v, index=index, columns=known),
            source="saved fit",
        )

    def with_known(self, known: list[str]) -> HiddenSample:
        """The sample restricted to the known groups ``known`` (each must be a column)."""
        missing = [k for k in known if k not in self.known]
        if missing:
            raise DataError(f"{self.source}: no column for known group(s) {', '.join(missing)}")
        return HiddenSample(self.group, self.known_answers[known], self.aware[known], self.source)


def load_hidden_sample(
    spec: Spec, known: list[str], hidden: list[str], known_sizes: pd.Series
) -> HiddenSample | None:
    """Read and check ``[data] hidden_sample`` (None when the spec names none).

    Every problem is one :class:`~bayes_nsum.errors.DataError` line naming the file, the
    column and the rows by position: a missing column, answers that are not counts, a pair
    given on one side only, more aware contacts than contacts, an answer above the known
    group's size or ``[data] max_answer``, or no member with an answered pair.
    """
    data = spec.section("data")
    if "hidden_sample" not in data:
        for key in ("hidden_sample_group", "hidden_sample_aware_suffix"):
            if key in data:
                raise SpecError(
                    f"{spec.where}: [data] {key} is set but [data] names no hidden_sample"
                )
        return None
    group = data.get("hidden_sample_group")
    if group is None:
        if len(hidden) != 1:
            raise SpecError(
                f"{spec.where}: [data] hidden_sample_group must say which hidden group the "
                f"hidden sample samples ({', '.join(hidden)})"
            )
        group = hidden[0]
    if group not in hidden:
        raise SpecError(
            f"{spec.where}: [data] hidden_sample_group '{group}' is not a hidden group "
            f"({', '.join(hidden)})"
        )
    suffix = data.get("hidden_sample_aware_suffix", AWARE_SUFFIX)
    path = spec.resolve(data["hidden_sample"])
    df, where = read_rows(path, "hidden sample", "hidden_sample", "member")
    y = count_columns(df, list(known), where, "known group")
    aware_cols = [f"{k}{suffix}" for k in known]
    v = count_columns(df, aware_cols, where, "aware answers of known group")
    v.columns = list(known)
    max_answer = float(data.get("max_answer", MAX_ANSWER))
    for k in known:
        yk, vk = y[k].to_numpy(), v[k].to_numpy()
        checks = (
            (
                np.isnan(yk) != np.isnan(vk),
                f"'{k}' and '{k}{suffix}' must be both given or both missing",
            ),
            (vk > yk, f"'{k}{suffix}' is larger than '{k}'"),
            (yk > float(known_sizes[k]), f"'{k}' is larger than the known group itself"),
            (yk > max_answer, f"'{k}' is above the ceiling of {max_answer:,.0f}"),
        )
        for mask, why in checks:
            with np.errstate(invalid="ignore"):
                mask = np.asarray(mask, bool)
            if mask.any():
                raise DataError(f"{where}: {why} in rows {format_rows(df.index[mask])}")
    if not (~np.isnan(y.to_numpy())).any():
        raise DataError(f"{where}: no member answered about any known group")
    return HiddenSample(group=str(group), known_answers=y, aware=v, source=str(path))
