# The R packages' copies of the course's data sets, shared by scripts/lme4_reference.R and
# benchmarks/bench_lme4.R (both source this file).

# mlmprimer.datasets name -> the R package's data set (package, object).
r_datasets <- list(
  sleepstudy = c("lme4", "sleepstudy"),
  dyestuff   = c("lme4", "Dyestuff"),
  penicillin = c("lme4", "Penicillin"),
  pastes     = c("lme4", "Pastes"),
  insteval   = c("lme4", "InstEval"),
  hsb        = c("mlmRev", "Hsb82"),
  exam       = c("mlmRev", "Exam"),
  scotssec   = c("mlmRev", "ScotsSec"),
  oxboys     = c("nlme", "Oxboys")
)

# The R package's data set of an mlmprimer.datasets name, as a plain data.frame
# (nlme::Oxboys is a groupedData object).
r_package_data <- function(dataset) {
  spec <- r_datasets[[dataset]]
  if (is.null(spec)) stop("unknown data set ", dataset)
  d <- getExportedValue(spec[1], spec[2])
  data.frame(lapply(d, identity), check.names = FALSE)
}

