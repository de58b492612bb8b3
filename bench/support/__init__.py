"""Helpers the benches share (not benches themselves)."""
