"""The language server: one resident model, live surprise in the editor (pygls 2)."""
