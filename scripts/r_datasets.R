# The R packages' copies of the course's data sets, shared by the reference scripts
# (scripts/lme4_reference*.R) and benchmarks/bench_lme4.R, which source this file.
#
# Which package and object each mlmprimer.datasets name stands for is read from the course's
# one registry, mlmprimer/data/registry.csv (columns name, package, r_name), found from the
# location of this file. Base R only.

# The directory of the file being source()d: source() keeps its path in `ofile`.
r_datasets_registry <- local({
  here <- NULL
  for (i in rev(seq_len(sys.nframe()))) {
    f <- sys.frame(i)$ofile
    if (!is.null(f)) {
      here <- dirname(normalizePath(f))
      break
    }
  }
  if (is.null(here)) stop("source() scripts/r_datasets.R by its path to find the registry")
  file.path(dirname(here), "mlmprimer", "data", "registry.csv")
})

# mlmprimer.datasets name -> the R package's data set, c(package, object).
r_datasets <- local({
  reg <- utils::read.csv(r_datasets_registry, colClasses = "character", check.names = FALSE)
  if (!identical(names(reg), c("name", "package", "r_name"))) {
    stop(r_datasets_registry, ": expected the columns name, package, r_name")
  }
  out <- lapply(seq_len(nrow(reg)), function(i) c(reg$package[i], reg$r_name[i]))
  names(out) <- reg$name
  out
})

# The R package's data set of an mlmprimer.datasets name, as a plain data.frame
# (nlme::Oxboys is a groupedData object).
r_package_data <- function(dataset) {
  spec <- r_datasets[[dataset]]
  if (is.null(spec)) stop("unknown data set ", dataset)
  d <- getExportedValue(spec[1], spec[2])
  data.frame(lapply(d, identity), check.names = FALSE)
}
