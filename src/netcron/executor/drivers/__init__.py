"""Drivers, chosen by name (``NETCRON_EXECUTOR_DRIVER``); adding one is one module."""

from __future__ import annotations

from netcron.config import Settings
from netcron.executor.drivers.base import CheckingDriver, Driver, DriverError, Output


def get_driver(name: str, settings: Settings) -> CheckingDriver:
    if name == "emulated":
        from netcron.executor.drivers.emulated import EmulatedDriver

        return EmulatedDriver(
            delay_min=settings.emulated_delay_min,
            delay_max=settings.emulated_delay_max,
            failure_rate=settings.emulated_failure_rate,
        )
    if name == "ssh":
        from netcron.executor.drivers.ssh import SshDriver

        return SshDriver()
    raise ValueError(f"unknown executor driver {name!r}")


__all__ = ["CheckingDriver", "Driver", "DriverError", "Output", "get_driver"]
