"""The result of a Bayesian fit: DataTree, summaries, diagnostics and files.

``NSUMResult`` is what ``model.fit()`` returns and what ``bayes-nsum fit`` writes from:

* ``posterior.nc`` -- the ArviZ DataTree (posterior with derived quantities, sample_stats,
  prior, observed data); provenance in its attrs;
* ``summary.csv`` -- one row per (area, group, quantity) with posterior median (``estimate``),
  mean, interval, R-hat and ESS;
* ``diagnostics.json`` -- every convergence check with its value, threshold and verdict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

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
}
SCALARS = ("mu", "sigma", "gamma", "rho_known", "sigma_alpha", "sigma_beta")


def _interval(x: np.ndarray, prob: float, kind: str) -> tuple[float, float]:
    x = np.asarray(x, float).ravel()
    if kind == "hdi":
        xs = np.sort(x)
        n = len(xs)
        m = max(1, int(np.floor(prob * n)))
        widths = xs[m:] - xs[: n - m]
        j = int(np.argmin(widths))
        return float(xs[j]), float(xs[j + m])
    tail = (1 - prob) / 2
    lo, hi = np.quantile(x, [tail, 1 - tail])
    return float(lo), float(hi)


def array_diagnostics(arr: np.ndarray) -> dict[str, np.ndarray]:
    """R-hat (rank-normalised), bulk and tail ESS and MCSE of the mean for draws shaped
    (chain, draw, ...); NaN where a quantity is constant or undefined (one chain: no R-hat)."""
    arr = np.asarray(arr, float)
    if arr.ndim == 2:
        arr = arr[..., None]
    const = np.all(np.isclose(arr, arr[:1, :1]), axis=(0, 1))
    with np.errstate(all="ignore"):
        out = {
            "r_hat": np.asarray(az.rhat(arr))
            if arr.shape[0] > 1
            else np.full(arr.shape[2:], np.nan),
            "ess_bulk": np.asarray(az.ess(arr, method="bulk")),
            "ess_tail": np.asarray(az.ess(arr, method="tail", prob=(0.05, 0.95))),
            "mcse_mean": np.asarray(az.mcse(arr, method="mean")),
        }
    for k in out:
        out[k] = np.where(const, np.nan, out[k].astype(float))
    return out


def _ess_rhat(da: xr.DataArray) -> tuple[float, float, float]:
    d = array_diagnostics(da.transpose("chain", "draw").values)
    return float(d["r_hat"][0]), float(d["ess_bulk"][0]), float(d["ess_tail"][0])


def summarize_posterior(
    post: xr.Dataset, prob: float = 0.9, kind: str = "eti", area_dim: str = "area"
) -> pd.DataFrame:
    """Tidy summary table of the quantities an analyst reports (see :data:`SUMMARY_COLUMNS`)."""
    rows: list[dict[str, Any]] = []

    def add(da: xr.DataArray, area: str, group: str, quantity: str) -> None:
        x = da.values
        lo, hi = _interval(x, prob, kind)
        rhat, eb, et = _ess_rhat(da)
        rows.append(
            {
                "area": area,
                "group": group,
                "quantity": quantity,
                "estimate": float(np.median(x)),
                "mean": float(np.mean(x)),
                "lower": lo,
                "upper": hi,
                "interval_prob": prob,
                "r_hat": rhat,
                "ess_bulk": eb,
                "ess_tail": et,
            }
        )

    for var, gdim in SUMMARY_QUANTITIES.items():
        for name in (var, f"{var}_area"):
            if name not in post:
                continue
            da = post[name]
            if gdim not in da.dims:
                # a per-group parameter may be indexed by hidden groups only (e.g. pooled)
                gdim = "hidden" if "hidden" in da.dims else None
            if gdim is None:
                continue
            areas = [""] if area_dim not in da.dims else [str(a) for a in da[area_dim].values]
            for g in da[gdim].values:
                for a in areas:
                    sel = da.sel({gdim: g})
                    if a:
                        sel = sel.sel({area_dim: a})
                    add(sel, a, str(g), var)
    for var in SCALARS:
        if var in post and set(post[var].dims) == {"chain", "draw"}:
            add(post[var], "", "", var)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def compute_diagnostics(
    tree: xr.DataTree, thresholds: dict[str, Any] | None = None, var_names=None
) -> dict[str, Any]:
    """Convergence checks of a fit: R-hat, ESS, MCSE, divergences, tree depth, E-BFMI.

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
    names = var_names or [
        v
        for v in post.data_vars
        if not v.startswith("log_degree") and v != "degree" and not v.endswith("_raw")
    ]
    per_param: list[dict[str, Any]] = []
    for v in names:
        da = post[v]
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        stacked = da.stack(_i=extra) if extra else da.expand_dims(_i=[0])
        arr = np.asarray(stacked.transpose("chain", "draw", "_i").values, float)
        dg = array_diagnostics(arr)
        for j in range(arr.shape[2]):
            if np.isnan(dg["ess_bulk"][j]):
                continue
            idx = stacked["_i"].values[j]
            idx = ", ".join(map(str, idx)) if isinstance(idx, tuple) else str(idx)
            label = v if not extra else f"{v}[{idx}]"
            per_param.append({"param": label, **{k: float(dg[k][j]) for k in dg}})
    table = pd.DataFrame(per_param)
    n_draws = int(stats.sizes.get("chain", 1) * stats.sizes.get("draw", 1))
    div = int(np.asarray(stats["diverging"]).sum()) if "diverging" in stats else 0
    if "maxdepth_reached" in stats:
        depth_share = float(np.asarray(stats["maxdepth_reached"]).mean())
    elif "reached_max_treedepth" in stats:
        depth_share = float(np.asarray(stats["reached_max_treedepth"]).mean())
    else:
        depth_share = 0.0
    energy_name = "energy" if "energy" in stats else None
    if energy_name:
        e = np.asarray(stats[energy_name].transpose("chain", "draw").values, float)
        bfmi = np.square(np.diff(e, axis=1)).mean(axis=1) / np.var(e, axis=1)
        min_bfmi = float(np.min(bfmi))
    else:
        min_bfmi = float("nan")

    def worst(col: str, largest: bool) -> list[str]:
        if table.empty:
            return []
        t = table.dropna(subset=[col])
        t = t.nlargest(3, col) if largest else t.nsmallest(3, col)
        return [f"{r.param} ({getattr(r, col):.3g})" for r in t.itertuples()]

    max_rhat = float(table["r_hat"].max()) if not table.empty else float("nan")
    min_eb = float(table["ess_bulk"].min()) if not table.empty else float("nan")
    min_et = float(table["ess_tail"].min()) if not table.empty else float("nan")
    max_mcse = float((table["mcse_mean"]).max()) if not table.empty else float("nan")
    checks = [
        {
            "check": "r_hat",
            "value": max_rhat,
            "threshold": th["max_r_hat"],
            "direction": "<=",
            "passed": bool(not np.isnan(max_rhat) and max_rhat <= th["max_r_hat"])
            or int(stats.sizes.get("chain", 1)) < 2,
            "worst": worst("r_hat", True),
        },
        {
            "check": "ess_bulk",
            "value": min_eb,
            "threshold": th["min_ess_bulk"],
            "direction": ">=",
            "passed": bool(min_eb >= th["min_ess_bulk"]),
            "worst": worst("ess_bulk", False),
        },
        {
            "check": "ess_tail",
            "value": min_et,
            "threshold": th["min_ess_tail"],
            "direction": ">=",
            "passed": bool(min_et >= th["min_ess_tail"]),
            "worst": worst("ess_tail", False),
        },
        {
            "check": "divergences",
            "value": div,
            "threshold": th["max_divergences"],
            "direction": "<=",
            "passed": bool(div <= th["max_divergences"]),
            "worst": [],
        },
        {
            "check": "treedepth_share",
            "value": depth_share,
            "threshold": th["max_treedepth_share"],
            "direction": "<=",
            "passed": bool(depth_share <= th["max_treedepth_share"]),
            "worst": [],
        },
        {
            "check": "e_bfmi",
            "value": min_bfmi,
            "threshold": th["min_bfmi"],
            "direction": ">=",
            "passed": bool(np.isnan(min_bfmi) or min_bfmi >= th["min_bfmi"]),
            "worst": [],
        },
        {
            "check": "mcse_mean",
            "value": max_mcse,
            "threshold": None,
            "direction": "info",
            "passed": True,
            "worst": worst("mcse_mean", True),
        },
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
        """Tidy table of sizes, prevalences, "1 in X" and main parameters."""
        return summarize_posterior(self.posterior, prob, kind)

    def diagnostics(self, thresholds: dict[str, Any] | None = None) -> dict[str, Any]:
        return compute_diagnostics(self.tree, thresholds)

    def hidden_sizes(self, prob: float = 0.9) -> pd.DataFrame:
        s = self.summary(prob)
        return s[(s.quantity == "size") & (s.area == "")].set_index("group")

    def save(
        self,
        directory: str | Path,
        prob: float = 0.9,
        kind: str = "eti",
        thresholds: dict[str, Any] | None = None,
    ) -> dict[str, Path]:
        """Write posterior.nc, summary.csv and diagnostics.json (atomically)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        diag = self.diagnostics(thresholds)
        summary = self.summary(prob, kind)
        summary["converged"] = diag["passed"]
        tree = self.tree.copy()
        tree.attrs = {
            k: (json.dumps(v, default=str) if not isinstance(v, (str, int, float)) else v)
            for k, v in {**tree.attrs, **self.provenance, "converged": int(diag["passed"])}.items()
        }
        paths = {
            "posterior": atomic_write(
                directory / "posterior.nc", lambda p: tree.to_netcdf(p, engine="h5netcdf")
            ),
            "summary": write_csv(summary, directory / "summary.csv"),
            "diagnostics": write_json(diag, directory / "diagnostics.json"),
        }
        return paths


def load_result(directory: str | Path) -> NSUMResult:
    """Read a saved fit (posterior.nc) back."""
    tree = xr.open_datatree(Path(directory) / "posterior.nc", engine="h5netcdf").load()
    return NSUMResult(tree=tree)
