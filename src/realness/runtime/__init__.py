"""Where and how models run: device and precision, and guarded imports of optional stacks."""
