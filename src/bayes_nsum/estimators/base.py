"""The base class every Bayesian NSUM model derives from.

A model class is the one place that defines its story:

* its priors (:meth:`NSUMModel.default_priors`, :meth:`NSUMModel.param_groups`) and
  likelihood (:meth:`NSUMModel._build`, the PyMC model, built lazily, never in ``__init__``);
* the quantities reported after sampling (:meth:`NSUMModel._derive`: sizes, prevalences,
  "1 in X", computed in numpy);
* its generative form at any set of parameter draws (:meth:`NSUMModel.latent`, a
  :class:`~bayes_nsum.estimators.latent.LatentModel`), from which the base class derives the
  simulator (:meth:`NSUMModel.simulate`), each respondent's log-likelihood with the latent
  effect integrated out (:meth:`NSUMModel.pointwise_loglik`) and the respondents' network sizes.

Prior draws come from the PyMC model itself (:meth:`NSUMModel.prior_draws`), so the prior
predictive distribution, simulation-based calibration and the posterior predictive checks use
the very priors and likelihood that are sampled. A model rebuilds itself from a saved fit
(:meth:`NSUMModel.from_tree`) with no spec or survey at hand.
"""

from __future__ import annotations

import json
import warnings
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import xarray as xr

from ..config import MODEL_OPTIONS
from ..data import ARD
from ..errors import BayesNsumError
from ..priors import (
    Prior,
    PriorConfig,
    describe_priors,
    load_prior_set,
    merge_priors,
    parse_priors,
)
from ..spec import NUTPIE_BACKENDS
from .components import CountStats
from .evidence import (
    add_evidence,
    check_against,
    check_binomial_detection,
    contribution_mode,
    detection_priors,
    parse_evidence,
)
from .latent import LatentModel

SAMPLE_DIMS = ("chain", "draw")


def stack_draws(ds: xr.Dataset) -> xr.Dataset:
    """Draws with (chain, draw) flattened into one leading ``sample`` dimension."""
    if "sample" in ds.dims and "chain" not in ds.dims:
        return ds
    st = ds.stack(sample=SAMPLE_DIMS).drop_vars(["sample", "chain", "draw"], errors="ignore")
    return st.transpose("sample", ...)


def draws_array(ds: xr.Dataset, name: str, dims: tuple[str, ...] = (), order=None) -> np.ndarray:
    """Draws of one variable of a stacked dataset as (sample, *dims), the first dim's labels
    in ``order`` when given."""
    if name not in ds:
        raise BayesNsumError(f"the draws have no variable '{name}'")
    da = ds[name]
    if order is not None:
        labels = [str(v) for v in da[dims[0]].values]
        da = da.isel({dims[0]: [labels.index(str(g)) for g in order]})
    return np.asarray(da.transpose("sample", *dims).values, dtype=float)


