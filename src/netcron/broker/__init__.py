"""netcron.broker."""
