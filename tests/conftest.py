"""Shared pytest configuration."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "r: compares with R (needs Rscript and R's nnet; skipped without them unless CI=true)",
    )
