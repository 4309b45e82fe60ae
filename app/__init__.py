"""Floor 4: the entry points, the `vidrec` command line, the Streamlit web UI and `vidrec demo` with its
generated world. Thin: the logic lives in the floors below."""
