"""Sphinx configuration for the rendered lessons (built by scripts/build_docs.py)."""

project = "Weights as a Vector"
author = "the Weights as a Vector contributors"
copyright = "2026, " + author

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# The notebooks arrive executed (by papermill, or with their committed outputs):
# the site shows those outputs and never runs code itself, so it builds offline.
nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

html_theme = "sphinx_book_theme"
html_title = project
html_theme_options = {"show_toc_level": 2}
autodoc_typehints = "description"
autodoc_member_order = "bysource"
