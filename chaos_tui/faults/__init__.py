"""Fault injectors. Each returns to health through `heal(lease)`, which is idempotent."""
