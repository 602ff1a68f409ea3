"""Developer tooling that drives the whole stack: the fault suite (`netcron chaos`)."""
