"""pytest plugin entry point for netfault."""
