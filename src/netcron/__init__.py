"""netcron: run commands on network devices on cron schedules, durably."""

__version__ = "0.1.0"
