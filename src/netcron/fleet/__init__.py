"""Fleets: one job over the devices a label selector matches (see ``docs/architecture.md``)."""
