#!/usr/bin/env Rscript
# Growth models of chapter 11 (book/11-growth.ipynb): lme4's fits of the Oxford boys and of the
# sleep study from the baseline day on, and nlme's fits of the same models with and without a
# first-order autoregressive residual correlation, corAR1(), which lme4 does not have.
#
# Usage (from the repository root):
#
#   Rscript scripts/lme4_reference_ch11.R [OUTDIR]
#
#   OUTDIR  where the fixtures go (default: tests/fixtures/lme4_ch11).
#
# The data are the R packages' data sets (nlme::Oxboys, lme4::sleepstudy), named through the
# course's registry (scripts/r_datasets.R). In the sleep study, days 0 and 1 were adaptation and
# training and day 2 the baseline; sleep restriction began after day 2. The models of the sleep
# study use the days 2 to 9 and the time since baseline, dep = Days - 2 (0 to 7).
#
# The fixtures are CSV files (numbers with 15 significant digits):
#
#   lmer.csv   one row per lme4 model and quantity: model, what (fixef, sd, cor, sigma, logLik),
#              term, value. REML fits; logLik of the ML refit is what = "logLik_ML".
#   anova.csv  likelihood-ratio tests between lme4 models (ML refits, as anova() does them):
#              model0, model1, Chisq, Df
#   nlme.csv   one row per nlme model and quantity: the REML fits of lme() without and with
#              corAR1(form = ~ time | Subject): sigma, Phi (the lag-1 correlation), logLik, the
#              fixed effects, and the likelihood-ratio statistic of AR(1) against independence
#
# Needs R >= 4 with lme4 and nlme (Debian: r-cran-lme4 r-cran-nlme).

suppressPackageStartupMessages({
  library(lme4)
  library(nlme)
})

local({
  file_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  source(file.path(dirname(normalizePath(sub("^--file=", "", file_arg[1]))), "r_datasets.R"))
}, envir = globalenv())

outdir <- reference_paths("lme4_ch11")$outdir

ox <- r_package_data("oxboys")
ox$age2 <- ox$age^2
sleep <- r_package_data("sleepstudy")
sleep <- sleep[sleep$Days >= 2, ]
sleep$dep <- sleep$Days - 2

models <- list(
  ox_linear = list(data = ox, formula = height ~ age + (age | Subject)),
  ox_quadratic = list(data = ox, formula = height ~ age + age2 + (age + age2 | Subject)),
  sleep_dep = list(data = sleep, formula = Reaction ~ dep + (dep | Subject))
)

num <- function(x) sprintf("%.15g", x)
rows <- list()
fits <- list()
for (name in names(models)) {
  spec <- models[[name]]
  m <- lmer(spec$formula, data = spec$data, REML = TRUE)
  fits[[name]] <- m
  fe <- fixef(m)
  vc <- as.data.frame(VarCorr(m))
  sd_rows <- vc[is.na(vc$var2) & vc$grp != "Residual", ]
  cor_rows <- vc[!is.na(vc$var2), ]
  rows[[name]] <- rbind(
    data.frame(model = name, what = "fixef", term = names(fe), value = num(fe)),
    data.frame(model = name, what = "sd", term = sd_rows$var1, value = num(sd_rows$sdcor)),
    data.frame(model = name, what = "cor", term = paste(cor_rows$var1, cor_rows$var2, sep = "."),
               value = num(cor_rows$sdcor)),
    data.frame(model = name, what = c("sigma", "logLik", "logLik_ML"), term = "",
               value = num(c(sigma(m), as.numeric(logLik(m)),
                             as.numeric(logLik(refitML(m))))))
  )
}
write.csv(do.call(rbind, rows), file.path(outdir, "lmer.csv"), row.names = FALSE)

a <- anova(fits$ox_linear, fits$ox_quadratic)
write.csv(data.frame(model0 = "ox_linear", model1 = "ox_quadratic", Chisq = num(a$Chisq[2]),
                     Df = a$Df[2]),
          file.path(outdir, "anova.csv"), row.names = FALSE)

# nlme: the same random effects, independent residuals and AR(1) residuals within a subject.
# corAR1's time is the occasion index (Oxboys: Occasion, equally spaced; sleep: dep, one a day).
ox$occ <- as.integer(ox$Occasion)
ctrl <- lmeControl(maxIter = 200, msMaxIter = 200, opt = "optim")
nlme_models <- list(
  ox_quadratic = list(data = ox, fixed = height ~ age + age2, random = ~ age + age2 | Subject,
                      time = ~ occ | Subject),
  sleep_dep = list(data = sleep, fixed = Reaction ~ dep, random = ~ dep | Subject,
                   time = ~ dep | Subject)
)
nrows <- list()
for (name in names(nlme_models)) {
  spec <- nlme_models[[name]]
  m0 <- lme(spec$fixed, random = spec$random, data = spec$data, method = "REML", control = ctrl)
  m1 <- update(m0, correlation = corAR1(form = spec$time))
  phi <- coef(m1$modelStruct$corStruct, unconstrained = FALSE)
  lrt <- 2 * (as.numeric(logLik(m1)) - as.numeric(logLik(m0)))
  for (fit in list(list("independent", m0), list("ar1", m1))) {
    m <- fit[[2]]
    fe <- fixef(m)
    nrows[[paste(name, fit[[1]])]] <- rbind(
      data.frame(model = name, residuals = fit[[1]], what = "fixef", term = names(fe),
                 value = num(fe)),
      data.frame(model = name, residuals = fit[[1]], what = c("sigma", "logLik"), term = "",
                 value = num(c(m$sigma, as.numeric(logLik(m)))))
    )
  }
  nrows[[paste(name, "extra")]] <- data.frame(
    model = name, residuals = "ar1", what = c("Phi", "LRT"), term = "", value = num(c(phi, lrt))
  )
}
write.csv(do.call(rbind, nrows), file.path(outdir, "nlme.csv"), row.names = FALSE)
