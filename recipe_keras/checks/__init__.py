"""Step 2 of the recipe as checks: each a plain function returning a CheckResult.

``run_checks`` runs them all on a project (``make check``); the continuous
one, :class:`PredictionDynamics`, is a Keras callback usable in any ``fit``.
Submodules: ``init`` (R2.4, R2.5), ``training`` (R2.1, R2.7, R2.8, R2.9), ``linear``
(R2.7's linear baseline), ``human`` (R2.6), ``inputs`` (R2.10), ``dynamics`` (R2.11),
``dependencies`` (R2.12), ``equivalence`` (R2.13), ``suite`` (all of them).
"""
