"""Simulated network devices over real SSH, one asyncssh server per device (tests, demo, bench)."""

from netcron.simulator.platforms import PROFILES, PlatformProfile
from netcron.simulator.server import Behaviour, SimulatedDevice, start_simulated_devices

__all__ = ["PROFILES", "Behaviour", "PlatformProfile", "SimulatedDevice", "start_simulated_devices"]
