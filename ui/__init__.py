"""Streamlit glue shared by the pages: cached loaders, session-state keys, widgets, figures.

Import direction: pages → ui → vae_core. `ui.figures` and `ui.textdiff` are pure (no streamlit),
so they can be tested without a script run.
"""
