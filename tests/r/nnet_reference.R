# Reference fits from R's nnet for tests/test_nnet_vs_r.py, every case in one R session.
#
# Usage: Rscript nnet_reference.R ROOT
# Each folder ROOT/CASE holds x.csv, y.csv, wts.csv and new_x.csv (no header, numbers
# written with %.17g) and settings.txt, one name=value a line: size, maxit (integers);
# decay (number); linout, entropy, softmax, skip (TRUE/FALSE). Writes into ROOT/CASE,
# all numbers with %.17g so nothing is lost:
#   initial.csv  fitted values at the starting weights (maxit = 0)
#   initial_value.csv  the criterion at the starting weights
#   wts.out.csv, fitted.csv  fitted weights and fitted values after maxit iterations
#   value.csv  final criterion value, then the convergence code
#   trace.txt  what nnet printed during the fit (trace = TRUE)
#   predict.csv  predict(fit, x) for x in new_x.csv
#   print.txt, summary.txt  what print(fit) and summary(fit) show
suppressPackageStartupMessages(library(nnet))

defaults <- list(size = 5L, maxit = 100L, decay = 0, linout = FALSE,
                 entropy = FALSE, softmax = FALSE, skip = FALSE)

read_settings <- function(dir) {
    settings <- defaults
    for (line in readLines(file.path(dir, "settings.txt"))) {
        key <- sub("=.*", "", line)
        if (!key %in% names(settings)) stop("unknown setting: ", key, " in ", dir)
        settings[[key]] <- as(sub("^[^=]*=", "", line), class(settings[[key]]))
    }
    settings
}

read_matrix <- function(dir, name)
    as.matrix(read.csv(file.path(dir, name), header = FALSE))
write_numbers <- function(values, dir, name)
    writeLines(sprintf("%.17g", values), file.path(dir, name))
write_matrix <- function(m, dir, name) {
    rows <- apply(matrix(sprintf("%.17g", m), nrow(m)), 1L, paste, collapse = ",")
    writeLines(rows, file.path(dir, name))
}

run_case <- function(dir) {
    settings <- read_settings(dir)
    x <- read_matrix(dir, "x.csv")
    y <- read_matrix(dir, "y.csv")
    wts <- read_matrix(dir, "wts.csv")[, 1L]
    fit_from <- function(maxit, trace)
        nnet(x, y, size = settings$size, Wts = wts, linout = settings$linout,
             entropy = settings$entropy, softmax = settings$softmax,
             skip = settings$skip, decay = settings$decay, maxit = maxit,
             trace = trace)

    start <- fit_from(0L, FALSE)
    write_matrix(start$fitted.values, dir, "initial.csv")
    write_numbers(start$value, dir, "initial_value.csv")

    trace <- capture.output(fit <- fit_from(settings$maxit, TRUE))
    writeLines(trace, file.path(dir, "trace.txt"))
    write_numbers(fit$wts, dir, "wts.out.csv")
    write_matrix(fit$fitted.values, dir, "fitted.csv")
    write_numbers(c(fit$value, fit$convergence), dir, "value.csv")
    write_matrix(predict(fit, read_matrix(dir, "new_x.csv")), dir, "predict.csv")
    writeLines(capture.output(print(fit)), file.path(dir, "print.txt"))
    writeLines(capture.output(summary(fit)), file.path(dir, "summary.txt"))
}

root <- commandArgs(trailingOnly = TRUE)[1L]
for (dir in list.dirs(root, recursive = FALSE)) run_case(dir)
