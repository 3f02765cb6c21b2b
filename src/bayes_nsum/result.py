"""The result of a Bayesian fit: DataTree, summaries, diagnostics and files.

``NSUMResult`` is what ``model.fit()`` returns and what ``bayes-nsum fit`` writes from:

* ``posterior.nc`` -- the ArviZ DataTree (posterior with derived quantities, sample_stats,
  prior, observed data); provenance in its attrs;
* ``summary.csv`` -- one row per (area, group, quantity) with posterior median (``estimate``),
  mean, interval, R-hat and ESS, and for sizes, prevalences and "1 in X" the name of the
  population the prevalence is relative to (``denominator``, :func:`denominator_label`);
* ``diagnostics.json`` -- every convergence check with its value, threshold and verdict.

Per-area rows of areas with fewer analysed respondents than ``[output] min_area_respondents``
are suppressed in every output table (:func:`suppress_small_areas`): their numbers are left
empty and the ``suppressed`` column says so.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from . import mcmc_stats
from .disclosure import suppress_small_areas
from .io import atomic_write, write_csv, write_json
from .spec import DIAGNOSTIC_DEFAULTS

SUMMARY_COLUMNS = [
    "area",
    "group",
    "quantity",
    "estimate",
    "mean",
    "lower",
    "upper",
    "interval_prob",
    "r_hat",
    "ess_bulk",
    "ess_tail",
    "denominator",
]

#: posterior variable -> (quantity name, dim holding the group names)
SUMMARY_QUANTITIES = {
    "size": "hidden",
    "prevalence": "hidden",
    "one_in_x": "hidden",
    "tau": "hidden",
    "delta": "hidden",
    "rho": "group",
    "omega": "group",
    "sigma_area": "group",
    "bias_sd": "group",
    "theta": "covariate",  # covariate effects on log degree (per sd; correlated model)
    "theta_per_unit": "covariate",  # the same per unit of the covariate
}
SCALARS = ("mu", "sigma", "gamma", "rho_known", "sigma_alpha", "sigma_beta")
#: quantities relative to a hidden group's denominator population (``denominator`` column)
DENOMINATED = ("size", "prevalence", "one_in_x")
#: ``denominator`` of a hidden group whose spec names none
FRAME_POPULATION = "frame population"


def denominator_label(value: float | str | None) -> str:
    """The name of a hidden group's denominator population, as ``summary.csv`` writes it.

    Parameters
    ----------
    value : number, str or None
        The group's entry of ``[groups] denominators``: None (absent: the frame population),
        an area-table column name, or a national number.

    Returns
    -------
    str
        ``"frame population"``; the column name as written (e.g. ``"children"``: name the
        column by the plural noun the report should use); or ``"denominator 2,600,000"``.
    """
    if value is None:
        return FRAME_POPULATION
    if isinstance(value, str):
        return value
    return f"denominator {float(value):,.0f}"


def denominator_labels(
    denominators: Mapping[str, float | str] | None, hidden: Sequence[str]
) -> dict[str, str]:
    """Hidden group -> :func:`denominator_label` of its denominator (``denominators`` as the
    spec's ``[groups] denominators``; groups it does not list use the frame population)."""
    dens = dict(denominators or {})
    return {str(h): denominator_label(dens.get(str(h))) for h in hidden}


SAMPLE = ("chain", "draw")


def array_diagnostics(arr: np.ndarray) -> dict[str, np.ndarray]:
    """R-hat (rank-normalised), bulk and tail ESS and MCSE of the mean for draws shaped
    (chain, draw, ...); NaN where a quantity is constant or undefined (one chain: no R-hat)."""
    arr = np.asarray(arr, float)
    if arr.ndim == 2:
        arr = arr[..., None]
    da = xr.DataArray(arr, dims=(*SAMPLE, *[f"d{i}" for i in range(arr.ndim - 2)]))
    out = {k: v.values for k, v in _diagnostics(da).items()}
    return {k: v.reshape(arr.shape[2:]) for k, v in out.items()}


def _diagnostics(da: xr.DataArray) -> dict[str, xr.DataArray]:
    """R-hat, bulk and tail ESS, MCSE of the mean over (chain, draw), vectorised over the other
    dims (:func:`bayes_nsum.mcmc_stats.diagnostics`: ArviZ's estimators, computed for every
    quantity at once); NaN where the draws are constant (a fixed parameter)."""
    const = (da.max(SAMPLE) == da.min(SAMPLE)) | da.isnull().any(SAMPLE)
    with np.errstate(all="ignore"):
        arrays = mcmc_stats.diagnostics(da.transpose(*SAMPLE, *const.dims).values)
    out = {k: xr.DataArray(v, dims=const.dims, coords=const.coords) for k, v in arrays.items()}
    return {k: v.astype(float).where(~const) for k, v in out.items()}


#: derived quantities that are monotone transforms of ``size`` (per group and area): their
#: rank-normalised R-hat and bulk and tail ESS equal size's, so they are computed once
MONOTONE_OF_SIZE = ("prevalence", "one_in_x")


def _stats(da: xr.DataArray, prob: float, kind: str, diag=None) -> xr.Dataset:
    """The summary columns of one variable, vectorised over its non-sample dims (``diag``:
    its convergence diagnostics when already known)."""
    ci = da.azstats.hdi(prob=prob) if kind == "hdi" else da.azstats.eti(prob=prob)
    diag = _diagnostics(da) if diag is None else diag
    return xr.Dataset(
        {
            "estimate": da.median(SAMPLE),
            "mean": da.mean(SAMPLE),
            "lower": ci.sel(ci_bound="lower", drop=True),
            "upper": ci.sel(ci_bound="upper", drop=True),
            "r_hat": diag["r_hat"],
            "ess_bulk": diag["ess_bulk"],
            "ess_tail": diag["ess_tail"],
        }
    )


def summarize_posterior(
    post: xr.Dataset,
    prob: float = 0.9,
    kind: str = "eti",
    area_dim: str = "area",
    denominators: Mapping[str, str] | None = None,
    diag_cache: Mapping[str, dict] | None = None,
) -> pd.DataFrame:
    """Tidy summary table of the quantities an analyst reports (see :data:`SUMMARY_COLUMNS`);
    one vectorised ArviZ computation per variable.

    Parameters
    ----------
    post : xarray.Dataset
        Posterior draws with the derived quantities.
    prob : float
        Interval probability.
    kind : {"eti", "hdi"}
        Equal-tailed or highest-density interval.
    area_dim : str
        Name of the area dim of per-area variables.
    denominators : mapping, optional
        Hidden group -> name of its denominator population (:func:`denominator_labels`),
        written in the ``denominator`` column of the group's size, prevalence and "1 in X"
        rows (per area too: the area's part of that population). Empty where not given and
        for parameter rows.
    diag_cache : mapping, optional
        Variable name -> its diagnostics as computed by :func:`compute_diagnostics` (same
        draws), which are then not computed again.
    """
    parts = []
    known_diag: dict[str, dict] = {}

    def add(da: xr.DataArray, gdim: str | None, quantity: str) -> None:
        base = da.name.replace(quantity, "size", 1) if quantity in MONOTONE_OF_SIZE else None
        known = known_diag.get(base) if base else None
        st = _stats(da, prob, kind, known or (diag_cache or {}).get(da.name))
        if quantity == "size":
            known_diag[da.name] = {k: st[k] for k in ("r_hat", "ess_bulk", "ess_tail")}
        frame = st.to_dataframe().reset_index() if gdim or area_dim in da.dims else None
        if frame is None:
            frame = pd.DataFrame([{k: float(v) for k, v in st.items()}])
        frame["group"] = frame[gdim].astype(str) if gdim else ""
        frame["area"] = frame[area_dim].astype(str) if area_dim in da.dims else ""
        frame["quantity"] = quantity
        parts.append(frame)

    for var, gdim in SUMMARY_QUANTITIES.items():
        for name in (var, f"{var}_area"):
            if name not in post:
                continue
            da = post[name]
            # a per-group parameter may be indexed by hidden groups only (e.g. pooled)
            gd = gdim if gdim in da.dims else ("hidden" if "hidden" in da.dims else None)
            if gd is not None and set(da.dims) <= {*SAMPLE, gd, area_dim}:
                add(
                    da.transpose(*SAMPLE, gd, *([area_dim] if area_dim in da.dims else [])), gd, var
                )
    for var in SCALARS:
        if var in post and set(post[var].dims) == set(SAMPLE):
            add(post[var], None, var)
    if not parts:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    out["interval_prob"] = prob
    labels = dict(denominators or {})
    out["denominator"] = [
        labels.get(g, "") if q in DENOMINATED else ""
        for g, q in zip(out["group"], out["quantity"], strict=True)
    ]
    return out[SUMMARY_COLUMNS]


def _param_label(name: str, index: tuple) -> str:
    return name if not index else f"{name}[{', '.join(map(str, index))}]"


#: NumPyro's default maximal tree depth (the numpyro backend does not change it); PyMC reports
#: NumPyro's depths as floor(log2(steps)) + 1, which is 10 for a tree of 1,023 steps
NUMPYRO_MAX_TREE_DEPTH = 10


def compute_diagnostics(
    tree: xr.DataTree,
    thresholds: dict[str, Any] | None = None,
    var_names=None,
    cache: dict[str, dict] | None = None,
) -> dict[str, Any]:
    """Convergence checks of a fit: R-hat, ESS, MCSE, divergences, tree depth, E-BFMI.

    ``cache`` (variable name -> its R-hat, ESS and MCSE arrays) is read and filled, so that the
    summary table reuses them (:func:`summarize_posterior`'s ``diag_cache``).

    Returns a JSON-able dict with ``checks`` (name, value, threshold, passed, worst parameters),
    top-level ``max_r_hat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences`` and ``passed``.
    """
    th = {**DIAGNOSTIC_DEFAULTS, **(thresholds or {})}
    post = tree["posterior"].to_dataset()
    stats = tree["sample_stats"].to_dataset()
    # Per-respondent degrees are excluded (thousands of nuisance values; their hyperparameters
    # are checked), and so are ``*_raw`` variables: unconstrained raw effects whose only
    # non-identified direction (e.g. the mean of the overdispersed model's respondent effects,
    # removed by centring) is not part of any reported quantity.
    # Prevalence and "1 in X" are monotone transforms of the size (per group and area), whose
    # rank-based R-hat and ESS they share: they are checked through the size.
    names = var_names or [
        v
        for v in post.data_vars
        if not v.startswith("log_degree")
        and v != "degree"
        and not v.endswith("_raw")
        and not (
            any(v in (q, f"{q}_area") for q in MONOTONE_OF_SIZE)
            and v.replace(v.split("_area")[0], "size", 1) in post
        )
    ]
    rows: list[dict[str, Any]] = []
    for v in names:
        da = post[v]
        extra = [d for d in da.dims if d not in SAMPLE]
        diag = cache[v] if cache is not None and v in cache else _diagnostics(da)
        if cache is not None:
            cache[v] = diag
        frame = xr.Dataset(diag).to_dataframe().reset_index() if extra else None
        if frame is None:
            frame = pd.DataFrame([{k: float(x) for k, x in diag.items()}])
        frame["param"] = (
            [_param_label(v, tuple(r)) for r in frame[extra].itertuples(False)] if extra else v
        )
        rows.append(frame.dropna(subset=["ess_bulk"])[["param", *diag]])
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    n_draws = int(stats.sizes.get("chain", 1) * stats.sizes.get("draw", 1))
    div = int(np.asarray(stats["diverging"]).sum()) if "diverging" in stats else 0
    if "maxdepth_reached" in stats:
        depth_share = float(np.asarray(stats["maxdepth_reached"]).mean())
    elif "reached_max_treedepth" in stats:
        depth_share = float(np.asarray(stats["reached_max_treedepth"]).mean())
    elif "tree_depth" in stats:  # NumPyro through PyMC: depths only, at NumPyro's maximum of 10
        depth_share = float((np.asarray(stats["tree_depth"]) >= NUMPYRO_MAX_TREE_DEPTH).mean())
    else:
        depth_share = 0.0
    min_bfmi = float("nan")
    if "energy" in stats:
        bfmi = az.bfmi(xr.DataTree.from_dict({"sample_stats": stats[["energy"]]}))
        min_bfmi = float(np.min(np.asarray(bfmi["energy"])))

    def worst(col: str, largest: bool) -> list[str]:
        if table.empty:
            return []
        t = table.dropna(subset=[col])
        t = t.nlargest(3, col) if largest else t.nsmallest(3, col)
        return [f"{r.param} ({getattr(r, col):.3g})" for r in t.itertuples()]

    def col(name: str, how: str) -> float:
        return float(getattr(table[name], how)()) if not table.empty else float("nan")

    def check(name, value, threshold, direction, passed, worst=()) -> dict[str, Any]:
        return {
            "check": name,
            "value": value,
            "threshold": threshold,
            "direction": direction,
            "passed": bool(passed),
            "worst": list(worst),
        }

    max_rhat, min_eb = col("r_hat", "max"), col("ess_bulk", "min")
    min_et, max_mcse = col("ess_tail", "min"), col("mcse_mean", "max")
    one_chain = int(stats.sizes.get("chain", 1)) < 2
    checks = [
        check(
            "r_hat",
            max_rhat,
            th["max_r_hat"],
            "<=",
            (not np.isnan(max_rhat) and max_rhat <= th["max_r_hat"]) or one_chain,
            worst("r_hat", True),
        ),
        check(
            "ess_bulk",
            min_eb,
            th["min_ess_bulk"],
            ">=",
            min_eb >= th["min_ess_bulk"],
            worst("ess_bulk", False),
        ),
        check(
            "ess_tail",
            min_et,
            th["min_ess_tail"],
            ">=",
            min_et >= th["min_ess_tail"],
            worst("ess_tail", False),
        ),
        check("divergences", div, th["max_divergences"], "<=", div <= th["max_divergences"]),
        check(
            "treedepth_share",
            depth_share,
            th["max_treedepth_share"],
            "<=",
            depth_share <= th["max_treedepth_share"],
        ),
        check(
            "e_bfmi",
            min_bfmi,
            th["min_bfmi"],
            ">=",
            np.isnan(min_bfmi) or min_bfmi >= th["min_bfmi"],
        ),
        check("mcse_mean", max_mcse, None, "info", True, worst("mcse_mean", True)),
    ]
    passed = all(c["passed"] for c in checks)
    return {
        "passed": passed,
        "max_r_hat": max_rhat,
        "min_ess_bulk": min_eb,
        "min_ess_tail": min_et,
        "divergences": div,
        "treedepth_share": depth_share,
        "min_e_bfmi": min_bfmi,
        "n_draws": n_draws,
        "checks": checks,
        "thresholds": th,
        "advice": _advice(checks),
    }


def _advice(checks: list[dict[str, Any]]) -> list[str]:
    out = []
    failed = {c["check"]: c for c in checks if not c["passed"]}
    if "r_hat" in failed or "ess_bulk" in failed or "ess_tail" in failed:
        bad = sorted(
            {
                w.split(" (")[0]
                for k in ("r_hat", "ess_bulk", "ess_tail")
                if k in failed
                for w in failed[k]["worst"]
            }
        )
        out.append(
            f"chains have not mixed for {', '.join(bad)}: run longer (--draws/--tune), "
            "check the priors of those parameters, or use a simpler model"
        )
    if "divergences" in failed:
        out.append(
            "divergent transitions: raise [sampler] target_accept (e.g. 0.95 or 0.99) or "
            "use more informative priors; do not report results with divergences"
        )
    if "treedepth_share" in failed:
        out.append(
            "many draws hit the maximum tree depth: the posterior is badly scaled; "
            "tune longer or reparametrise"
        )
    if "e_bfmi" in failed:
        out.append(
            "low E-BFMI: the sampler explores the energy distribution poorly; "
            "consider a non-centred parametrisation or stronger priors on scales"
        )
    return out


@dataclass
class NSUMResult:
    """A fitted model: the DataTree plus the objects that produced it."""

    tree: xr.DataTree
    model: Any = None
    settings: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def posterior(self) -> xr.Dataset:
        return self.tree["posterior"].to_dataset()

    def summary(self, prob: float = 0.9, kind: str = "eti") -> pd.DataFrame:
        """Tidy table of sizes, prevalences, "1 in X" and main parameters; each size,
        prevalence and "1 in X" row names its denominator population (:meth:`denominators`)."""
        return summarize_posterior(
            self.posterior,
            prob,
            kind,
            denominators=self.denominators(),
            diag_cache=self.__dict__.get("_var_diag"),
        )

    def denominators(self) -> dict[str, str]:
        """Hidden group -> the name of its denominator population (:func:`denominator_label`).

        Read from the model's data, or for a loaded fit (no model) from the tree's
        ``constant_data`` (its ``denominators`` attribute, JSON text); empty when neither is
        there (the ``denominator`` column is then left empty rather than guessed).
        """
        data = getattr(self.model, "data", None)
        if data is not None:
            return denominator_labels(data.denominators, data.hidden)
        if "constant_data" not in self.tree.children:
            return {}
        const = self.tree["constant_data"].to_dataset()
        raw = const.attrs.get("denominators") or "{}"
        try:
            dens = json.loads(raw) if isinstance(raw, str) else dict(raw)
        except (TypeError, ValueError):
            return {}
        source = const if "hidden" in const.coords else self.posterior
        hidden = [str(h) for h in source["hidden"].values] if "hidden" in source.coords else []
        return denominator_labels(dens, hidden or list(dens))

    def diagnostics(self, thresholds: dict[str, Any] | None = None) -> dict[str, Any]:
        """Convergence checks (:func:`compute_diagnostics`; computed once per thresholds)."""
        key = json.dumps(thresholds or {}, sort_keys=True, default=str)
        cache = self.__dict__.setdefault("_diag_cache", {})
        if key not in cache:
            var_diag = self.__dict__.setdefault("_var_diag", {})  # reused by summary()
            cache[key] = compute_diagnostics(self.tree, thresholds, cache=var_diag)
        return copy.deepcopy(cache[key])

    def hidden_sizes(self, prob: float = 0.9) -> pd.DataFrame:
        s = self.summary(prob)
        return s[(s.quantity == "size") & (s.area == "")].set_index("group")

    def save_posterior(self, path: str | Path, converged: bool | None = None) -> Path:
        """Write the tree as ``posterior.nc`` (atomically; attributes as JSON text)."""
        tree = self.tree.copy()
        extra = {} if converged is None else {"converged": int(converged)}
        tree.attrs = {
            k: (json.dumps(v, default=str) if not isinstance(v, (str, int, float)) else v)
            for k, v in {**tree.attrs, **self.provenance, **extra}.items()
        }
        return atomic_write(path, lambda p: tree.to_netcdf(p, engine="h5netcdf"))

    def save(
        self,
        directory: str | Path,
        prob: float = 0.9,
        kind: str = "eti",
        thresholds: dict[str, Any] | None = None,
        area_respondents: Mapping[str, int] | None = None,
        min_area_respondents: int = 1,
    ) -> dict[str, Path]:
        """Write posterior.nc (first), summary.csv and diagnostics.json (atomically).

        ``area_respondents`` (area -> analysed respondents) and ``min_area_respondents``
        suppress the per-area summary rows of small areas (:func:`suppress_small_areas`).
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        diag = self.diagnostics(thresholds)
        summary = self.summary(prob, kind)
        summary["converged"] = diag["passed"]
        if area_respondents is not None:
            summary = suppress_small_areas(summary, area_respondents, min_area_respondents)
        return {
            "posterior": self.save_posterior(directory / "posterior.nc", diag["passed"]),
            "summary": write_csv(summary, directory / "summary.csv"),
            "diagnostics": write_json(diag, directory / "diagnostics.json"),
        }


def load_result(directory: str | Path) -> NSUMResult:
    """Read a saved fit (posterior.nc) back."""
    tree = xr.open_datatree(Path(directory) / "posterior.nc", engine="h5netcdf").load()
    return NSUMResult(tree=tree)
