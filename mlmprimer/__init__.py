"""mlmprimer: companion library of the course *A Primer on Multilevel Regression*.

The names most chapters need are available at the top level:

>>> import mlmprimer as mlm
>>> m = mlm.lmer("Reaction ~ Days + (Days | Subject)", mlm.datasets.load("sleepstudy"))
>>> print(round(m.fixef["Days"], 2))
10.47

Modules, one concern each:

* ``formula``: R's formula language (parsing, term algebra, ``update``) on ``rsyntax`` (R's
  expression grammar); ``rterms``: its translation for patsy (the model matrices);
  ``validate``: every check of the data;
* ``control``: every threshold of a fit and the optimiser's choice (lme4's ``lmerControl``);
* ``design``: stage 1, the model frame, X, Z and the theta layout (``Design.with_response``);
* ``factor``: stage 2, the blocked Cholesky and the profiled deviance ``d(theta)``;
* ``optimize``: stage 3, BOBYQA or Nelder-Mead and the convergence check;
* ``solution``: stage 4, beta, b, sigma and vcov(beta) at theta;
* ``varcomp``: the variance components of a fit (``varcorr`` is a view of them);
* ``model``: :func:`lmer` (the four stages), ``refit`` and ``update``; ``lmermodel``: the results,
  :class:`LmerModel`;
* ``family`` (binomial and Poisson, their links), ``pirls`` (PIRLS, the Laplace and adaptive
  Gauss-Hermite deviance; ``pwls``, its weighted least squares step), ``glmer`` (:func:`glmer`,
  lme4's two stages), ``glmermodel`` (:class:`GlmerModel`);
* ``termalgebra`` (the formula's terms), ``rfunctions`` (R's ``poly``, ``scale``, ``log``, ...);
* ``rprint``: R-style printing; ``backends``: statsmodels MixedLM as a cross-check;
* ``bootstrap``, ``profile`` (with ``devprofile``), ``ddf``, ``icc``, ``compare``, ``pooling``,
  ``plots``: what is done with fits.
"""

from mlmprimer import datasets, plots, simulate
from mlmprimer.bootstrap import bootstrap
from mlmprimer.compare import compare, r2
from mlmprimer.glmer import glmer
from mlmprimer.glmermodel import GlmerModel, GlmerWarning
from mlmprimer.icc import design_effect, effective_sample_size, icc, icc_ci
from mlmprimer.model import LmerModel, LmerWarning, lmer
from mlmprimer.pooling import pooling
from mlmprimer.profile import confint

__version__ = "0.1.0"

__all__ = [
    "GlmerModel",
    "GlmerWarning",
    "LmerModel",
    "LmerWarning",
    "bootstrap",
    "compare",
    "confint",
    "datasets",
    "design_effect",
    "effective_sample_size",
    "glmer",
    "icc",
    "icc_ci",
    "lmer",
    "plots",
    "pooling",
    "r2",
    "simulate",
]
