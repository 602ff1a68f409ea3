"""Real-looking outputs per platform, each with its volatile lines and known secrets."""

from __future__ import annotations

IOS_SECRETS = (
    "$9$nhEmQVczB7dqsO$X.HsgL6x1il0RxkOSSvyQYwucySCt7qFm4v7pqCxkKM",
    "0822455D0A16544541",
    "$1$mERr$hx5rVt7rPNoS4wqbXKX7m0",
    "Pr1vateRO",
    "tacacsKey!2",
    "radiusKey#3",
    "ikePSK-44",
    "ospfMD5key",
    "bgpPeerPass",
    "104D000A0618",
    "0835495D1D",
)

IOS_RUNNING = """Building configuration...

Current configuration : 4213 bytes
!
! Last configuration change at 10:14:03 UTC Tue Nov 24 2026 by netops
! NVRAM config last updated at 10:14:05 UTC Tue Nov 24 2026 by netops
!
version 17.9
service timestamps debug datetime msec
hostname core-sw-1
!
enable secret 9 $9$nhEmQVczB7dqsO$X.HsgL6x1il0RxkOSSvyQYwucySCt7qFm4v7pqCxkKM
!
username netops privilege 15 password 7 0822455D0A16544541
username backup secret 5 $1$mERr$hx5rVt7rPNoS4wqbXKX7m0
!
interface GigabitEthernet1/0/1
 description uplink
 ip address 10.0.0.1 255.255.255.0
 ip ospf message-digest-key 1 md5 ospfMD5key
!
router bgp 65000
 neighbor 10.0.0.2 remote-as 65001
 neighbor 10.0.0.2 password bgpPeerPass
!
snmp-server community Pr1vateRO RO
tacacs-server host 10.9.9.9 key tacacsKey!2
radius server rad1
 address ipv4 10.9.9.10 auth-port 1812 acct-port 1813
 key radiusKey#3
crypto isakmp key ikePSK-44 address 0.0.0.0
ntp clock-period 36028797018963968
ntp authentication-key 1 md5 104D000A0618 7
ntp server 10.1.1.1
key chain ISIS
 key 1
  key-string 7 0835495D1D
!
line vty 0 4
 transport input ssh
!
end
"""

NXOS_RUNNING = """!Command: show running-config
!Running configuration last done at: Tue Nov 24 10:14:03 2026
!Time: Wed Nov 25 03:00:00 2026

version 10.3(4a) Bios:version 05.47
hostname leaf-1
username admin password 5 $5$KLMNOP$0hYs0xBEZwvPq6qYDrtNj0kDoQUWbDDoA1xLBlFcnd6 role network-admin
snmp-server community NxComm group network-operator
interface Ethernet1/1
  description to-spine
"""

EOS_RUNNING = """! Command: show running-config
! device: spine-1 (DCS-7050SX3-48YC8, EOS-4.30.2F)
!
! Startup-config last modified at Tue Nov 24 10:14:03 2026 by admin
! boot system flash:/EOS-4.30.2F.swi
!
username admin privilege 15 role network-admin secret sha512 $6$aBcD$SomeLongHashValue/xyz
snmp-server community EosComm ro
hostname spine-1
"""

JUNOS_CONFIG = """## Last commit: 2026-11-24 10:14:03 UTC by netops
version 22.4R1.10;
system {
    host-name mx-1;
    root-authentication {
        encrypted-password "$6$aB12$JunosRootHash";
    }
    login {
        user netops {
            authentication {
                encrypted-password "$6$cD34$JunosUserHash";
            }
        }
    }
}
snmp {
    community JunComm {
        authorization read-only;
    }
}
protocols {
    bgp {
        group peers {
            authentication-key "$9$AbCdEfGhIjK";
        }
    }
}
"""
JUNOS_SECRETS = ("$6$aB12$JunosRootHash", "$6$cD34$JunosUserHash", "JunComm", "$9$AbCdEfGhIjK")

IOS_VERSION = """Cisco IOS XE Software, Version 17.09.04a
Cisco IOS Software [Cupertino], Catalyst L3 Switch Software (CAT9K_IOSXE), Version 17.9.4a
core-sw-1 uptime is 41 weeks, 2 days, 3 hours, 12 minutes
Uptime for this control processor is 41 weeks, 2 days, 3 hours, 14 minutes
System returned to ROM by Reload Command
System restarted at 10:00:01 UTC Mon Jan 6 2026
System image file is "flash:packages.conf"
Configuration register is 0x102
"""
