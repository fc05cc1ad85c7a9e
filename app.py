"""β-VAE Text Lab: the router. Page config, navigation, the sidebar's model picker and decode settings.

Run with `streamlit run app.py`. Each page lives in app_pages/, not pages/: Streamlit's legacy multipage
mechanism registers every pages/<name>.py as a page of its own, and until a session has executed
st.navigation it serves such a page by its URL directly, so a first visit by link would run the page
without this router (no sidebar model picker, no decode settings). A page whose file does not exist is
left out of the navigation. Import direction: app_pages → ui → vae_core; neither app.py, app_pages/ nor
ui/ imports torch (tests/core/test_no_streamlit_in_core.py checks it).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui import bookmark_panel, widgets

ROOT = Path(__file__).resolve().parent

# (group, file, title, icon, url_path); Overview is the default page (served at "/", so no url_path).
PAGES = (
    ("Model", "app_pages/overview.py", "Overview", ":material/school:", None),
    ("Model", "app_pages/train.py", "Train", ":material/model_training:", "train"),
    ("Explore", "app_pages/sliders.py", "Sliders", ":material/tune:", "sliders"),
    ("Explore", "app_pages/traversals.py", "Traversals", ":material/grid_on:", "traversals"),
    ("Explore", "app_pages/interpolation.py", "Interpolation", ":material/timeline:", "interpolation"),
    ("Explore", "app_pages/latent_map.py", "Latent map", ":material/scatter_plot:", "latent-map"),
    ("Analyse", "app_pages/disentanglement.py", "Disentanglement", ":material/insights:", "disentanglement"),
    ("Analyse", "app_pages/compare.py", "Compare & sweeps", ":material/compare:", "compare"),
)

st.set_page_config(page_title="β-VAE Text Lab", page_icon="🧪", layout="wide")

navigation: dict[str, list] = {}
for group, file, title, icon, url_path in PAGES:
    if (ROOT / file).is_file():
        navigation.setdefault(group, []).append(
            st.Page(file, title=title, icon=icon, url_path=url_path, default=not url_path)
        )
page = st.navigation(navigation)

with st.sidebar:
    widgets.run_picker()
    widgets.decode_settings()
    bookmark_panel.bookmarks_panel(page, [p for group in navigation.values() for p in group])

page.run()
