"""Families and links of generalized linear (mixed) models, as R's ``binomial()`` and ``poisson()``.

A :class:`Family` bundles what a GLMM needs of the distribution of ``y_i`` given the random
effects, with ``g(mu_i) = eta_i``:

* the link ``g`` (``linkfun``), its inverse ``g^{-1}`` (``linkinv``) and ``d mu / d eta``
  (``mu_eta``), with R's clamping so that ``mu`` stays inside (0, 1) or above 0;
* the variance function ``V(mu)``: ``mu (1 - mu)`` (binomial), ``mu`` (Poisson);
* the deviance residuals ``d_i`` (``dev_resids``; their sum is the deviance of the GLM part);
* ``aic``: ``-2 sum log f(y_i | mu_i)``, R's ``family$aic`` without the ``2 p`` term;
* the first values of ``mu`` (``mustart``, R's ``initialize``) and draws of new responses.

Binomial responses are proportions ``y_i`` with prior weights ``w_i`` (the number of trials
for ``cbind(successes, failures)``), as R stores them.

Examples
--------
>>> import numpy as np
>>> from mlmprimer.family import family
>>> f = family("binomial")
>>> f.name, f.link, round(float(f.linkinv(np.array([0.0]))[0]), 2)
('binomial', 'logit', 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

__all__ = ["LINKS", "Family", "FamilyResponse", "Link", "family"]

_EPS = float(np.finfo(float).eps)
#: R's bound on |eta| in the logit link (-log(DBL_EPSILON))
_LOGIT_THRESH = -math.log(_EPS)
#: R's bound on |eta| in the probit link (-qnorm(DBL_EPSILON))
_PROBIT_THRESH = -float(stats.norm.ppf(_EPS))


@dataclass(frozen=True)
class Link:
    """A link function ``eta = g(mu)``: ``linkfun``, ``linkinv`` and ``mu_eta = d mu / d eta``.

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.family import LINKS
    >>> float(LINKS["log"].mu_eta(np.array([0.0]))[0])
    1.0
    """

    name: str
    linkfun: Callable[[np.ndarray], np.ndarray]
    linkinv: Callable[[np.ndarray], np.ndarray]
    mu_eta: Callable[[np.ndarray], np.ndarray]


def _clamp(eta: np.ndarray, bound: float) -> np.ndarray:
    """``eta`` limited to ``[-bound, bound]`` (np.clip's values, with less overhead)."""
    return np.minimum(np.maximum(eta, -bound), bound)


def _logit_inv(eta: np.ndarray) -> np.ndarray:
    return special.expit(_clamp(eta, _LOGIT_THRESH))


def _logit_mu_eta(eta: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(eta))
    return np.maximum(e / (1.0 + e) ** 2, _EPS)


def _probit_inv(eta: np.ndarray) -> np.ndarray:
    return special.ndtr(_clamp(eta, _PROBIT_THRESH))


def _probit_mu_eta(eta: np.ndarray) -> np.ndarray:
    return np.maximum(np.exp(-0.5 * eta**2) / math.sqrt(2.0 * math.pi), _EPS)


def _cloglog_inv(eta: np.ndarray) -> np.ndarray:
    return np.minimum(np.maximum(-np.expm1(-np.exp(eta)), _EPS), 1.0 - _EPS)


def _cloglog_mu_eta(eta: np.ndarray) -> np.ndarray:
    e = np.exp(np.minimum(eta, 700.0))
    return np.maximum(e * np.exp(-e), _EPS)


#: The links, by R's names.
LINKS: dict[str, Link] = {
    "logit": Link("logit", special.logit, _logit_inv, _logit_mu_eta),
    "probit": Link("probit", special.ndtri, _probit_inv, _probit_mu_eta),
    "cloglog": Link("cloglog", lambda mu: np.log(-np.log1p(-mu)), _cloglog_inv, _cloglog_mu_eta),
    "log": Link(
        "log",
        np.log,
        lambda eta: np.maximum(np.exp(eta), _EPS),
        lambda eta: np.maximum(np.exp(eta), _EPS),
    ),
}

_FAMILY_LINKS = {"binomial": ("logit", "probit", "cloglog"), "poisson": ("log",)}


def _ylogy(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """``y log(y / mu)`` with 0 for y = 0 (R's ``y_log_y``)."""
    return special.xlogy(y, y / mu)


@dataclass(frozen=True)
class Family:
    """A response distribution and its link, as R's ``binomial(link)`` or ``poisson()``.

    Attributes
    ----------
    name : {"binomial", "poisson"}
    link : str
        ``"logit"``, ``"probit"`` or ``"cloglog"`` (binomial); ``"log"`` (Poisson).

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.family import family
    >>> f = family("poisson")
    >>> y, mu = np.array([0.0, 2.0]), np.array([1.0, 2.0])
    >>> f.dev_resids(y, mu, np.ones(2)).round(4).tolist()
    [2.0, 0.0]
    """

    name: str
    link: str

    @property
    def _link(self) -> Link:
        return LINKS[self.link]

    def linkfun(self, mu: np.ndarray) -> np.ndarray:
        """``eta = g(mu)``."""
        return self._link.linkfun(mu)

    def linkinv(self, eta: np.ndarray) -> np.ndarray:
        """``mu = g^{-1}(eta)``, kept inside the support as R does."""
        return self._link.linkinv(eta)

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:
        """``d mu / d eta`` at ``eta`` (at least machine epsilon, as R)."""
        return self._link.mu_eta(eta)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        """The variance function ``V(mu)``: ``mu (1 - mu)`` or ``mu``.

        Examples
        --------
        >>> import numpy as np
        >>> from mlmprimer.family import family
        >>> family("binomial").variance(np.array([0.5])).tolist()
        [0.25]
        """
        if self.name == "binomial":
            return mu * (1.0 - mu)
        return mu

    def dev_resids(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """The deviance residuals ``d_i`` (their sum is the GLM deviance).

        Binomial: ``2 w (y log(y / mu) + (1 - y) log((1 - y) / (1 - mu)))``;
        Poisson: ``2 w (y log(y / mu) - (y - mu))``.
        """
        if self.name == "binomial":
            return 2.0 * wt * (_ylogy(y, mu) + _ylogy(1.0 - y, 1.0 - mu))
        return 2.0 * wt * (_ylogy(y, mu) - (y - mu))

    def aic(self, y: np.ndarray, m: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> float:
        """``-2 sum log f(y_i | mu_i)``, R's ``family$aic`` (``m``: binomial trials).

        Binomial: ``-2 sum (w / m) log dbinom(round(m y), round(m), mu)``; Poisson:
        ``-2 sum w log dpois(y, mu)`` (for non-integer ``y`` with ``log Gamma(y + 1)`` in place
        of ``log y!``, where R's density is 0).

        Examples
        --------
        >>> import numpy as np
        >>> from mlmprimer.family import family
        >>> y = np.array([1.0, 0.0]); one = np.ones(2)
        >>> round(family("binomial").aic(y, one, np.array([0.5, 0.5]), one), 4)
        2.7726
        """
        if self.name == "binomial":
            k, size = np.round(m * y), np.round(m)
            logf = (
                special.gammaln(size + 1.0)
                - special.gammaln(k + 1.0)
                - special.gammaln(size - k + 1.0)
                + special.xlogy(k, mu)
                + special.xlog1py(size - k, -mu)
            )
            factor = np.where(m > 0, wt / np.where(m > 0, m, 1.0), 0.0)
            return float(-2.0 * np.sum(factor * logf))
        # the Poisson density continued to non-integer y by the gamma function
        logf = special.xlogy(y, mu) - mu - special.gammaln(y + 1.0)
        return float(-2.0 * np.sum(wt * logf))

    def mustart(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """R's starting values of ``mu``: ``(w y + 1/2) / (w + 1)`` or ``y + 1/10``."""
        if self.name == "binomial":
            return (wt * y + 0.5) / (wt + 1.0)
        return y + 0.1

    def sample(self, mu: np.ndarray, m: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One response drawn at ``mu``: proportions of ``m`` trials, or counts.

        Examples
        --------
        >>> import numpy as np
        >>> from mlmprimer.family import family
        >>> rng = np.random.default_rng(1)
        >>> family("binomial").sample(np.array([0.0, 1.0]), np.ones(2), rng).tolist()
        [0.0, 1.0]
        """
        if self.name == "binomial":
            size = np.round(m).astype(np.int64)
            return rng.binomial(size, mu) / np.where(size > 0, size, 1)
        return rng.poisson(mu).astype(float)


class FamilyResponse:
    """A family bound to one response: what does not depend on ``mu`` is computed once.

    ``dev_resids(mu)`` and ``aic(mu)`` give the values of :meth:`Family.dev_resids` and
    :meth:`Family.aic` at ``(y, m, wt)``, with the terms free of ``mu`` (``2 w``, ``1 - y``,
    the log binomial coefficients, ``log y!``) precomputed, for the many evaluations of a
    fit.

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.family import FamilyResponse, family
    >>> f = family("binomial")
    >>> y, one, mu = np.array([1.0, 0.0]), np.ones(2), np.array([0.3, 0.6])
    >>> r = FamilyResponse(f, y, one, one)
    >>> bool(np.allclose(r.dev_resids(mu), f.dev_resids(y, mu, one)))
    True
    >>> round(r.aic(mu), 10) == round(f.aic(y, one, mu, one), 10)
    True
    """

    def __init__(self, fam: Family, y: np.ndarray, m: np.ndarray, wt: np.ndarray) -> None:
        self.family = fam
        self.linkinv = fam._link.linkinv
        self.mu_eta = fam._link.mu_eta
        self.variance = fam.variance
        self.y = y = np.asarray(y, dtype=float)
        self._2wt = 2.0 * np.asarray(wt, dtype=float)
        self.binomial = fam.name == "binomial"
        if self.binomial:
            self._1my = 1.0 - y
            k, size = np.round(m * y), np.round(m)
            self._k, self._nk = k, size - k
            self._lchoose = (
                special.gammaln(size + 1.0)
                - special.gammaln(k + 1.0)
                - special.gammaln(size - k + 1.0)
            )
            self._afac = np.where(m > 0, wt / np.where(m > 0, m, 1.0), 0.0)
        else:
            self._lgy = special.gammaln(y + 1.0)
            self._afac = np.asarray(wt, dtype=float)

    def dev_resids(self, mu: np.ndarray) -> np.ndarray:
        """The deviance residuals ``d_i`` at ``mu`` (:meth:`Family.dev_resids`)."""
        if self.binomial:
            return self._2wt * (_ylogy(self.y, mu) + _ylogy(self._1my, 1.0 - mu))
        return self._2wt * (_ylogy(self.y, mu) - (self.y - mu))

    def aic(self, mu: np.ndarray) -> float:
        """``-2 sum log f(y_i | mu_i)`` at ``mu`` (:meth:`Family.aic`)."""
        if self.binomial:
            logf = self._lchoose + special.xlogy(self._k, mu) + special.xlog1py(self._nk, -mu)
        else:
            logf = special.xlogy(self.y, mu) - mu - self._lgy
        return float(-2.0 * (self._afac * logf).sum())


def family(name: str, link: str | None = None) -> Family:
    """The family ``name`` with ``link`` (default: the canonical link), checked.

    Parameters
    ----------
    name : {"binomial", "poisson"}
    link : str, optional
        Binomial: ``"logit"`` (default), ``"probit"``, ``"cloglog"``; Poisson: ``"log"``.

    Returns
    -------
    Family

    Raises
    ------
    ValueError
        An unknown family, or a link the family does not have.

    Examples
    --------
    >>> from mlmprimer.family import family
    >>> family("binomial", "probit").link
    'probit'
    >>> family("poisson", "logit")
    Traceback (most recent call last):
    ...
    ValueError: the poisson family has no link 'logit'; its links: 'log'
    """
    if not isinstance(name, str) or name not in _FAMILY_LINKS:
        raise ValueError(f"family must be 'binomial' or 'poisson', not {name!r}")
    links = _FAMILY_LINKS[name]
    chosen = links[0] if link is None else link
    if chosen not in links:
        raise ValueError(
            f"the {name} family has no link {chosen!r}; its links: "
            + ", ".join(repr(k) for k in links)
        )
    return Family(name, chosen)
