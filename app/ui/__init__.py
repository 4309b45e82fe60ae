"""The Streamlit web UI (`vidrec serve`): main.py is the entry point, one module per page under views/.

Not pages/: Streamlit would take a pages/ folder for an old-style multipage app and, on a first visit to
/search, run that page without this entry script.
"""
