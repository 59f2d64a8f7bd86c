#!/usr/bin/env Rscript
# Multilevel regression and poststratification of chapter 14 (book/14-mrp.ipynb): lme4's glmer fit
# of the chapter's simulated poll and its poststratified state estimates.
#
# Usage (from the repository root):
#
#   Rscript scripts/lme4_reference_ch14.R [OUTDIR]
#
#   OUTDIR  where the fixtures go (default: tests/fixtures/lme4_ch14).
#
# The data are simulated by the course's library, not taken from an R package: the poll and the
# census of the chapter, mlmprimer.mrp.poll(mlmprimer.mrp.census(rng = 2026), n = 1500, rng = 6)
# and mlmprimer.mrp.census(rng = 2026), are committed as tests/fixtures/lme4_ch14/poll.csv and
# census.csv (a test checks that they are what the library writes), and this script reads them.
#
# The fixtures are CSV files (numbers with 15 significant digits):
#
#   glmer.csv   the fit of y ~ z + (1 | state) + (1 | age) + (1 | educ), binomial, Laplace:
#               what (fixef, se, sd, logLik), term, value
#   states.csv  the poststratified estimate of every state: the fit's predicted probability of
#               each census cell (allow.new.levels = TRUE for states without respondents),
#               weighted by the cell's census count N: state, estimate
#
# Needs R >= 4 with lme4 (Debian: r-cran-lme4).

suppressPackageStartupMessages(library(lme4))

local({
  file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  source(file.path(dirname(normalizePath(sub("^--file=", "", file_arg[1]))), "r_datasets.R"))
}, envir = globalenv())

outdir <- reference_paths("lme4_ch14")$outdir
inputs <- file.path("tests", "fixtures", "lme4_ch14")
age_levels <- c("18-29", "30-44", "45-64", "65+")
educ_levels <- c("no high school", "high school", "some college", "college")
read_cells <- function(name) {
  d <- utils::read.csv(file.path(inputs, name), check.names = FALSE)
  d$state <- factor(d$state)
  d$age <- factor(d$age, levels = age_levels)
  d$educ <- factor(d$educ, levels = educ_levels)
  d
}
poll <- read_cells("poll.csv")
census <- read_cells("census.csv")

m <- glmer(y ~ z + (1 | state) + (1 | age) + (1 | educ), data = poll, family = binomial)
num <- function(x) sprintf("%.15g", x)
fe <- fixef(m)
vc <- as.data.frame(VarCorr(m))
rows <- rbind(
  data.frame(what = "fixef", term = names(fe), value = num(fe)),
  data.frame(what = "se", term = names(fe), value = num(sqrt(diag(as.matrix(vcov(m)))))),
  data.frame(what = "sd", term = vc$grp, value = num(vc$sdcor)),
  data.frame(what = "logLik", term = "", value = num(as.numeric(logLik(m))))
)
write.csv(rows, file.path(outdir, "glmer.csv"), row.names = FALSE)

census$pred <- predict(m, newdata = census, type = "response", allow.new.levels = TRUE)
est <- sapply(split(census, census$state), function(d) sum(d$N * d$pred) / sum(d$N))
write.csv(data.frame(state = names(est), estimate = num(est)), file.path(outdir, "states.csv"),
          row.names = FALSE)
