"""Claims: every lemma, theorem and headline figure of the seed papers as a runnable check.

See ``claims/registry.py`` for how to add one; ``sublab verify`` runs them (``claims/runner.py``).
"""
