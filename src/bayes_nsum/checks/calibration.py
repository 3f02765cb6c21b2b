r"""Simulation-based calibration (SBC; Talts, Betancourt, Simpson, Vehtari & Gelman 2018).

For r = 1..R: draw parameters :math:`\theta^{(r)}` from the prior, simulate a survey from the
model given :math:`\theta^{(r)}`, fit the model, and record the rank of :math:`\theta^{(r)}` among
L (thinned) posterior draws. If the sampler and the model code are right, every rank is uniform
on {0, ..., L}. Deviations show bias (a slope in the ranks), over-confidence (U shape) or
under-confidence (hump).

Every piece comes from the model itself: the parameters are drawn from its PyMC priors
(:meth:`~bayes_nsum.estimators.base.NSUMModel.prior_draws`), the survey from its simulator
(:meth:`~bayes_nsum.estimators.base.NSUMModel.simulate`, with the drawn latent effects where the
model samples them), and the fit goes through the workflow's one fitting path
(:func:`bayes_nsum.analysis.fit_and_check`). The model is compiled once; each replication swaps
in new data through nutpie's ``with_data`` (the model's data containers,
:meth:`~bayes_nsum.estimators.base.NSUMModel.data_arrays`), so a replication costs a few
seconds. The ranked parameters and the priors used (which must simulate plausible surveys) are
the model's ``calibration_targets`` and ``calibration_priors``.

Uniformity test: ranks are binned into B equally likely bins and compared with a chi-square test
(B - 1 degrees of freedom); with several parameters the p-values are reported per parameter, and
a calibration run is flagged when any is below ``alpha / n_parameters`` (Bonferroni).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from ..data import ARD
from ..fit import compile_nutpie, sampler_settings
from ..io import write_csv, write_json

#: default SBC design: 10 known groups spread over the usual range of known prevalences
DEFAULT_KNOWN = {f"known_{i:02d}": float(p) for i, p in enumerate(np.geomspace(0.002, 0.03, 10))}


@dataclass
class SBCResult:
    """Ranks and uniformity tests of a calibration run."""

    ranks: pd.DataFrame  # replication, parameter, rank, n_draws, truth, posterior_median
    uniformity: pd.DataFrame  # parameter, statistic, p_value, n, bins
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        k = max(len(self.uniformity), 1)
        return bool((self.uniformity["p_value"] >= self.settings.get("alpha", 0.01) / k).all())

    def plot(self, path: str | Path | None = None):
        """Rank histograms per parameter with the 99% band of a uniform histogram."""
        import matplotlib.pyplot as plt

        params = list(self.uniformity["parameter"])
        ncol = min(4, len(params))
        nrow = int(np.ceil(len(params) / ncol))
        fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow), squeeze=False)
        bins = int(self.settings.get("bins", 10))
        for ax, p in zip(axes.ravel(), params, strict=False):
            r = self.ranks.loc[self.ranks.parameter == p]
            L = int(r["n_draws"].iloc[0])
            ax.hist(
                r["rank"], bins=np.linspace(0, L + 1, bins + 1), color="#4477aa", edgecolor="white"
            )
            n = len(r)
            lo, hi = sps.binom.ppf([0.005, 0.995], n, 1 / bins)
            ax.axhspan(lo, hi, color="grey", alpha=0.25, label="99% band if uniform")
            ax.set_title(p, fontsize=9)
            ax.set_xlabel("rank of true value among posterior draws")
            ax.set_ylabel("replications")
        for ax in axes.ravel()[len(params) :]:
            ax.axis("off")
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=110)
            plt.close(fig)
        return fig

    def save(self, directory: str | Path) -> dict[str, Path]:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        out = {
            "ranks": write_csv(self.ranks, d / "sbc_ranks.csv"),
            "uniformity": write_csv(self.uniformity, d / "sbc_uniformity.csv"),
            "settings": write_json({**self.settings, "passed": self.passed}, d / "sbc.json"),
        }
        self.plot(d / "sbc_ranks.png")
        out["plot"] = d / "sbc_ranks.png"
        return out


def uniformity_table(ranks: pd.DataFrame, bins: int = 10) -> pd.DataFrame:
    """Chi-square test of uniform ranks per parameter (ranks in 0..L binned into ``bins``)."""
    uni = []
    for p, grp in ranks.groupby("parameter", sort=False):
        L = int(grp["n_draws"].iloc[0])
        counts = np.histogram(grp["rank"], bins=np.linspace(0, L + 1, bins + 1))[0]
        stat, pval = sps.chisquare(counts)
        uni.append(
            {
                "parameter": p,
                "statistic": float(stat),
                "p_value": float(pval),
                "n": int(len(grp)),
                "bins": bins,
            }
        )
    return pd.DataFrame(uni)


def sbc_template(
    n_respondents: int,
    known_prevalence: dict[str, float],
    hidden: tuple[str, ...],
    total_population: float,
    n_areas: int = 0,
) -> ARD:
    """A data set that fixes the shapes of a calibration run (its answers are replaced in
    every replication); with ``n_areas`` > 0 the respondents are spread evenly over that many
    areas of equal population, each known group with the same share in every area."""
    groups = list(known_prevalence) + list(hidden)
    ids = [str(i) for i in range(n_respondents)]
    ard = ARD(
        counts=pd.DataFrame(np.ones((n_respondents, len(groups))), index=ids, columns=groups),
        known=tuple(known_prevalence),
        hidden=tuple(hidden),
        known_sizes=pd.Series({k: p * total_population for k, p in known_prevalence.items()}),
        total_population=float(total_population),
    )
    if n_areas <= 0:
        return ard
    areas = [f"area_{j:03d}" for j in range(n_areas)]
    pop = total_population / n_areas
    table = pd.DataFrame(
        {"population": pop, **{k: p * pop for k, p in known_prevalence.items()}},
        index=pd.Index(areas, name="area"),
    )
    area = pd.Series([areas[i % n_areas] for i in range(n_respondents)], index=ids)
    return replace(ard, area=area, area_table=table)


def run_sbc(
    model_name: str = "degree",
    replications: int = 20,
    n_respondents: int = 300,
    known_prevalence: dict[str, float] | None = None,
    hidden: tuple[str, ...] = ("hidden_1",),
    total_population: float = 1_000_000.0,
    priors: dict | None = None,
    options: dict | None = None,
    draws: int = 200,
    tune: int = 300,
    chains: int = 2,
    thin_to: int = 99,
    bins: int = 10,
    alpha: float = 0.01,
    seed: int = 0,
    progress: bool = False,
    n_areas: int = 20,
) -> SBCResult:
    """Run simulation-based calibration of a Bayesian model.

    Parameters
    ----------
    priors : dict, optional
        Prior overrides, over the model's ``calibration_priors`` (SBC needs proper priors that
        generate plausible surveys).
    thin_to : int
        Number L of posterior draws (thinned evenly) a true value is ranked among.
    n_areas : int
        Areas of the simulated design, for models that need areas.

    Returns
    -------
    SBCResult
    """
    from ..analysis import fit_and_check, model_class

    cls = model_class(model_name)
    known = known_prevalence or DEFAULT_KNOWN
    rng = np.random.default_rng(seed)
    template = sbc_template(
        n_respondents, known, tuple(hidden), total_population, n_areas if cls.requires_areas else 0
    )
    template = cls.calibration_data(template)
    model = cls(template, priors={**cls.calibration_priors, **(priors or {})}, **(options or {}))
    compiled = compile_nutpie(model.model)
    used = {v.name for v in compiled.shared_var_keys}
    settings = sampler_settings(
        model, draws=draws, tune=tune, chains=chains, progress=progress, cores=min(chains, 2)
    )
    rows = []
    for r in range(replications):
        theta = model.prior_draws(1, int(rng.integers(2**31)))
        y = model.simulate(theta, rng)[0]
        arrays = {**model.data_arrays(y), **model.simulate_auxiliary(theta, rng)}
        new_data = {k: v for k, v in arrays.items() if k in used}
        fit = fit_and_check(
            model,
            {**settings, "seed": int(rng.integers(2**31))},
            steps=(),
            compiled=compiled.with_data(**new_data),
            with_prior=False,
        )
        post = fit.result.tree["posterior"].to_dataset()
        truth_ds = theta.isel(chain=0, draw=0)
        for p in model.calibration_targets:
            if p not in post or p not in truth_ds:
                continue
            da = post[p]
            extra = [dname for dname in da.dims if dname not in ("chain", "draw")]
            arr = da.stack(s=("chain", "draw")).transpose("s", *extra).values
            idx = np.linspace(0, arr.shape[0] - 1, thin_to).round().astype(int)
            flat = arr[idx].reshape(len(idx), -1)
            truth = np.atleast_1d(truth_ds[p].transpose(*extra).values).ravel()
            labels = [p] if not extra else [f"{p}[{c}]" for c in da[extra[0]].values]
            for j, lab in enumerate(labels):
                rows.append(
                    {
                        "replication": r,
                        "parameter": lab,
                        "rank": int((flat[:, j] < truth[j]).sum()),
                        "n_draws": len(idx),
                        "truth": float(truth[j]),
                        "posterior_median": float(np.median(flat[:, j])),
                    }
                )
    ranks = pd.DataFrame(rows)
    return SBCResult(
        ranks=ranks,
        uniformity=uniformity_table(ranks, bins),
        settings={
            "model": model_name,
            "replications": replications,
            "n_respondents": n_respondents,
            "draws": draws,
            "tune": tune,
            "chains": chains,
            "thin_to": thin_to,
            "bins": bins,
            "alpha": alpha,
            "seed": seed,
            "priors": model.describe_priors(),
            "options": dict(model.options),
        },
    )
