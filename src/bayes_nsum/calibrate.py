r"""Simulation-based calibration (SBC; Talts, Betancourt, Simpson, Vehtari & Gelman 2018).

For r = 1..R: draw parameters :math:`\theta^{(r)}` from the prior, simulate a survey from the
model given :math:`\theta^{(r)}`, fit the model, and record the rank of :math:`\theta^{(r)}` among
L (thinned) posterior draws. If the sampler and the model code are right, every rank is uniform
on {0, ..., L}. Deviations show bias (a slope in the ranks), over-confidence (U shape) or
under-confidence (hump).

The model is compiled once; each replication swaps in new data through nutpie's ``with_data``
(the count statistics are PyMC data containers), so a replication costs a few seconds.

Uniformity test: ranks are binned into B equally likely bins and compared with a chi-square test
(B - 1 degrees of freedom); with several parameters the p-values are reported per parameter, and
a calibration run is flagged when any is below ``alpha / n_parameters`` (Bonferroni).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from .data import ARD
from .errors import BayesNsumError
from .estimators import MODELS
from .estimators.components import CountStats
from .fit import compile_nutpie, sample_compiled, sampler_settings
from .io import write_csv, write_json

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


#: models run_sbc can calibrate
SBC_MODELS = ("degree", "barrier", "transmission", "combined", "overdispersed")

#: SBC priors for the overdispersed model: the defaults (mu_beta ~ N(0, 5), sigma_beta ~
#: HalfNormal(5), ...) simulate surveys with expected answers from e^-15 to e^15; these keep the
#: expected answers in the range real surveys show (about 0.05 to 30), the spreads away from 0
#: and omega mostly below 3.
SBC_PRIORS_OVERDISPERSED = {
    "sigma_alpha": {"dist": "Gamma", "mu": 0.8, "sigma": 0.3},
    "mu_beta": {"dist": "Normal", "mu": 0.0, "sigma": 0.7},
    "sigma_beta": {"dist": "Gamma", "mu": 0.8, "sigma": 0.3},
    "inv_omega": {"dist": "Beta", "alpha": 3.0, "beta": 1.5},
}


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


def _simulate_from_model(model, theta: dict[str, np.ndarray], n: int, rng) -> np.ndarray:
    """Simulate answers (n x groups) from the model at parameters ``theta``."""
    if model.name == "overdispersed":
        # Zheng et al.: mean e^{a_i + b_k}, variance omega_k times the mean (gamma-Poisson)
        mean = np.exp(theta["alpha"][:, None] + theta["beta"][None, :])
        excess = np.broadcast_to(theta["omega"] - 1.0, mean.shape)
        safe = np.where(excess > 1e-10, excess, 1.0)
        lam = np.where(excess > 1e-10, rng.gamma(mean / safe, safe), mean)
        return rng.poisson(np.minimum(lam, 1e12)).astype(float)
    kind = model.options["degree"]
    mu, sigma = float(theta["mu"]), float(theta["sigma"])
    if kind == "lognormal":
        deg = rng.lognormal(mu, sigma, n)
    else:
        mean = np.exp(mu + sigma**2 / 2)
        var = (np.exp(sigma**2) - 1) * np.exp(2 * mu + sigma**2)
        deg = rng.gamma(mean**2 / var, var / mean, n)
    rate = np.exp(theta["log_rate"])
    mean = deg[:, None] * rate[None, :]
    if model.options["barrier"]:
        shape = theta["barrier_shape"]
        lam = rng.gamma(shape[None, :], 1 / shape[None, :], size=mean.shape) * mean
        return rng.poisson(lam).astype(float)
    return rng.poisson(mean).astype(float)


def _prior_draw(model, pm_model, rng_seed: int) -> dict[str, np.ndarray]:
    import pymc as pm

    names = [v.name for v in pm_model.free_RVs] + [
        n for n in ("log_rate", "barrier_shape", "alpha", "omega") if n in pm_model.named_vars
    ]
    draw = pm.draw([pm_model[n] for n in names], random_seed=rng_seed)
    return {n: np.asarray(v) for n, v in zip(names, draw, strict=True)}


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
) -> SBCResult:
    """Run SBC for a Maltiel-family model (degree, barrier, transmission, combined) or the
    overdispersed model.

    Parameters
    ----------
    priors : dict, optional
        Prior overrides. SBC needs proper priors that generate plausible surveys; the default
        here narrows ``log_visible`` to prevalences between 1e-4 and 3e-2 (the paper's flat prior
        on (-log N, 0) would simulate surveys where everyone knows the hidden group); the
        overdispersed model uses :data:`SBC_PRIORS_OVERDISPERSED`.
    thin_to : int
        Number L of posterior draws (thinned evenly) a true value is ranked among.

    Returns
    -------
    SBCResult
    """
    cls = MODELS.get(model_name)
    if cls is None or model_name not in SBC_MODELS:
        raise BayesNsumError(f"SBC supports {', '.join(SBC_MODELS)}, not '{model_name}'")
    known = known_prevalence or DEFAULT_KNOWN
    rng = np.random.default_rng(seed)
    # a template data set fixes the shapes; its counts are replaced in every replication
    groups = list(known) + list(hidden)
    ids = [f"r{i}" for i in range(n_respondents)]
    template = ARD(
        counts=pd.DataFrame(np.ones((n_respondents, len(groups))), index=ids, columns=groups),
        known=tuple(known),
        hidden=tuple(hidden),
        known_sizes=pd.Series({k: p * total_population for k, p in known.items()}),
        total_population=float(total_population),
    )
    base_priors = (
        SBC_PRIORS_OVERDISPERSED
        if model_name == "overdispersed"
        else {
            "log_visible": {
                "dist": "Uniform",
                "lower": float(np.log(1e-4)),
                "upper": float(np.log(3e-2)),
            },
            "mu": {"dist": "Uniform", "lower": 4.0, "upper": 6.5},
            "sigma": {"dist": "Uniform", "lower": 0.4, "upper": 1.2},
        }
    )
    model = cls(template, priors={**base_priors, **(priors or {})}, **(options or {}))
    pm_model = model.model
    compiled = compile_nutpie(pm_model)
    settings = sampler_settings(
        draws=draws, tune=tune, chains=chains, progress=progress, cores=min(chains, 2)
    )
    if model_name == "overdispersed":
        params = ["sigma_alpha", "mu_beta", "sigma_beta", "beta", "inv_omega"]
    else:
        params = ["mu", "sigma", "log_visible"]
    if model.options.get("barrier"):
        params.append("rho")
    if getattr(model, "shared_barrier", False):
        params.append("rho_known")
    rows = []
    for r in range(replications):
        theta = _prior_draw(model, pm_model, int(rng.integers(2**31)))
        y = _simulate_from_model(model, theta, n_respondents, rng)
        stats = CountStats.from_matrix(y, n_known=len(known))
        used = {v.name for v in compiled.shared_var_keys}
        new_data = {k: v for k, v in stats.data_dict().items() if k in used}
        tree = sample_compiled(
            compiled.with_data(**new_data), {**settings, "seed": int(rng.integers(2**31))}
        )
        post = tree["posterior"].to_dataset()
        for p in params:
            if p not in post:
                continue
            da = post[p]
            extra = [dname for dname in da.dims if dname not in ("chain", "draw")]
            arr = da.stack(s=("chain", "draw")).transpose("s", *extra).values
            idx = np.linspace(0, arr.shape[0] - 1, thin_to).round().astype(int)
            arr = arr[idx]
            truth = np.atleast_1d(theta[p])
            labels = [p] if not extra else [f"{p}[{c}]" for c in da[extra[0]].values]
            flat = arr.reshape(len(idx), -1)
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
