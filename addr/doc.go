// Package addr is the kernel side of owning virtual IPs: it adds and removes
// the addresses of keepalived's virtual_ipaddress and
// virtual_ipaddress_excluded blocks, the routes of virtual_routes and the
// policy rules of virtual_rules, and creates the VRRP virtual MAC interfaces
// of use_vmac (RFC 5798 section 7.3), all through rtnetlink
// (github.com/vishvananda/netlink).
//
// Everything is idempotent, because the daemon replays desired state after a
// crash, a reload or a flapping link: adding something already present and
// removing something absent both succeed. A Manager only ever touches the
// addresses, routes, rules and interfaces it is given; RemoveStale is the
// startup sweep for VIPs a crashed run left behind, and it never removes an
// address that is not in its list, even on the same interface.
//
// Decisions that follow keepalived 2.2.7 (keepalived.conf(5) and observation
// of the daemon in a network namespace):
//   - IPv4 VIPs get no broadcast address unless brd is configured (as
//     `ip addr add` without brd, and unlike the netlink library's default).
//   - IPv6 VIPs are always added with IFA_F_NODAD: a VIP taken over from a
//     failed master is, by design, the same address another router held a
//     moment ago, and duplicate address detection would keep it tentative
//     (unusable) for a second or more exactly when it is needed.
//   - IPv6 VIPs with a /128 prefix get preferred_lft 0 (deprecated) unless a
//     preferred lifetime is configured: the kernel then never picks the VIP as
//     the source of the host's own connections, which would break them when
//     the VIP moves to another router. Other prefixes stay preferred forever.
//   - VMACs are macvlan interfaces in private mode named vrrp.<VRID> with
//     MAC 00:00:5e:00:01:<VRID> (IPv4) or 00:00:5e:00:02:<VRID> (IPv6); see
//     EnsureVMAC for the sysctls and why.
package addr
