"""netcron.api."""
