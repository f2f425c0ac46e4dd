"""Step 2 of the recipe as checks: each a plain function returning a CheckResult.

``run_checks`` runs them all on a project (``make check``); the continuous one,
:class:`PredictionDynamics`, is a Keras callback usable in any ``fit``. One module
per recipe id: ``determinism`` (R2.1), ``init`` (R2.4; R2.5 is in
``recipe_keras.initialise``, which training applies), ``human`` (R2.6), ``baselines``
(R2.7), ``overfit`` (R2.8), ``capacity`` (R2.9), ``inputs`` (R2.10), ``dynamics``
(R2.11), ``dependencies`` (R2.12), ``equivalence`` (R2.13); ``subject`` is what they
examine, ``suite`` runs them all.
"""
