#!/usr/bin/env Rscript
# Binary and count outcomes, chapter 13 (book/13-binary-counts.ipynb) and its exercises: lme4's
# glmer fits of contraceptive use in Bangladesh (mlmRev::Contraception), of seizure counts
# (MASS::epil), of contagious bovine pleuropneumonia in herds (lme4::cbpp) and of ticks on red
# grouse chicks (lme4::grouseticks).
#
# Usage (from the repository root):
#
#   Rscript scripts/lme4_reference_ch13.R [OUTDIR]
#
#   OUTDIR  where the fixtures go (default: tests/fixtures/lme4_ch13).
#
# The data are the R packages' data sets, named through the course's registry
# (scripts/r_datasets.R). Derived columns: Contraception's age10 = age / 10 (age is centred at
# the sample mean; in decades the quadratic term is well scaled); epil's obs, one level per row
# (an observation-level random effect).
#
# The fixture is one CSV file (numbers with 15 significant digits):
#
#   glmer.csv  one row per model and quantity: model, what, term, value, where what is fixef, se
#              (lme4's default standard error, from vcov()), sd (term "group.name"), cor (term
#              "group.name1.name2"), logLik, or dispersion (the sum of squared Pearson residuals
#              over the residual degrees of freedom), or profile_sd (terms "2.5 %" and
#              "97.5 %": lme4's 95% profile interval of the district SD, confint(method =
#              "profile"), for contra_laplace only).
#
# Needs R >= 4 with lme4, mlmRev and MASS (Debian: r-cran-lme4 r-cran-mlmrev r-cran-mass).

suppressPackageStartupMessages(library(lme4))

local({
  file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  source(file.path(dirname(normalizePath(sub("^--file=", "", file_arg[1]))), "r_datasets.R"))
}, envir = globalenv())

outdir <- reference_paths("lme4_ch13")$outdir

contra <- r_package_data("contraception")
contra$age10 <- contra$age / 10
epil <- r_package_data("epil")
epil$obs <- factor(seq_len(nrow(epil)))
cbpp <- r_package_data("cbpp")
grouse <- r_package_data("grouseticks")

contra_f <- use ~ age10 + I(age10^2) + urban + livch + (1 | district)
models <- list(
  contra_laplace = list(data = contra, formula = contra_f, family = binomial, nAGQ = 1),
  contra_agq0 = list(data = contra, formula = contra_f, family = binomial, nAGQ = 0),
  contra_agq10 = list(data = contra, formula = contra_f, family = binomial, nAGQ = 10),
  contra_slope = list(data = contra, family = binomial, nAGQ = 1,
                      formula = use ~ age10 + I(age10^2) + urban + livch + (1 + urban | district)),
  epil_subject = list(data = epil, family = poisson, nAGQ = 1,
                      formula = y ~ trt + lage + V4 + offset(log(base / 4)) + (1 | subject)),
  epil_olre = list(data = epil, family = poisson, nAGQ = 1,
                   formula = y ~ trt + lage + V4 + offset(log(base / 4)) + (1 | subject) +
                     (1 | obs)),
  cbpp_binomial = list(data = cbpp, family = binomial, nAGQ = 1,
                       formula = cbind(incidence, size - incidence) ~ period + (1 | herd)),
  cbpp_poisson = list(data = cbpp, family = poisson, nAGQ = 1,
                      formula = incidence ~ period + offset(log(size)) + (1 | herd)),
  cbpp_poisson_no_offset = list(data = cbpp, family = poisson, nAGQ = 1,
                                formula = incidence ~ period + (1 | herd)),
  grouse_brood = list(data = grouse, family = poisson, nAGQ = 1,
                      formula = TICKS ~ YEAR + cHEIGHT + (1 | BROOD)),
  grouse_olre = list(data = grouse, family = poisson, nAGQ = 1,
                     formula = TICKS ~ YEAR + cHEIGHT + (1 | INDEX) + (1 | BROOD))
)

num <- function(x) sprintf("%.15g", x)
rows <- list()
for (name in names(models)) {
  spec <- models[[name]]
  m <- glmer(spec$formula, data = spec$data, family = spec$family, nAGQ = spec$nAGQ)
  fe <- fixef(m)
  vc <- as.data.frame(VarCorr(m))
  sd_rows <- vc[is.na(vc$var2), ]
  cor_rows <- vc[!is.na(vc$var2), ]
  out <- rbind(
    data.frame(model = name, what = "fixef", term = names(fe), value = num(fe)),
    data.frame(model = name, what = "se", term = names(fe), value = num(sqrt(diag(vcov(m))))),
    data.frame(model = name, what = "sd", term = paste(sd_rows$grp, sd_rows$var1, sep = "."),
               value = num(sd_rows$sdcor)),
    data.frame(model = name, what = "logLik", term = "", value = num(as.numeric(logLik(m)))),
    data.frame(model = name, what = "dispersion", term = "",
               value = num(sum(residuals(m, type = "pearson")^2) / df.residual(m)))
  )
  if (nrow(cor_rows)) {
    out <- rbind(out, data.frame(
      model = name, what = "cor",
      term = paste(cor_rows$grp, cor_rows$var1, cor_rows$var2, sep = "."),
      value = num(cor_rows$sdcor)
    ))
  }
  if (name == "contra_laplace") {
    ci <- confint(m, parm = "theta_", method = "profile", oldNames = FALSE)
    out <- rbind(out, data.frame(model = name, what = "profile_sd",
                                 term = c("2.5 %", "97.5 %"), value = num(ci[1, ])))
  }
  rows[[name]] <- out
}
write.csv(do.call(rbind, rows), file.path(outdir, "glmer.csv"), row.names = FALSE)