class NSUMModel(ABC):
    """Common machinery: options, priors, lazy model building, the generative story's
    derived methods, fitting, saving and rebuilding.

    Subclasses define :attr:`name`, :attr:`options_used`, :meth:`default_priors`,
    :meth:`param_groups`, :meth:`_build`, :meth:`_derive` and :meth:`latent`.
    """

    name: ClassVar[str] = "base"
    #: ``[model]`` options (keys of :data:`bayes_nsum.config.MODEL_OPTIONS`) the model reads
    options_used: ClassVar[tuple[str, ...]] = ("survey_weights",)
    #: the model needs respondents' areas and an area table
    requires_areas: ClassVar[bool] = False
    #: the model reads respondent covariates (``ARD.covariates``); for others they are an error
    uses_covariates: ClassVar[bool] = False
    #: parameters ranked by simulation-based calibration
    calibration_targets: ClassVar[tuple[str, ...]] = ()
    #: priors that simulate plausible surveys, for simulation-based calibration
    calibration_priors: ClassVar[dict[str, Any]] = {}
    #: parameters the answers carry no information on (their posteriors are their priors)
    not_identified: ClassVar[tuple[str, ...]] = ("tau", "delta", "tau_area_sd")
    #: options the evidence terms need (``{option: value}``; ``[evidence]`` otherwise refused)
    evidence_needs: ClassVar[dict[str, Any]] = {}
    #: the model reads a hidden-population sample (``ARD.hidden_sample``); others refuse one
    uses_hidden_sample: ClassVar[bool] = False
    #: every concrete model class by name (filled by subclasses that set ``name``)
    registry: ClassVar[dict[str, type[NSUMModel]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__ and not cls.__dict__.get("abstract", False):
            NSUMModel.registry[cls.name] = cls

    def __init__(
        self,
        data: ARD,
        priors: PriorConfig | dict | None = None,
        prior_set: str | PriorConfig | None = None,
        prior_search: list | None = None,
        evidence: Any = None,
        **options: Any,
    ) -> None:
        unknown = [k for k in options if k not in self.options_used]
        if unknown:
            raise BayesNsumError(
                f"model '{self.name}' has no option(s) {', '.join(unknown)}; options: "
                f"{', '.join(self.options_used) or 'none'}"
            )
        for key, value in options.items():
            if (msg := MODEL_OPTIONS[key].check(value)) is not None:
                raise BayesNsumError(f"[model] {key} {msg}, got {value!r}")
        self.options = {k: options.get(k, MODEL_OPTIONS[k].default) for k in self.options_used}
        self.data = data
        self._check_data()
        #: secondary data on the hidden sizes (:mod:`bayes_nsum.estimators.evidence`)
        self.evidence = parse_evidence(evidence, list(data.hidden))
        self.evidence_contribution = contribution_mode(evidence)
        self._check_evidence()
        if isinstance(prior_set, str):
            set_layer = load_prior_set(prior_set, prior_search)
            self.prior_set_name = prior_set
        else:
            set_layer = prior_set
            self.prior_set_name = None if prior_set is None else "custom"
        # Prior sets hold priors for several models: keep only this model's parameters.
        defaults = self.default_priors()
        groups = self.param_groups()
        if detection_priors(self.evidence):
            defaults["detection"] = detection_priors(self.evidence)
            groups["detection"] = list(defaults["detection"])
        if set_layer:
            set_layer = {
                k: (
                    {g: p for g, p in v.items() if g in (groups.get(k) or [])}
                    if isinstance(v, dict)
                    else v
                )
                for k, v in set_layer.items()
                if k in defaults
            }
        user = parse_priors(priors) if priors else None
        self.priors = merge_priors(defaults, groups, set_layer, user, model_name=self.name)
        for s in self.evidence:  # [priors] detection may override a source's own prior
            if s.observation == "binomial":
                check_binomial_detection(
                    self.priors["detection"][s.label], f"[priors] detection {s.label}"
                )
        self._check_priors()
        self._model = None
        self._stats: CountStats | None = None

    # -- to override ----------------------------------------------------------------------
    @abstractmethod
    def default_priors(self) -> PriorConfig:
        """The model's default priors."""

    @abstractmethod
    def param_groups(self) -> dict[str, list[str] | None]:
        """Parameter -> the groups it is indexed by (None: scalar)."""

    @abstractmethod
    def _build(self):
        """Build and return the PyMC model (priors and likelihood)."""

    @abstractmethod
    def _derive(self, post: xr.Dataset) -> xr.Dataset:
        """Add derived quantities to a copy of the draws."""

    @abstractmethod
    def latent(self, draws: xr.Dataset) -> LatentModel:
        """The model at the given draws (stacked: leading ``sample`` dim) in latent-effect
        form: the population distribution of each respondent's latent effect and the count
        distribution of the answers given it."""

    def _check_data(self) -> None:
        if self.data.n == 0:
            raise BayesNsumError("the survey has no respondents")
        if getattr(self.data, "hidden_sample", None) is not None and not self.uses_hidden_sample:
            raise BayesNsumError(
                f"model '{self.name}' does not use a hidden-population sample ([data] "
                "hidden_sample): use gnsum_bayes (or the classical gnsum)"
            )
        cov = self.data.covariates
        if cov is not None and cov.shape[1] and not self.uses_covariates:
            raise BayesNsumError(
                f"[data] covariates are not used by the {self.name} model (models that use "
                f"them: {', '.join(k for k, c in self.registry.items() if c.uses_covariates)})"
            )

    def _check_evidence(self) -> None:
        """Refuse evidence the model cannot use (one line); with a count source the
        transmission rate and degree ratio are informed, no longer prior-only."""
        if not self.evidence:
            return
        if type(self).log_hidden_size is NSUMModel.log_hidden_size:
            raise BayesNsumError(f"the {self.name} model cannot use [evidence]")
        for key, value in self.evidence_needs.items():
            if self.options[key] != value:
                raise BayesNsumError(f"[evidence] needs [model] {key} = {value!r} ({self.name})")
        areas = self.data.areas if self.requires_areas else None
        check_against(self.evidence, self.data.hidden, areas, self.name)
        if self.weighted:
            raise BayesNsumError(
                "[evidence] with survey weights is not supported: the design adjustment of the "
                "weighted pseudo-posterior does not cover the evidence terms"
            )
        if any(s.kind == "count" for s in self.evidence):
            self.not_identified = tuple(v for v in self.not_identified if v not in ("tau", "delta"))

    def log_hidden_size(self, pm_model):
        """Symbolic log true size of each hidden group, ``(national (hidden,), per area
        (hidden, area) or None)``, from the variables of ``pm_model``: what evidence is about.
        Models that take ``[evidence]`` override this."""
        raise BayesNsumError(f"the {self.name} model cannot use [evidence]")

    def model_param(self, pm_model, name: str, dim: str | None = None):
        """Parameter ``name`` of ``pm_model`` as a tensor; fixed priors (no variable) as
        constants (one per group of ``dim``'s labels for a per-group parameter)."""
        import pytensor.tensor as pt

        if name in pm_model.named_vars:
            return pm_model[name]
        prior = self.priors[name]
        if isinstance(prior, Prior):
            return pt.as_tensor(float(prior.params["value"]))
        return pt.as_tensor(np.array([prior[g].params["value"] for g in self.coords[dim]], float))

    def _check_priors(self) -> None:  # noqa: B027 - a hook with nothing to check by default
        """Refuse merged priors that make an option do nothing (none by default)."""

    def known_share_from_rate(self, draws: xr.Dataset, group: str, rate: np.ndarray) -> np.ndarray:
        """True share N_k/N of a known group whose reported rate (share of networks) is
        ``rate`` (S,) at the draws, as if the group were hidden (internal consistency).
        Default: the rate is the share."""
        return rate

    # -- shared helpers -------------------------------------------------------------------
    @property
    def weighted(self) -> bool:
        """Survey weights enter the likelihood (weighted pseudo-likelihood)."""
        return bool(self.options["survey_weights"]) and self.data.weights is not None

    @property
    def weights(self) -> np.ndarray | None:
        """Respondents' weights normalised to mean 1 (None when not weighted)."""
        if not self.weighted:
            return None
        w = self.data.weights.to_numpy(float)
        return w / w.mean()

    @property
    def stats(self) -> CountStats:
        if self._stats is None:
            self._stats = CountStats.from_matrix(
                self.answers(), n_known=len(self.data.known), weights=self.weights
            )
        return self._stats

    def weight_latent_prior(self, x, mu, sigma) -> None:
        """With survey weights, raise each respondent's latent-effect density N(x_i | mu, sigma)
        to its weight, like its answers (the pseudo-posterior of a model with unit-level
        random effects; Leon-Novelo and Savitsky 2019). Nothing to do without weights."""
        if self.weighted:
            import pymc as pm
            import pytensor.tensor as pt

            logp = -0.5 * ((x - mu) / sigma) ** 2 - pt.log(sigma)
            pm.Potential("latent_weight", pt.sum(pt.as_tensor(self.weights - 1) * logp))

    @property
    def coords(self) -> dict[str, list]:
        """Named dims; respondents by position (0 .. n-1), never by id."""
        coords = {
            "respondent": list(range(self.data.n)),
            "group": self.data.groups,
            "known": list(self.data.known),
            "hidden": list(self.data.hidden),
        }
        if "detection" in self.priors:
            coords["source"] = list(self.priors["detection"])
        return coords

    @property
    def model(self):
        """The PyMC model (built on first access)."""
        if self._model is None:
            model = self._build()
            if self.evidence:
                add_evidence(self, model, *self.log_hidden_size(model))
            self._model = model
        return self._model

    def describe_priors(self) -> dict[str, Any]:
        return describe_priors(self.priors)

    def config(self) -> dict[str, Any]:
        """Model id, options and priors (stored in the result's attrs; see :meth:`from_tree`)."""
        cfg = {
            "model": self.name,
            "options": dict(self.options),
            "prior_set": self.prior_set_name,
            "priors": self.describe_priors(),
            "known": list(self.data.known),
            "hidden": list(self.data.hidden),
        }
        if self.evidence:
            cfg["evidence"] = [s.to_dict() for s in self.evidence]
            cfg["evidence_contribution"] = self.evidence_contribution
        return cfg

    def param_draws(self, draws: xr.Dataset, name: str, dim: str | None = None) -> xr.DataArray:
        """Draws of a parameter, fixed values broadcast like the draws' sample dims.

        A per-group parameter whose groups have different families is stored as scalars
        ``{name}_{group}``; they are gathered along ``dim``.
        """
        if name in draws:
            return draws[name]
        prior = self.priors[name]
        sample = [d for d in ("sample", *SAMPLE_DIMS) if d in draws.dims]
        ref = xr.DataArray(
            np.zeros(tuple(draws.sizes[d] for d in sample)),
            dims=sample,
            coords={d: draws[d].values for d in sample if d in draws.coords},
        )
        if isinstance(prior, Prior):
            return ref + prior.params["value"]
        parts = [
            draws[f"{name}_{g}"] if f"{name}_{g}" in draws else ref + p.params["value"]
            for g, p in prior.items()
        ]
        labels = list(prior)
        return xr.concat(parts, dim=xr.DataArray(labels, dims=dim, name=dim))

    def _hidden_outputs(self, post: xr.Dataset, log_prev: xr.DataArray) -> xr.Dataset:
        """Add ``size``, ``prevalence`` and ``one_in_x`` per hidden group from log N_H / N."""
        d = self.data
        size = np.exp(log_prev) * d.total_population
        den = xr.DataArray(
            [d.denominator(h) for h in d.hidden], dims="hidden", coords={"hidden": list(d.hidden)}
        )
        post["size"] = size
        post["prevalence"] = size / den
        post["one_in_x"] = 1 / post["prevalence"]
        return post

    def derive(self, post: xr.Dataset) -> xr.Dataset:
        """Return the draws with derived quantities added (a new Dataset)."""
        return self._derive(post.copy())

    def adjust_posterior(self, post: xr.Dataset) -> tuple[xr.Dataset, dict[str, Any] | None]:
        """The raw posterior as the model reports it: with survey weights, the design-adjusted
        pseudo-posterior (:func:`~bayes_nsum.estimators.design.williams_savitsky`) and a
        record of the adjustment; otherwise unchanged (and None)."""
        if not self.weighted:
            return post, None
        from .design import williams_savitsky

        return williams_savitsky(self, post)

    # -- the generative story, derived from latent() --------------------------------------
    def prior_draws(self, draws: int = 500, seed: int = 0, latent: bool = True) -> xr.Dataset:
        """Draws (chain, draw) of every parameter from the model's own PyMC priors, with the
        derived quantities; ``latent=False`` leaves out the per-respondent effects."""
        import pymc as pm

        m = self.model
        names = [v.name for v in m.free_RVs] + [v.name for v in m.deterministics]
        if not latent:
            names = [v for v in names if "respondent" not in (m.named_vars_to_dims.get(v) or ())]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Potentials.*")
            prior = pm.sample_prior_predictive(
                draws=int(draws),
                model=m,
                var_names=names,
                random_seed=int(seed),
                compile_kwargs={"mode": "FAST_COMPILE"},
            )
        return self.derive(prior["prior"].to_dataset())

    def simulate(
        self,
        draws: xr.Dataset,
        rng: np.random.Generator,
        fitted: bool | None = None,
        rows: np.ndarray | None = None,
        missing: np.ndarray | None = None,
        topcode: dict[str, float] | None = None,
        return_log_degree: bool = False,
    ):
        """Simulate answers (S, n, G) from the model at each draw (and, if asked, the
        respondents' log network sizes (S, n)).

        ``fitted=None`` uses the draws' own latent effects where the model samples them
        (a joint draw, as simulation-based calibration needs) and fresh ones otherwise;
        ``False`` always draws fresh respondents (the "mixed" predictive check). ``rows``
        selects respondents by position (their areas, where there are areas).
        """
        lm = self.latent(stack_draws(draws))
        if fitted is None:
            fitted = lm.z_fitted is not None
        if rows is None:
            rows = np.arange(self.data.n)
        return lm.simulate(rng, rows, fitted, missing, topcode, return_log_degree)

    def pointwise_loglik(self, draws: xr.Dataset) -> np.ndarray:
        """Each respondent's log-likelihood (S, n) at the draws, latent effect integrated out."""
        return self.latent(stack_draws(draws)).loglik(self.answers())

    def data_arrays(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """The model's data containers for another answer matrix of the same shape (a
        compiled model then samples new data: simulation-based calibration)."""
        if self.evidence:
            raise BayesNsumError(
                "simulation-based calibration with [evidence] is not implemented (the evidence "
                "would have to be simulated with the answers)"
            )
        return CountStats.from_matrix(
            y, n_known=len(self.data.known), weights=self.weights
        ).data_dict()

    def simulate_auxiliary(self, draws: xr.Dataset, rng: np.random.Generator) -> dict:
        """Data containers of the model's data besides the survey answers (e.g. a hidden-
        population sample), simulated at one parameter draw, for simulation-based calibration;
        none by default."""
        return {}

    @classmethod
    def calibration_data(cls, template: ARD) -> ARD:
        """The data of a calibration run (answers replaced in every replication): the
        template, plus what else the model reads (none by default)."""
        return template

    def data_values(self) -> dict[str, np.ndarray]:
        """Every data container of the PyMC model (statistics of the answers, prior parameters)
        with its value: what a compiled model of the same :meth:`structure_key` needs to
        sample this model instead (nutpie's ``with_data``)."""
        return {v.name: np.asarray(v.get_value()) for v in self.model.data_vars}

    def structure_key(self) -> str:
        """A digest of everything compiled into the model that is not a data container: the
        model, its options and parameterisation, its dims, the families of its priors (fixed
        values included, as constants) and what it saw besides the answers (known sizes, areas,
        weights). Two models with the same key differ only in data values (answers, prior
        parameters), so one compiled model serves both."""
        import hashlib

        def shape(p: Prior):
            return ["Fixed", p.params["value"]] if p.is_fixed else [p.dist, sorted(p.canonical())]

        cfg = {k: v for k, v in self.config().items() if k != "priors"}
        if self.evidence:  # its values are data containers: only where they are counts
            cfg["evidence"] = [
                {**e, "values": list(e["values"]), "detection": None} for e in cfg["evidence"]
            ]
        cfg["prior_shapes"] = {
            k: shape(v) if isinstance(v, Prior) else {g: shape(p) for g, p in v.items()}
            for k, v in self.priors.items()
        }
        cfg["coords"] = {k: [str(x) for x in v] for k, v in self.coords.items()}
        cfg["class"] = type(self).__name__
        const = self.constant_dataset()
        text = json.dumps(cfg, sort_keys=True, default=str) + "".join(
            f"{k}:{np.asarray(const[k].values).tobytes().hex()}" for k in sorted(const.data_vars)
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def answers(self) -> np.ndarray:
        """The answer matrix (n, G), NaN where missing."""
        return self.data.counts[self.data.groups].to_numpy(float)

    # -- data -----------------------------------------------------------------------------
    def observed_dataset(self) -> xr.Dataset:
        """``observed_data``: the answers by position (no respondent ids)."""
        return xr.Dataset(
            {"y": (("respondent", "group"), self.answers())},
            coords={"respondent": np.arange(self.data.n), "group": self.data.groups},
        )

    def constant_dataset(self) -> xr.Dataset:
        """``constant_data``: everything besides the answers that the model saw."""
        return self.data.constant_dataset()

    # -- fitting and rebuilding -----------------------------------------------------------
    def fit(self, **sampler: Any):
        """Sample the posterior and return an :class:`~bayes_nsum.result.NSUMResult`.

        Keyword arguments are sampler settings (``draws``, ``tune``, ``chains``, ``seed``,
        ``backend``, ``target_accept``, ``cores``, ``progress``); see :func:`bayes_nsum.fit.sample`.
        """
        from ..fit import fit_model

        return fit_model(self, **sampler)

    #: tuning steps per chain with the nutpie backends where ``tune = "auto"`` (None: the
    #: package's default, as with every other backend)
    nutpie_tune: ClassVar[int | None] = None

    def default_tune(self, backend: str) -> int:
        """Tuning steps per chain for ``tune = "auto"``: :attr:`nutpie_tune` with nutpie where
        the model sets it, else :data:`bayes_nsum.fit.DEFAULT_TUNE` (1000)."""
        from ..fit import DEFAULT_TUNE

        if self.nutpie_tune is not None and backend in NUTPIE_BACKENDS:
            return int(self.nutpie_tune)
        return DEFAULT_TUNE

    @staticmethod
    def from_tree(tree: xr.DataTree) -> NSUMModel:
        """Rebuild the model of a saved fit from the fit alone (nothing is refitted).

        Uses the tree's ``observed_data``, ``constant_data`` and the ``model_config`` attribute
        (model name, options and the merged priors).
        """
        cfg = tree.attrs.get("model_config")
        if isinstance(cfg, str):
            cfg = json.loads(cfg)
        if not cfg:
            raise BayesNsumError("the fit has no model_config attribute (not a bayes_nsum fit?)")
        cls = NSUMModel.registry.get(cfg["model"])
        if cls is None:
            raise BayesNsumError(f"the fit's model '{cfg['model']}' is not known to this version")
        ard = ARD.from_datasets(
            tree["observed_data"].to_dataset(),
            tree["constant_data"].to_dataset(),
            known=cfg["known"],
            hidden=cfg["hidden"],
        )
        model = cls(
            ard, priors=cfg["priors"], evidence=cfg.get("evidence"), **cfg.get("options", {})
        )
        model.evidence_contribution = cfg.get("evidence_contribution", "refit")
        model.prior_set_name = cfg.get("prior_set")
        model.restore(cfg)
        return model

    def restore(self, config: dict) -> None:  # noqa: B027 - nothing more to restore by default
        """Take from a saved fit's ``model_config`` what the data alone do not determine."""
