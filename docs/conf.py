"""Sphinx configuration for the rendered lessons (built by scripts/build_docs.py)."""

project = "Weights as a Vector"
author = "the Weights as a Vector contributors"
copyright = "2026, " + author

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# The notebooks arrive executed (by papermill, or with their committed outputs):
# the site shows those outputs and never runs code itself, so it builds offline.
nb_execution_mode = "off"
nb_execution_timeout = -1  # were it ever switched on: no limit per cell (default 30 s)
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

html_theme = "sphinx_book_theme"
html_title = project
html_theme_options = {"show_toc_level": 2}
autodoc_typehints = "description"
autodoc_member_order = "bysource"

# Code wraps instead of scrolling sideways; a favicon, so browsers do not ask for a missing
# /favicon.ico; and a stated colour mode (the theme logs an error when none is set).
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_favicon = "_static/favicon.svg"
html_context = {"default_mode": "light"}

# Formulas render offline: MathJax 3 is copied from the installed django-static-mathjax wheel
# (only its files, no Django) into the site, instead of Sphinx's default CDN address.
MATHJAX_BUNDLE = "tex-mml-chtml.js"
mathjax_path = f"mathjax/{MATHJAX_BUNDLE}"


def copy_mathjax(app, exception) -> None:
    """Copy MathJax's loader and the components it loads on demand into _static/mathjax/."""
    if exception is not None or app.builder.format != "html":
        return
    import shutil
    from importlib.resources import files
    from pathlib import Path

    source = Path(str(files("mathjax"))) / "static" / "mathjax" / "es5"
    other_bundles = [p.name for p in source.glob("*.js") if p.name != MATHJAX_BUNDLE]
    target = Path(app.outdir) / "_static" / "mathjax"
    ignore = shutil.ignore_patterns(*other_bundles)
    shutil.copytree(source, target, ignore=ignore, dirs_exist_ok=True)


def setup(app):
    app.connect("build-finished", copy_mathjax)
