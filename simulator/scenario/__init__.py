"""Scenario files: format, validation, runner and reports."""
