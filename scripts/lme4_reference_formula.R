#!/usr/bin/env Rscript
# lme4 reference fits for R's formula language, prior weights, offsets and update().
#
# Fits models that use poly(), I(x^2), log(), scale(), factor()/relevel(), backticked and dotted
# names, crossing with ^, prior weights, offsets (in the formula and as an argument) and
# update(), and writes one JSON fixture per model. tests/test_lme4_formula.py compares
# mlmprimer.lmer() with them and re-runs this script to check that the committed fixtures are
# still what lme4 gives.
#
# Usage (from the repository root):
#
#   Rscript scripts/lme4_reference_formula.R [OUTDIR]
#
#   OUTDIR  where the fixtures go (default: tests/fixtures/lme4_formula); one <name>.json each.
#
# Data: the R packages' copies of the course's data sets (lme4::sleepstudy, mlmRev::Hsb82, via
# scripts/r_datasets.R), and data simulated here with fixed seeds. Simulated values are rounded
# to a few decimals, so that the JSON text holds them exactly; they are written into the
# fixture ("data"), as are prior weights and offset values, so that the Python side fits the
# same numbers. Numbers are written at full precision: the shortest decimal (15, 16 or 17
# significant digits) that reads back as the same double.
#
# Each fixture holds: the formula as given to lmer() and as lme4 returns it (formula(m)), the
# REML flag, nobs, ngroups, fixed effects with standard errors, as.data.frame(VarCorr(m)) as
# rows, sigma, logLik, deviance (REMLcrit for REML fits), theta, the first 6 fitted values,
# population-level predictions for new data where the model has poly() or scale(), the printed
# summary(m), and the R and package versions.
#
# Needs R >= 4 with lme4 and mlmRev (Debian: r-cran-lme4 r-cran-mlmrev; `make sysdeps`). The JSON
# writer below uses base R only.

suppressPackageStartupMessages({
  library(lme4)
  library(mlmRev)
})

local({
  file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  source(file.path(dirname(normalizePath(sub("^--file=", "", file_arg[1]))), "r_datasets.R"))
}, envir = globalenv())

outdir <- reference_paths("lme4_formula")$outdir

# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

sleep <- r_package_data("sleepstudy")
hsb <- r_package_data("hsb")

# Grouped data with heteroscedastic residuals: residual variance 1 / w.
simulate_weighted <- function() {
  set.seed(20240611)
  ng <- 30
  sizes <- sample(3:12, ng, replace = TRUE)
  g <- factor(rep(sprintf("g%02d", seq_len(ng)), sizes))
  n <- length(g)
  x <- round(rnorm(n), 3)
  w <- round(runif(n, 0.2, 3), 3)
  u0 <- rnorm(ng, 0, 1.5)
  u1 <- rnorm(ng, 0, 0.5)
  y <- round(2 + 0.8 * x + u0[g] + u1[g] * x + rnorm(n, 0, 1 / sqrt(w)), 4)
  data.frame(g = g, x = x, w = w, y = y)
}

# Names R writes with dots, with a space (backticks), a grouping factor with a space, and a
# factor whose levels are not in alphabetical order.
simulate_names <- function() {
  set.seed(42)
  ng <- 25
  m <- 8
  n <- ng * m
  grp <- factor(rep(sprintf("s%02d", seq_len(ng)), each = m))
  my.var <- round(runif(n, 0, 10), 2)
  my_sp <- round(rnorm(n), 2)
  trt <- factor(sample(c("control", "low", "high"), n, replace = TRUE),
                levels = c("control", "low", "high"))
  y <- round(1 + 0.3 * my.var - 0.5 * my_sp + c(0, 1, 2)[trt] + rnorm(ng)[grp] + rnorm(n), 4)
  d <- data.frame(grp, my.var, my_sp, trt, y)
  names(d) <- c("my group", "my.var", "my var", "trt", "y")
  d
}

weighted <- simulate_weighted()
named <- simulate_names()
sleep_w <- rep(c(0.5, 1, 2, 4), length.out = nrow(sleep))
sleep_off <- 250 + 5 * sleep$Days

# ---------------------------------------------------------------------------------------------
# The reference models. `data` names the data set ("sleepstudy" and "hsb" are the course's
# data sets; "weighted" and "named" are simulated and written into the fixture). `weights` and
# `offset` are vectors (written into the fixture); `update` refits the base model with
# update(m, <update>).
# ---------------------------------------------------------------------------------------------

