"""netcron.db."""
