"""Collectors turn one source into tenant-labelled metric families. No HTTP here."""
