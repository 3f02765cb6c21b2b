"""The per-group barrier model samples each hidden group's barrier shape on the log scale
(``log_barrier_shape``) instead of its dispersion rho, to take the unidentified transmission
rate out of the likelihood's coordinates (``MaltielModel._group_barrier_shape``). These tests
check that this is a change of coordinates only: the same joint density, the same prior.
"""

from __future__ import annotations

import unittest.mock as um

import numpy as np
import pymc as pm
import pytest
from scipy import stats

from bayes_nsum.estimators import MODELS
from bayes_nsum.priors import Prior
from test_barrier_grid import _ard, simulate

COMBINED = MODELS["combined"]


def _rho_form(ard, **kwargs):
    """The same model with every rho sampled directly (the parametrisation before)."""
    with um.patch.object(COMBINED, "hidden_log_shape", new=property(lambda self: False)):
        model = COMBINED(ard, **kwargs)
        assert "log_barrier_shape" not in model.model.named_vars  # built inside the patch
    return model


@pytest.mark.parametrize("rho_prior", [None, {"dist": "Beta", "alpha": 2.0, "beta": 5.0}])
def test_log_shape_form_has_the_same_joint_density(rho_prior):
    """Given tau and v, eta = log p - logit(rho) is a shift of logit(rho) (unit Jacobian), so
    the two forms' log densities on the sampler's scale agree exactly (to rounding, 1e-9) at
    any point, answers and priors included."""
    ard = _ard(simulate(60, seed=3))
    priors = None if rho_prior is None else {"rho": rho_prior}
    new, old = COMBINED(ard, priors=priors), _rho_form(ard, priors=priors)
    assert new.hidden_log_shape
    mn, mo = new.model, old.model
    assert "log_barrier_shape" in mn.named_vars and "rho" in mn.named_vars  # rho deterministic
    assert "log_barrier_shape" not in mo.named_vars
    lp_new, lp_old = mn.compile_logp(), mo.compile_logp()
    shape_of = mo.compile_fn(
        mo.replace_rvs_by_values([mo["barrier_shape"]])[0],
        inputs=mo.value_vars,
        on_unused_input="ignore",
    )
    nk = len(ard.known)
    rng = np.random.default_rng(0)
    start = mo.initial_point()
    for _ in range(4):
        po = {k: v + rng.normal(0, 0.7, np.shape(v)) for k, v in start.items()}
        pn = {k: v for k, v in po.items() if k in mn.initial_point()}
        (rho_key,) = [k for k in po if k.startswith("rho_")]  # logit scale either way
        pn[rho_key.replace("rho_", "rho_known_groups_")] = po[rho_key][:nk]
        pn["log_barrier_shape"] = np.log(shape_of(po)[nk:])
        assert lp_new(pn) == pytest.approx(lp_old(po), abs=1e-9)


def test_log_shape_prior_draws_give_the_rho_prior():
    """Forward draws of the hidden groups' rho follow their priors: Uniform(0, 1) and
    Beta(2, 5), by a Kolmogorov-Smirnov test on 2,000 draws at level 1e-4 (a correct sampler
    fails it in one run in 10,000 per group)."""
    ard = _ard(simulate(40, seed=5))
    priors = {
        "rho": {"h2": {"dist": "Beta", "alpha": 2.0, "beta": 5.0}},
    }
    model = COMBINED(ard, priors=priors)
    assert model.hidden_log_shape
    draws = pm.draw(model.model["rho"], draws=2000, random_seed=1)  # (draw, group)
    groups = list(ard.groups)
    assert stats.kstest(draws[:, groups.index("h1")], stats.uniform.cdf).pvalue > 1e-4
    assert stats.kstest(draws[:, groups.index("h2")], stats.beta(2, 5).cdf).pvalue > 1e-4


def test_other_rho_priors_keep_rho_and_the_structure_key_says_which():
    ard = _ard(simulate(40, seed=6))
    narrow = {"rho": {"h1": Prior("Uniform", {"lower": 0.0, "upper": 0.5})}}
    model = COMBINED(ard, priors=narrow)
    assert not model.hidden_log_shape
    assert "log_barrier_shape" not in model.model.named_vars
    # a sweep from Uniform(0, 1) to Uniform(0, 0.5) changes only prior values, but not the
    # same compiled model: the parametrisation differs
    assert model.structure_key() != COMBINED(ard).structure_key()
    # the shared-dispersion form has no per-group shapes to reparametrise
    assert not COMBINED(ard, barrier_dispersion="shared").hidden_log_shape
