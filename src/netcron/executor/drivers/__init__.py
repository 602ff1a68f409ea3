"""netcron.executor.drivers."""
