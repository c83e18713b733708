"""Helpers that several stages use (shuffles, connected components, language codes, models)."""
