"""Simulated multilevel data with known true parameters.

Every generator takes its design and model parameters as keyword arguments with defaults
and a random source ``rng``: an ``int`` seed (default ``0``, so a call without ``rng`` is
reproducible) or a :class:`numpy.random.Generator`, which is used, and advanced, as given.
``None`` is refused: pass a seed so that the lecture's numbers can be re-created.

The result is a :class:`pandas.DataFrame` whose grouping columns are unordered
``Categorical`` with zero-padded labels (``S01``, ``S02``, ...), and whose
``df.attrs["truth"]`` holds the model parameters used, as a ``dict`` of floats.
Group effects are drawn before predictors and residuals, so with the same seed a group's
true effect does not change when only the number of observations per group does.

Examples
--------
>>> from mlmprimer import simulate
>>> df = simulate.reaction_times(rng=1)
>>> df.shape
(180, 2)
>>> df.attrs["truth"]
{'beta0': 300.0, 'tau': 35.0, 'sigma': 45.0}
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection

import numpy as np
import pandas as pd

__all__ = [
    "drivers_cars",
    "patients_doctors",
    "reaction_times",
    "school_level_predictor",
    "schools_ses",
    "schools_two_levels",
]


# --------------------------------------------------------------------------- checks


def _generator(rng: np.random.Generator | int) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, bool) or not isinstance(rng, numbers.Integral):
        raise TypeError(
            f"rng must be an int seed or a numpy.random.Generator, got {type(rng).__name__}"
        )
    if rng < 0:
        raise ValueError(f"rng must be a non-negative seed, got {rng}")
    return np.random.default_rng(int(rng))


def _count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _real(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return value


def _sd(name: str, value: float) -> float:
    value = _real(name, value)
    if value < 0:
        raise ValueError(f"{name} must be a non-negative standard deviation, got {value!r}")
    return value


def _truth(sds: Collection[str], **params: float) -> dict[str, float]:
    """Check a generator's model parameters and return them as floats, in the order given.

    Every parameter must be a finite number; those named in ``sds`` are standard deviations
    and must also be non-negative. The result is what the data's ``attrs["truth"]`` holds.
    """
    return {name: (_sd if name in sds else _real)(name, value) for name, value in params.items()}


def _grouping(prefix: str, n: int, index: np.ndarray) -> pd.Categorical:
    """Group labels ``prefix`` + zero-padded 1..n (so they sort in numeric order) at ``index``."""
    width = len(str(n))
    labels = [f"{prefix}{i:0{width}d}" for i in range(1, n + 1)]
    return pd.Categorical.from_codes(index, categories=labels)


# ----------------------------------------------------------------------- generators


def reaction_times(
    n_subjects: int = 18,
    n_obs: int = 10,
    beta0: float = 300.0,
    tau: float = 35.0,
    sigma: float = 45.0,
    rng: np.random.Generator | int = 0,
) -> pd.DataFrame:
    """Reaction times of subjects measured repeatedly: the null (intercept-only) model.

    ``reaction_ij = beta0 + u_j + e_ij`` with subject effects ``u_j ~ N(0, tau^2)`` and
    residuals ``e_ij ~ N(0, sigma^2)``, ``n_obs`` measurements of each subject. With the
    defaults the intraclass correlation is ``35^2 / (35^2 + 45^2) = 0.377``.

    Parameters
    ----------
    n_subjects, n_obs : int
        Number of subjects and of measurements per subject (balanced).
    beta0 : float
        Grand mean reaction time, beta_0 (ms). (lme4's ``theta`` is something else: the
        covariance parameter, here tau / sigma.)
    tau : float
        Between-subject standard deviation (ms).
    sigma : float
        Within-subject (residual) standard deviation (ms).
    rng : int or numpy.random.Generator
        Seed or generator; the default ``0`` makes the call reproducible.

    Returns
    -------
    pandas.DataFrame
        ``n_subjects * n_obs`` rows with ``subject`` (categorical ``S01``, ...) and
        ``reaction`` (ms). ``attrs["truth"]`` is ``{"beta0", "tau", "sigma"}``; by default
        ``{"beta0": 300.0, "tau": 35.0, "sigma": 45.0}``.

    Examples
    --------
    >>> from mlmprimer.simulate import reaction_times
    >>> df = reaction_times(n_subjects=4, n_obs=3, rng=7)
    >>> df.columns.tolist(), len(df)
    (['subject', 'reaction'], 12)
    >>> df["subject"].cat.categories.tolist()
    ['S1', 'S2', 'S3', 'S4']
    """
    n_subjects = _count("n_subjects", n_subjects)
    n_obs = _count("n_obs", n_obs)
    truth = _truth(("tau", "sigma"), beta0=beta0, tau=tau, sigma=sigma)
    beta0, tau, sigma = truth.values()
    gen = _generator(rng)

    u = gen.normal(0.0, tau, size=n_subjects)
    j = np.repeat(np.arange(n_subjects), n_obs)
    reaction = beta0 + u[j] + gen.normal(0.0, sigma, size=j.size)
    df = pd.DataFrame({"subject": _grouping("S", n_subjects, j), "reaction": reaction})
    df.attrs["truth"] = truth
    return df


def drivers_cars(
    n_drivers: int = 10,
    n_cars: int = 8,
    reps: int = 2,
    mu: float = 30.0,
    tau_driver: float = 3.0,
    tau_car: float = 2.0,
    sigma: float = 1.5,
    rng: np.random.Generator | int = 0,
) -> pd.DataFrame:
    """Fuel economy with drivers crossed with cars: two crossed random intercepts.

    Every driver drives every car ``reps`` times:
    ``mpg_ijk = mu + a_i + b_j + e_ijk`` with driver effects ``a_i ~ N(0, tau_driver^2)``,
    car effects ``b_j ~ N(0, tau_car^2)`` and residuals ``e_ijk ~ N(0, sigma^2)``; there is
    no driver-by-car interaction. The lme4 model is ``mpg ~ 1 + (1 | driver) + (1 | car)``.

    Parameters
    ----------
    n_drivers, n_cars, reps : int
        Numbers of drivers, cars and repeated drives of each driver-car pair.
    mu : float
        Mean fuel economy (miles per US gallon).
    tau_driver, tau_car : float
        Standard deviations of the driver and car effects (mpg).
    sigma : float
        Residual standard deviation (mpg).
    rng : int or numpy.random.Generator
        Seed or generator; the default ``0`` makes the call reproducible.

    Returns
    -------
    pandas.DataFrame
        ``n_drivers * n_cars * reps`` rows with ``driver`` (``D01``, ...), ``car``
        (``C1``, ...) and ``mpg``. ``attrs["truth"]`` is
        ``{"mu": 30.0, "tau_driver": 3.0, "tau_car": 2.0, "sigma": 1.5}`` by default.

    Examples
    --------
    >>> from mlmprimer.simulate import drivers_cars
    >>> df = drivers_cars()
    >>> df.shape
    (160, 3)
    >>> df.groupby(["driver", "car"], observed=True).size().unique().tolist()
    [2]
    """
    n_drivers = _count("n_drivers", n_drivers)
    n_cars = _count("n_cars", n_cars)
    reps = _count("reps", reps)
    truth = _truth(
        ("tau_driver", "tau_car", "sigma"),
        mu=mu,
        tau_driver=tau_driver,
        tau_car=tau_car,
        sigma=sigma,
    )
    mu, tau_driver, tau_car, sigma = truth.values()
    gen = _generator(rng)

    a = gen.normal(0.0, tau_driver, size=n_drivers)
    b = gen.normal(0.0, tau_car, size=n_cars)
    i = np.repeat(np.arange(n_drivers), n_cars * reps)
    j = np.tile(np.repeat(np.arange(n_cars), reps), n_drivers)
    mpg = mu + a[i] + b[j] + gen.normal(0.0, sigma, size=i.size)
    df = pd.DataFrame(
        {
            "driver": _grouping("D", n_drivers, i),
            "car": _grouping("C", n_cars, j),
            "mpg": mpg,
        }
    )
    df.attrs["truth"] = truth
    return df


def schools_ses(
    n_schools: int = 60,
    n_students: int = 30,
    beta0: float = 12.0,
    beta1: float = 2.5,
    tau0: float = 2.5,
    tau1: float = 1.0,
    rho: float = 0.3,
    sigma: float = 6.0,
    ses_between_sd: float = 0.0,
    rng: np.random.Generator | int = 0,
) -> pd.DataFrame:
    """Maths scores and socio-economic status: random intercepts and correlated slopes.

    ``math_ij = beta0 + u0_j + (beta1 + u1_j) ses_ij + e_ij`` where ``(u0_j, u1_j)`` is
    bivariate normal with standard deviations ``tau0``, ``tau1`` and correlation ``rho``,
    and ``e_ij ~ N(0, sigma^2)``. Student ``ses_ij = m_j + z_ij`` with ``z_ij ~ N(0, 1)``
    and a school shift ``m_j ~ N(0, ses_between_sd^2)`` (none by default, so ``ses`` is
    standard normal). The lme4 model is ``math ~ ses + (ses | school)``. The defaults echo
    the High School and Beyond data (:func:`mlmprimer.datasets.load` ``("hsb")``).

    Parameters
    ----------
    n_schools, n_students : int
        Number of schools and of students per school (balanced).
    beta0 : float
        Mean score at ``ses = 0`` (test points).
    beta1 : float
        Mean increase of the score per unit of ``ses`` (points per SD of ses).
    tau0, tau1 : float
        Standard deviations of the school intercepts (points) and slopes (points per SD).
    rho : float
        Correlation of a school's intercept and slope, in ``[-1, 1]``.
    sigma : float
        Residual standard deviation (points).
    ses_between_sd : float
        Standard deviation of the school means of ``ses`` (SD units).
    rng : int or numpy.random.Generator
        Seed or generator; the default ``0`` makes the call reproducible.

    Returns
    -------
    pandas.DataFrame
        ``n_schools * n_students`` rows with ``school`` (``S01``, ...), ``ses`` and
        ``math``. ``attrs["truth"]`` is ``{"beta0": 12.0, "beta1": 2.5, "tau0": 2.5,
        "tau1": 1.0, "rho": 0.3, "sigma": 6.0}`` by default.

    Examples
    --------
    >>> from mlmprimer.simulate import schools_ses
    >>> df = schools_ses(n_schools=5, n_students=4)
    >>> df.columns.tolist(), len(df)
    (['school', 'ses', 'math'], 20)
    >>> sorted(df.attrs["truth"])
    ['beta0', 'beta1', 'rho', 'sigma', 'tau0', 'tau1']
    """
    n_schools = _count("n_schools", n_schools)
    n_students = _count("n_students", n_students)
    truth = _truth(
        ("tau0", "tau1", "sigma"),
        beta0=beta0,
        beta1=beta1,
        tau0=tau0,
        tau1=tau1,
        rho=rho,
        sigma=sigma,
    )
    beta0, beta1, tau0, tau1, rho, sigma = truth.values()
    if abs(rho) > 1:
        raise ValueError(f"rho must be a correlation in [-1, 1], got {rho!r}")
    ses_between_sd = _sd("ses_between_sd", ses_between_sd)
    gen = _generator(rng)

    # (u0, u1) = (tau0 z0, tau1 (rho z0 + sqrt(1 - rho^2) z1)), valid for |rho| = 1 too.
    z = gen.standard_normal(size=(n_schools, 2))
    u0 = tau0 * z[:, 0]
    u1 = tau1 * (rho * z[:, 0] + math.sqrt(1.0 - rho * rho) * z[:, 1])
    shift = gen.normal(0.0, ses_between_sd, size=n_schools)
    j = np.repeat(np.arange(n_schools), n_students)
    ses = shift[j] + gen.standard_normal(size=j.size)
    math_score = beta0 + u0[j] + (beta1 + u1[j]) * ses + gen.normal(0.0, sigma, size=j.size)
    df = pd.DataFrame({"school": _grouping("S", n_schools, j), "ses": ses, "math": math_score})
    df.attrs["truth"] = truth
    return df


def patients_doctors(
    n_doctors: int = 40,
    n_patients: int = 25,
    beta0: float = 3.0,
    beta_age: float = 0.05,
    beta_experience: float = -0.03,
    tau0: float = 0.5,
    tau_age: float = 0.02,
    sigma: float = 1.0,
    rng: np.random.Generator | int = 0,
) -> pd.DataFrame:
    """Yearly treatment cost of patients by age, with doctors' experience at level 2.

    ``cost_ij = beta0 + beta_experience * experience_j + u0_j
    + (beta_age + u1_j) * age_ij + e_ij``, with independent doctor effects
    ``u0_j ~ N(0, tau0^2)`` (at age 0) and ``u1_j ~ N(0, tau_age^2)``, and
    ``e_ij ~ N(0, sigma^2)``. A doctor's experience is a whole number of years drawn
    uniformly from 1 to 35 and is constant within the doctor; patients' ages are whole
    years drawn uniformly from 20 to 85. The lme4 model is
    ``cost ~ age + experience + (age | doctor)``; as the intercept refers to age 0, far
    from the data, the fitted intercept-slope correlation is poorly determined (its true
    value is 0). With the defaults a 50-year-old's expected cost is 5.5 thousand at 0
    years of experience and 4.9 thousand at 20; the normal model can give a negative
    cost, for about one patient in 1400.

    Parameters
    ----------
    n_doctors, n_patients : int
        Number of doctors and of patients per doctor (balanced).
    beta0 : float
        Expected cost at age 0 with 0 years of experience (thousands of currency units).
    beta_age : float
        Expected cost increase per year of patient age (thousands per year).
    beta_experience : float
        Expected cost change per year of the doctor's experience (thousands per year).
    tau0 : float
        Standard deviation of the doctors' intercepts (thousands).
    tau_age : float
        Standard deviation of the doctors' age slopes (thousands per year).
    sigma : float
        Residual standard deviation (thousands).
    rng : int or numpy.random.Generator
        Seed or generator; the default ``0`` makes the call reproducible.

    Returns
    -------
    pandas.DataFrame
        ``n_doctors * n_patients`` rows with ``doctor`` (``Dr01``, ...), ``experience``
        (years, int), ``age`` (years, int) and ``cost`` (thousands of currency units per
        year). ``attrs["truth"]`` is ``{"beta0": 3.0, "beta_age": 0.05,
        "beta_experience": -0.03, "tau0": 0.5, "tau_age": 0.02, "sigma": 1.0}`` by
        default.

    Examples
    --------
    >>> from mlmprimer.simulate import patients_doctors
    >>> df = patients_doctors(n_doctors=3, n_patients=2, rng=5)
    >>> df.columns.tolist()
    ['doctor', 'experience', 'age', 'cost']
    >>> df.groupby("doctor", observed=True)["experience"].nunique().tolist()
    [1, 1, 1]
    """
    n_doctors = _count("n_doctors", n_doctors)
    n_patients = _count("n_patients", n_patients)
    truth = _truth(
        ("tau0", "tau_age", "sigma"),
        beta0=beta0,
        beta_age=beta_age,
        beta_experience=beta_experience,
        tau0=tau0,
        tau_age=tau_age,
        sigma=sigma,
    )
    beta0, beta_age, beta_experience, tau0, tau_age, sigma = truth.values()
    gen = _generator(rng)

    u0 = gen.normal(0.0, tau0, size=n_doctors)
    u1 = gen.normal(0.0, tau_age, size=n_doctors)
    experience = gen.integers(1, 36, size=n_doctors)
    j = np.repeat(np.arange(n_doctors), n_patients)
    age = gen.integers(20, 86, size=j.size)
    cost = (
        beta0
        + beta_experience * experience[j]
        + u0[j]
        + (beta_age + u1[j]) * age
        + gen.normal(0.0, sigma, size=j.size)
    )
    df = pd.DataFrame(
        {
            "doctor": _grouping("Dr", n_doctors, j),
            "experience": experience[j].astype(np.int64),
            "age": age.astype(np.int64),
            "cost": cost,
        }
    )
    df.attrs["truth"] = truth
    return df


def school_level_predictor(
    n_schools: int = 40,
    n_students: int = 25,
    beta0: float = 50.0,
    beta_w: float = 2.0,
    tau: float = 5.0,
    sigma: float = 10.0,
    rng: np.random.Generator | int = 0,
) -> pd.DataFrame:
    """Scores with a school-level covariate: the case where OLS standard errors fail.

    ``y_ij = beta0 + beta_w * w_j + u_j + e_ij`` with a school covariate
    ``w_j ~ N(0, 1)`` that is constant within school, ``u_j ~ N(0, tau^2)`` and
    ``e_ij ~ N(0, sigma^2)``. Ordinary least squares of ``y`` on ``w`` treats the
    ``n_schools * n_students`` rows as independent, while there are only ``n_schools``
    independent values of ``w``: its standard error for ``beta_w`` is too small by about
    the square root of the design effect ``1 + (n_students - 1) * ICC`` with
    ``ICC = tau^2 / (tau^2 + sigma^2)``; with the defaults ``ICC = 0.2``, the design
    effect is 5.8 and the OLS standard error is about 2.4 times too small.

    Parameters
    ----------
    n_schools, n_students : int
        Number of schools and of students per school (balanced).
    beta0 : float
        Mean score at ``w = 0`` (points).
    beta_w : float
        Effect of one standard deviation of ``w`` on the score (points).
    tau : float
        Between-school standard deviation (points).
    sigma : float
        Within-school (residual) standard deviation (points).
    rng : int or numpy.random.Generator
        Seed or generator; the default ``0`` makes the call reproducible.

    Returns
    -------
    pandas.DataFrame
        ``n_schools * n_students`` rows with ``school`` (``S01``, ...), ``w`` (SD units)
        and ``y`` (points). ``attrs["truth"]`` is ``{"beta0": 50.0, "beta_w": 2.0,
        "tau": 5.0, "sigma": 10.0}`` by default.

    Examples
    --------
    >>> from mlmprimer.simulate import school_level_predictor
    >>> df = school_level_predictor()
    >>> df.shape
    (1000, 3)
    >>> int(df.groupby("school", observed=True)["w"].nunique().max())
    1
    """
    n_schools = _count("n_schools", n_schools)
    n_students = _count("n_students", n_students)
    truth = _truth(("tau", "sigma"), beta0=beta0, beta_w=beta_w, tau=tau, sigma=sigma)
    beta0, beta_w, tau, sigma = truth.values()
    gen = _generator(rng)

    u = gen.normal(0.0, tau, size=n_schools)
    w = gen.standard_normal(size=n_schools)
    j = np.repeat(np.arange(n_schools), n_students)
    y = beta0 + beta_w * w[j] + u[j] + gen.normal(0.0, sigma, size=j.size)
    df = pd.DataFrame({"school": _grouping("S", n_schools, j), "w": w[j], "y": y})
    df.attrs["truth"] = truth
    return df


def schools_two_levels(
    n_schools: int = 30,
    n_students: int = 20,
    beta0: float = 50.0,
    beta_x: float = 1.0,
    beta_w: float = 2.0,
    tau: float = 5.0,
    sigma: float = 10.0,
    rng: np.random.Generator | int = 0,
) -> pd.DataFrame:
    """Scores with one student-level and one school-level predictor: the design of a study.

    ``y_ij = beta0 + beta_x * x_ij + beta_w * w_j + u_j + e_ij`` with a student covariate
    ``x_ij ~ N(0, 1)`` drawn independently of the school, a school covariate
    ``w_j ~ N(0, 1)`` constant within school, ``u_j ~ N(0, tau^2)`` and
    ``e_ij ~ N(0, sigma^2)``. The lme4 model is ``y ~ x + w + (1 | school)``. The precision
    of ``beta_x`` is governed by the number of students, that of ``beta_w`` by the number
    of schools and the design effect ``1 + (n_students - 1) * ICC``; with the defaults
    ``ICC = 0.2``.

    Parameters
    ----------
    n_schools, n_students : int
        Number of schools and of students per school (balanced).
    beta0 : float
        Mean score at ``x = w = 0`` (points).
    beta_x : float
        Effect of one standard deviation of the student covariate ``x`` (points).
    beta_w : float
        Effect of one standard deviation of the school covariate ``w`` (points).
    tau : float
        Between-school standard deviation (points).
    sigma : float
        Within-school (residual) standard deviation (points).
    rng : int or numpy.random.Generator
        Seed or generator; the default ``0`` makes the call reproducible.

    Returns
    -------
    pandas.DataFrame
        ``n_schools * n_students`` rows with ``school`` (``S01``, ...), ``x``, ``w`` (SD
        units) and ``y`` (points). ``attrs["truth"]`` is ``{"beta0": 50.0, "beta_x": 1.0,
        "beta_w": 2.0, "tau": 5.0, "sigma": 10.0}`` by default.

    Examples
    --------
    >>> from mlmprimer.simulate import schools_two_levels
    >>> df = schools_two_levels(n_schools=3, n_students=4, rng=2)
    >>> df.columns.tolist(), len(df)
    (['school', 'x', 'w', 'y'], 12)
    >>> df.groupby("school", observed=True)["w"].nunique().tolist()
    [1, 1, 1]
    """
    n_schools = _count("n_schools", n_schools)
    n_students = _count("n_students", n_students)
    truth = _truth(
        ("tau", "sigma"), beta0=beta0, beta_x=beta_x, beta_w=beta_w, tau=tau, sigma=sigma
    )
    beta0, beta_x, beta_w, tau, sigma = truth.values()
    gen = _generator(rng)

    u = gen.normal(0.0, tau, size=n_schools)
    w = gen.standard_normal(size=n_schools)
    j = np.repeat(np.arange(n_schools), n_students)
    x = gen.standard_normal(size=j.size)
    y = beta0 + beta_x * x + beta_w * w[j] + u[j] + gen.normal(0.0, sigma, size=j.size)
    df = pd.DataFrame({"school": _grouping("S", n_schools, j), "x": x, "w": w[j], "y": y})
    df.attrs["truth"] = truth
    return df
