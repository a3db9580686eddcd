# Reference fits from R's nnet for tests/test_nnet_vs_r.py.
#
# Usage: Rscript nnet_reference.R DIR [name=value ...]
# DIR holds x.csv, y.csv and wts.csv (no header, numbers written with %.17g).
# Settings: size, maxit (integers); decay (number); linout, entropy, softmax, skip
# (TRUE/FALSE). Writes to DIR, all numbers with %.17g so nothing is lost:
#   initial.csv  fitted values at the starting weights (maxit = 0)
#   initial_value.csv  the criterion at the starting weights
#   wts.out.csv, fitted.csv  fitted weights and fitted values after maxit iterations
#   value.csv  final criterion value, then the convergence code
#   trace.txt  what nnet printed during the fit (trace = TRUE)
#   predict.csv  predict(fit, x) for x in newx.csv
suppressPackageStartupMessages(library(nnet))

args <- commandArgs(trailingOnly = TRUE)
dir <- args[1L]
settings <- list(size = 5L, maxit = 100L, decay = 0, linout = FALSE,
                 entropy = FALSE, softmax = FALSE, skip = FALSE)
for (arg in args[-1L]) {
    key <- sub("=.*", "", arg)
    if (!key %in% names(settings)) stop("unknown setting: ", key)
    settings[[key]] <- as(sub("^[^=]*=", "", arg), class(settings[[key]]))
}

read_matrix <- function(name)
    as.matrix(read.csv(file.path(dir, name), header = FALSE))
write_numbers <- function(values, name)
    writeLines(sprintf("%.17g", values), file.path(dir, name))
write_matrix <- function(m, name) {
    rows <- apply(matrix(sprintf("%.17g", m), nrow(m)), 1L, paste, collapse = ",")
    writeLines(rows, file.path(dir, name))
}

x <- read_matrix("x.csv")
y <- read_matrix("y.csv")
wts <- read_matrix("wts.csv")[, 1L]

fit_from <- function(maxit, trace)
    nnet(x, y, size = settings$size, Wts = wts, linout = settings$linout,
         entropy = settings$entropy, softmax = settings$softmax,
         skip = settings$skip, decay = settings$decay, maxit = maxit,
         trace = trace)

start <- fit_from(0L, FALSE)
write_matrix(start$fitted.values, "initial.csv")
write_numbers(start$value, "initial_value.csv")

trace <- capture.output(fit <- fit_from(settings$maxit, TRUE))
writeLines(trace, file.path(dir, "trace.txt"))
write_numbers(fit$wts, "wts.out.csv")
write_matrix(fit$fitted.values, "fitted.csv")
write_numbers(c(fit$value, fit$convergence), "value.csv")
write_matrix(predict(fit, read_matrix("newx.csv")), "predict.csv")
writeLines(capture.output(print(fit)), file.path(dir, "print.txt"))
writeLines(capture.output(summary(fit)), file.path(dir, "summary.txt"))
