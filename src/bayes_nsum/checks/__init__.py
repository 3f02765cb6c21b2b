"""Checks of a model and its fit, written once for every model.

Each check calls the model's own methods (:meth:`~bayes_nsum.estimators.base.NSUMModel.simulate`,
:meth:`~bayes_nsum.estimators.base.NSUMModel.pointwise_loglik`,
:meth:`~bayes_nsum.estimators.base.NSUMModel.latent`, :meth:`~bayes_nsum.estimators.base.NSUMModel.prior_draws`)
or reads a saved fit; none asks which model it is.

* :mod:`.predictive` -- posterior predictive checks (``posterior_predictive`` group, ``ppc.csv``);
* :mod:`.loo` -- per-respondent log-likelihood (``log_likelihood`` group) and PSIS-LOO comparison;
* :mod:`.degrees` -- each respondent's posterior network size;
* :mod:`.prior_predictive` -- what the priors imply before the data;
* :mod:`.sensitivity` -- power-scaling prior and likelihood sensitivity;
* :mod:`.consistency` -- internal consistency (each known group held out);
* :mod:`.calibration` -- simulation-based calibration.
"""