models <- list(
  list(name = "sleep_poly2", data = "sleepstudy",
       formula = "Reaction ~ poly(Days, 2) + (Days | Subject)", REML = TRUE,
       newdata = data.frame(Days = c(0, 2.5, 9, 12))),
  list(name = "sleep_poly3_raw_ml", data = "sleepstudy",
       formula = "Reaction ~ poly(Days, 3, raw = TRUE) + (1 | Subject)", REML = FALSE),
  list(name = "sleep_days_squared", data = "sleepstudy",
       formula = "Reaction ~ Days + I(Days^2) + (Days | Subject)", REML = TRUE),
  list(name = "sleep_log_scale", data = "sleepstudy",
       formula = "log(Reaction) ~ scale(Days) + (1 | Subject)", REML = TRUE,
       newdata = data.frame(Days = c(0, 4.5, 11))),
  list(name = "sleep_sqrt_log10_exp", data = "sleepstudy",
       formula = "sqrt(Reaction) ~ log10(Days + 1) + exp(Days/10) + (1 | Subject)",
       REML = FALSE),
  list(name = "sleep_factor_relevel", data = "sleepstudy",
       formula = "Reaction ~ relevel(factor(Days > 4), ref = \"TRUE\") + factor(Days %% 3) + (1 | Subject)",
       REML = TRUE),
  list(name = "sleep_offset_formula", data = "sleepstudy",
       formula = "Reaction ~ Days + offset(10 * Days) + (Days | Subject)", REML = TRUE),
  list(name = "sleep_offset_argument", data = "sleepstudy",
       formula = "Reaction ~ Days + (Days | Subject)", REML = FALSE, offset = sleep_off),
  list(name = "sleep_weights", data = "sleepstudy",
       formula = "Reaction ~ Days + (Days | Subject)", REML = TRUE, weights = sleep_w),
  list(name = "sleep_weights_ml", data = "sleepstudy",
       formula = "Reaction ~ Days + (Days | Subject)", REML = FALSE, weights = sleep_w),
  list(name = "weighted_slopes", data = "weighted",
       formula = "y ~ x + (x | g)", REML = TRUE, weights = weighted$w),
  list(name = "weighted_offset_ml", data = "weighted",
       formula = "y ~ x + offset(0.5 * x) + (1 | g)", REML = FALSE, weights = weighted$w),
  list(name = "named_columns", data = "named",
       formula = "y ~ my.var * trt + `my var` + (1 | `my group`)", REML = TRUE),
  list(name = "named_crossing", data = "named",
       formula = "y ~ (my.var + `my var` + trt)^2 + (1 | `my group`)", REML = FALSE),
  list(name = "hsb_sector_poly", data = "hsb",
       formula = "mAch ~ ses * sector + poly(meanses, 2) + (1 | school)", REML = TRUE),
  list(name = "sleep_update_add", data = "sleepstudy",
       formula = "Reaction ~ Days + (Days | Subject)", REML = TRUE, update = ". ~ . + I(Days^2)"),
  list(name = "sleep_update_drop_ml", data = "sleepstudy",
       formula = "Reaction ~ Days + (Days | Subject)", REML = FALSE, update = ". ~ . - Days"),
  list(name = "hsb_update_response", data = "hsb",
       formula = "mAch ~ ses + (1 | school)", REML = TRUE,
       update = "log(. + 3) ~ . + sector + ses:sector")
)

datasets <- list(sleepstudy = sleep, hsb = hsb, weighted = weighted, named = named)

# ---------------------------------------------------------------------------------------------
# JSON: named lists are objects, unnamed lists arrays; an atomic vector is an array when it is
# marked with as_array() or does not have length 1; NA, NaN, Inf and NULL are null.
# ---------------------------------------------------------------------------------------------

as_array <- function(x) structure(x, json_array = TRUE)

json_string <- function(s) {
  for (ch in c("\\", "\"")) s <- gsub(ch, paste0("\\", ch), s, fixed = TRUE)
  s <- gsub("\n", "\\n", s, fixed = TRUE)
  s <- gsub("\t", "\\t", s, fixed = TRUE)
  paste0("\"", s, "\"")
}

json_number <- function(v) {
  for (digits in 15:17) {
    text <- sprintf("%.*g", digits, v)
    if (as.numeric(text) == v) break
  }
  text
}

json_value <- function(v) {
  if (is.factor(v)) v <- as.character(v)
  if (is.na(v)) return("null")
  if (is.logical(v)) return(if (v) "true" else "false")
  if (is.character(v)) return(json_string(v))
  if (is.integer(v)) return(sprintf("%d", v))
  if (!is.finite(v)) return("null")
  json_number(v)
}

