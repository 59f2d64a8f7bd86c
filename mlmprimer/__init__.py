"""mlmprimer: companion library of the course *A Primer on Multilevel Regression*.

The names most chapters need are available at the top level:

>>> import mlmprimer as mlm
>>> m = mlm.lmer("Reaction ~ Days + (Days | Subject)", mlm.datasets.load("sleepstudy"))
>>> print(round(m.fixef["Days"], 2))
10.47
"""

from mlmprimer import datasets, plots, simulate
from mlmprimer.compare import compare, r2
from mlmprimer.icc import design_effect, effective_sample_size, icc, icc_ci
from mlmprimer.model import LmerModel, LmerWarning, lmer
from mlmprimer.pooling import pooling
from mlmprimer.profile import confint

__version__ = "0.1.0"

__all__ = [
    "LmerModel",
    "LmerWarning",
    "compare",
    "confint",
    "datasets",
    "design_effect",
    "effective_sample_size",
    "icc",
    "icc_ci",
    "lmer",
    "plots",
    "pooling",
    "r2",
    "simulate",
]
