"""Streamlit glue shared by the pages: cached loaders, session-state keys, widgets, figures.

Import direction: pages → ui → vae_core; no torch here (the pages work on numpy arrays through
vae_core.explore). The figure modules (`ui.figures`, `ui.map_figures`, `ui.metric_figures`,
`ui.train_figures`) and `ui.textdiff` are pure (no streamlit), so they can be tested without a script run.
"""
