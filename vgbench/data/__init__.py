"""Scenario, persona and topic data: loading, validation, stats and generation."""
