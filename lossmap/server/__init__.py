"""The language server (pygls 2): live surprise in the editor from the live model, and
two-sided verdicts on suspicious lines from the judge (``server.py`` is the entry point)."""
