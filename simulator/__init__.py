"""netfault's network-fault simulation harness."""
