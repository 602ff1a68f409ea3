"""How each simulated platform looks: prompts, enable, paging, rejections and command output.

One profile per name in :data:`netcron.platforms.PLATFORMS`. Output is built from the
device's name and its configuration revision (which the server moves on over time), so
two devices differ and a device's configuration can change between runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from netcron.simulator import outputs
from netcron.simulator.outputs import Output


@dataclass(frozen=True)
class PlatformProfile:
    """One platform's CLI, as far as a scheduled ``show`` command meets it."""

    name: str
    #: Prompts, formatted with ``name`` (hostname) and ``user``.
    user_prompt: str
    privileged_prompt: str
    #: Login lands in user mode and ``enable`` (with the secret, if one is set) is needed.
    needs_enable: bool
    banner: str
    more: str
    paging_off: tuple[str, ...]
    #: Terminal settings scrapli sends on open: accepted silently.
    accepted: tuple[str, ...]
    rejection: Callable[[str], str]
    outputs: dict[str, Output] = field(default_factory=dict)
    #: Commands refused outside privileged mode.
    privileged_only: tuple[str, ...] = ()

    def prompt(self, hostname: str, user: str, privileged: bool) -> str:
        template = self.privileged_prompt if privileged else self.user_prompt
        return template.format(name=hostname, user=user)

    def answer(self, command: str, hostname: str, revision: int, privileged: bool) -> str:
        """The text a command prints (``\\n`` line ends), rejection included."""
        words = command.split()
        for known, produce in self.outputs.items():
            if _abbreviates(words, known.split()):
                if not privileged and known in self.privileged_only:
                    return self.rejection(command)
                return produce(hostname, revision)
        return self.rejection(command)


def _abbreviates(words: list[str], full: list[str]) -> bool:
    """``sh run`` for ``show running-config``, as network CLIs accept unique prefixes."""
    return len(words) == len(full) and all(
        word and whole.startswith(word) for word, whole in zip(words, full, strict=True)
    )


def _caret(command: str, message: str, indent: int = 0) -> str:
    bad = command.split()[-1] if command.split() else command
    at = indent + max(command.rfind(bad), 0)
    return f"{' ' * at}^\n{message}\n"


def _ios_rejection(command: str) -> str:
    return _caret(command, "% Invalid input detected at '^' marker.")


def _nxos_rejection(command: str) -> str:
    return _caret(command, "% Invalid command at '^' marker.")


def _eos_rejection(command: str) -> str:
    return "% Invalid input\n"


def _junos_rejection(command: str) -> str:
    return _caret(command, "syntax error, expecting <command>.")


def _linux_rejection(command: str) -> str:
    return f"-bash: {command.split()[0] if command.split() else command}: command not found\n"


IOS_BANNER = (
    "\n**************************************\n"
    "* Authorised access only. Disconnect *\n"
    "* now if you are not authorised.     *\n"
    "**************************************\n\n"
)

PROFILES: dict[str, PlatformProfile] = {
    profile.name: profile
    for profile in (
        PlatformProfile(
            name="cisco_ios",
            user_prompt="{name}>",
            privileged_prompt="{name}#",
            needs_enable=True,
            banner=IOS_BANNER,
            more=" --More-- ",
            paging_off=("terminal length 0",),
            accepted=("terminal width 512",),
            rejection=_ios_rejection,
            outputs=outputs.cisco_like(
                outputs.ios_version(xe=False),
                outputs.ios_interfaces,
                outputs.ios_route,
                outputs.ios_config,
            ),
            privileged_only=("show running-config",),
        ),
        PlatformProfile(
            name="cisco_xe",
            user_prompt="{name}>",
            privileged_prompt="{name}#",
            needs_enable=True,
            banner=IOS_BANNER,
            more=" --More-- ",
            paging_off=("terminal length 0",),
            accepted=("terminal width 512",),
            rejection=_ios_rejection,
            outputs=outputs.cisco_like(
                outputs.ios_version(xe=True),
                outputs.ios_interfaces,
                outputs.ios_route,
                outputs.ios_config,
            ),
            privileged_only=("show running-config",),
        ),
        PlatformProfile(
            name="cisco_nxos",
            user_prompt="{name}>",
            privileged_prompt="{name}#",
            needs_enable=False,
            banner="\nCisco Nexus Operating System (NX-OS) Software\nTAC support: http://www.cisco.com/tac\n",
            more="--More--",
            paging_off=("terminal length 0",),
            accepted=("terminal width 511",),
            rejection=_nxos_rejection,
            outputs=outputs.cisco_like(
                outputs.nxos_version,
                outputs.nxos_interfaces,
                outputs.nxos_route,
                outputs.nxos_config,
            ),
        ),
        PlatformProfile(
            name="cisco_xr",
            user_prompt="RP/0/RP0/CPU0:{name}#",
            privileged_prompt="RP/0/RP0/CPU0:{name}#",
            needs_enable=False,
            banner="\nIMPORTANT: READ CAREFULLY\nWelcome to the Demo Version of Cisco IOS XRv\n\n",
            more=" --More-- ",
            paging_off=("terminal length 0",),
            accepted=("terminal width 512",),
            rejection=_ios_rejection,
            outputs=outputs.cisco_like(
                outputs.xr_version, outputs.xr_interfaces, outputs.xr_route, outputs.xr_config
            ),
        ),
        PlatformProfile(
            name="arista_eos",
            user_prompt="{name}>",
            privileged_prompt="{name}#",
            needs_enable=True,
            banner="\nArista Networks EOS shell\n\n",
            more=" --More-- ",
            paging_off=("terminal length 0",),
            accepted=("terminal width 32767",),
            rejection=_eos_rejection,
            outputs=outputs.cisco_like(
                outputs.eos_version, outputs.eos_interfaces, outputs.ios_route, outputs.eos_config
            ),
            privileged_only=("show running-config",),
        ),
        PlatformProfile(
            name="juniper_junos",
            user_prompt="{user}@{name}>",
            privileged_prompt="{user}@{name}>",
            needs_enable=False,
            banner="--- JUNOS 22.4R1.10 Kernel 64-bit  JNPR-12.1-20221205.0c7f7b8_buil\n",
            more="---(more)---",
            paging_off=("set cli screen-length 0",),
            accepted=("set cli screen-width 511", "set cli complete-on-space off"),
            rejection=_junos_rejection,
            outputs={
                "show version": outputs.junos_version,
                "show interfaces": outputs.junos_interfaces,
                "show route": outputs.junos_route,
                "show configuration": outputs.junos_config,
            },
        ),
        PlatformProfile(
            name="linux",
            user_prompt="{user}@{name}:~$",
            privileged_prompt="{user}@{name}:~$",
            needs_enable=False,
            banner="Linux 6.1.0-18-amd64 x86_64\n\nThe programs included with Debian are free.\n",
            more="--More--",
            paging_off=(),
            accepted=(),
            rejection=_linux_rejection,
            outputs={
                "uname -a": outputs.linux_version,
                "ip addr": outputs.linux_interfaces,
                "ip route": outputs.linux_route,
                "cat /etc/hosts": outputs.linux_config,
            },
        ),
    )
}
