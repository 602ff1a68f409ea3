"""netcron.executor."""