to_json <- function(x, indent = "") {
  inner <- paste0(indent, "  ")
  if (is.null(x)) return("null")
  if (is.atomic(x)) {
    if (length(x) == 1 && is.null(attr(x, "json_array")) && is.null(names(x))) {
      return(json_value(x))
    }
    values <- vapply(seq_along(x), function(i) json_value(x[[i]]), "")
    return(paste0("[", paste(values, collapse = ", "), "]"))
  }
  keys <- names(x)
  if (length(x) == 0) return(if (is.null(keys)) "[]" else "{}")
  parts <- vapply(x, to_json, "", indent = inner)
  if (is.null(keys)) {
    open <- "["
    close <- "]"
  } else {
    parts <- paste0(json_string(keys), ": ", parts)
    open <- "{"
    close <- "}"
  }
  paste0(open, "\n", inner, paste(parts, collapse = paste0(",\n", inner)), "\n", indent, close)
}

# ---------------------------------------------------------------------------------------------
# Fit one model and collect what the fixture records.
# ---------------------------------------------------------------------------------------------

pkg_version <- function(pkg) utils::packageDescription(pkg)[["Version"]]

named_list <- function(x) {
  out <- as.list(unname(as.numeric(x)))
  names(out) <- names(x)
  out
}

data_columns <- function(d) {
  cols <- list()
  for (v in names(d)) {
    x <- d[[v]]
    cols[[v]] <- if (is.factor(x)) {
      list(type = "factor", levels = as_array(levels(x)), values = as_array(as.character(x)))
    } else {
      list(type = "numeric", values = as_array(as.numeric(x)))
    }
  }
  cols
}

fit_fixture <- function(spec) {
  d <- datasets[[spec$data]]
  form <- stats::as.formula(spec$formula)
  # lmer() evaluates weights and offset like columns of the data
  d$.w <- if (is.null(spec$weights)) 1 else spec$weights
  d$.o <- if (is.null(spec$offset)) 0 else spec$offset
  m <- if (is.null(spec$weights) && is.null(spec$offset)) {
    lmer(form, data = d, REML = spec$REML)
  } else if (is.null(spec$offset)) {
    lmer(form, data = d, REML = spec$REML, weights = .w)
  } else if (is.null(spec$weights)) {
    lmer(form, data = d, REML = spec$REML, offset = .o)
  } else {
    lmer(form, data = d, REML = spec$REML, weights = .w, offset = .o)
  }
  if (!is.null(spec$update)) m <- update(m, stats::as.formula(spec$update))

  V <- as.matrix(vcov(m))
  fe <- fixef(m)
  vc <- as.data.frame(VarCorr(m))
  varcorr <- lapply(seq_len(nrow(vc)), function(i) {
    list(grp = vc$grp[i], var1 = vc$var1[i], var2 = vc$var2[i],
         vcov = vc$vcov[i], sdcor = vc$sdcor[i])
  })
  ll <- logLik(m)
  conv <- m@optinfo$conv$lme4$messages
  out <- list(
    name = spec$name,
    data = spec$data,
    formula = spec$formula,
    update = if (is.null(spec$update)) NULL else spec$update,
    formula_fitted = paste(deparse(formula(m), width.cutoff = 500L), collapse = " "),
    REML = spec$REML,
    weights = if (is.null(spec$weights)) NULL else as_array(spec$weights),
    offset = if (is.null(spec$offset)) NULL else as_array(spec$offset),
    nobs = nobs(m),
    ngroups = as.list(ngrps(m)),
    fixef = named_list(fe),
    fixef_se = named_list(setNames(sqrt(diag(V)), names(fe))),
    varcorr = varcorr,
    sigma = sigma(m),
    logLik = as.numeric(ll),
    df = as.integer(attr(ll, "df")),
    deviance = if (isREML(m)) REMLcrit(m) else deviance(m),
    theta = named_list(getME(m, "theta")),
    isSingular = isSingular(m),
    convergence_messages = as_array(if (is.null(conv)) character() else as.character(conv)),
    fitted_head = as_array(unname(head(fitted(m), 6))),
    summary_print = as_array(utils::capture.output(print(summary(m))))
  )
  if (!is.null(spec$newdata)) {
    out$newdata <- lapply(spec$newdata, as_array)
    out$predict_fixed <- as_array(unname(predict(m, newdata = spec$newdata, re.form = NA)))
  }
  if (spec$data %in% c("weighted", "named")) out$columns <- data_columns(datasets[[spec$data]])
  out$versions <- list(R = paste(R.version$major, R.version$minor, sep = "."),
                       lme4 = pkg_version("lme4"), Matrix = pkg_version("Matrix"),
                       mlmRev = pkg_version("mlmRev"))
  out
}

cat(sprintf("lme4 %s, R %s\n", pkg_version("lme4"),
            paste(R.version$major, R.version$minor, sep = ".")))
for (spec in models) {
  fx <- fit_fixture(spec)
  path <- file.path(outdir, paste0(spec$name, ".json"))
  writeLines(to_json(fx), path, useBytes = TRUE)
  cat(sprintf("%-24s logLik %12.4f  -> %s\n", spec$name, fx$logLik, path))
}
