"""netcron.workflows."""
