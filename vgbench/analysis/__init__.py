"""Analyses of value vectors and stored scores: maps, cross-model agreement, the report."""
