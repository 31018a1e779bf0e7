"""Presenting analyses: terminal heat maps, progress, and the versioned JSON document."""
