package vrrp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"vigil/internal/inet"
	"vigil/vrrp/wire"
)

// Config is one vrrp_instance. The zero value of each field is keepalived's
// default where keepalived has one; New reports what it cannot accept.
//
// The one-byte fields are grouped at the start and the end: 224 bytes
// instead of 280 with them between the 8-byte ones, which put the
// engine's Instance in a smaller size class (issue #7). The engine's copy
// (Instance.Config) is the only one a running daemon keeps.
type Config struct {
	Name string // the instance name, for transitions and notify scripts
	VRID uint8  // 1..255
	// Family is inet.IPv4 or inet.IPv6; 0 means the family of SrcAddr.
	Family inet.Family
	// Priority is the base priority, 1..255; 0 means 100. 255 is the
	// address owner, which tracking never changes.
	Priority uint8
	// NoPreempt is keepalived's nopreempt: a backup with a higher priority
	// does not take over from a working master (RFC 5798's Preempt_Mode
	// False). The zero value preempts, as keepalived and the RFC default.
	NoPreempt bool
	// NoAccept is keepalived's no_accept: RFC 5798's Accept_Mode False, so
	// a master that is not the address owner must not accept packets
	// addressed to the VIPs (section 6.4.3). keepalived accepts by default
	// (outside vrrp_strict), hence the negative name. The engine does not
	// route traffic; Status.AcceptTraffic tells the data plane.
	NoAccept bool
	// AuthType is wire.AuthNone or wire.AuthPass (version 2 only);
	// AuthPass is the password, of which the first 8 bytes count.
	AuthType uint8
	AuthPass string
	// Version is 2 or 3; 0 means 2 over IPv4 and 3 over IPv6, keepalived's
	// default.
	Version int
	// AdvertInterval is advert_int; 0 means 1s. Version 2 carries whole
	// seconds (1s..255s), version 3 whole centiseconds (10ms..40.95s).
	AdvertInterval time.Duration
	// PreemptDelay is preempt_delay; see the package documentation.
	PreemptDelay time.Duration
	// VIPs are virtual_ipaddress: owned when MASTER, and advertised.
	VIPs []netip.Prefix
	// ExcludedVIPs are virtual_ipaddress_excluded: owned when MASTER and
	// announced, but not advertised.
	ExcludedVIPs []netip.Prefix
	// SrcAddr is our primary address on the interface (or mcast_src_ip /
	// unicast_src_ip): the source of our adverts, what the equal-priority
	// tie-break compares, and how our own looped-back adverts are
	// recognised. For IPv6 it is the link-local address. Required.
	SrcAddr netip.Addr
	// Peers are unicast_peer; empty means multicast to wire.GroupV4 or
	// wire.GroupV6.
	Peers []netip.Addr
	// ChecksumMode is how version 3 IPv4 checksums are computed and
	// checked (v3_checksum_as_v2 is wire.ChecksumNoPseudoHeader).
	ChecksumMode wire.ChecksumMode
	// GARP is the schedule of gratuitous ARPs and unsolicited NAs; the zero
	// value means DefaultGARP().
	GARP GARP
	// CheckUnicastSrc drops unicast adverts from addresses not in Peers.
	CheckUnicastSrc bool
	// CheckUnicastTTL applies the TTL 255 check to unicast adverts too; it
	// always applies to multicast ones.
	CheckUnicastTTL bool
	// OldUnicastChecksum is keepalived's old_unicast_checksum: version 3
	// IPv4 unicast adverts are checksummed with 224.0.0.18 instead of the
	// peer's address in the pseudo-header, as before keepalived 1.3.6.
	// Received adverts are accepted either way, and an instance that
	// receives an old-style one starts sending old-style ones too, as
	// keepalived "will attempt to detect" it.
	OldUnicastChecksum bool
	// SkipCheckAdvAddr is vrrp_skip_check_adv_addr: adverts from the
	// master we already follow skip the address count and list checks.
	SkipCheckAdvAddr bool
	// LowerPrioNoAdvert: a master that receives a lower priority advert
	// does not answer with an advert of its own (lower_prio_no_advert).
	LowerPrioNoAdvert bool
	// HigherPrioSendAdvert: a master that receives a higher priority advert
	// sends one more advert of its own before it becomes backup
	// (higher_prio_send_advert).
	HigherPrioSendAdvert bool
	// InitialState is `state MASTER|BACKUP`; see the package documentation.
	InitialState State
}

// GARP is the announcement schedule: gratuitous ARPs for IPv4 VIPs and
// unsolicited neighbour advertisements for IPv6 ones. Each burst announces
// every VIP Repeat times (Announcement.Repeat).
type GARP struct {
	// MasterRepeat announcements on becoming master
	// (vrrp_garp_master_repeat), and again after MasterDelay
	// (vrrp_garp_master_delay) if it is positive.
	MasterDelay  time.Duration
	MasterRepeat int
	// Every MasterRefresh while master, if positive, MasterRefreshRepeat
	// more (vrrp_garp_master_refresh, vrrp_garp_master_refresh_repeat).
	MasterRefresh       time.Duration
	MasterRefreshRepeat int
	// LowerPrioRepeat on receiving a lower priority advert as master, and
	// again after LowerPrioDelay if it is positive
	// (vrrp_garp_lower_prio_repeat, vrrp_garp_lower_prio_delay).
	LowerPrioDelay  time.Duration
	LowerPrioRepeat int
}

// DefaultGARP is keepalived's schedule: 5 announcements on becoming master
// and 5 more 5 seconds later, no refresh, and the same on a lower priority
// advert.
func DefaultGARP() GARP {
	return GARP{
		MasterDelay:         5 * time.Second,
		MasterRepeat:        5,
		MasterRefreshRepeat: 1,
		LowerPrioDelay:      5 * time.Second,
		LowerPrioRepeat:     5,
	}
}

// ErrConfig is wrapped by every error New returns for a bad Config.
var ErrConfig = errors.New("invalid vrrp instance")

// Normalized is c with its defaults filled in, as New and Reload take it
// and Instance.Config returns it, or the error New would return. A caller
// that keeps no copy of its own compares a new configuration with a
// running instance's through it.
func (c Config) Normalized() (Config, error) { return c.normalize() }

// normalize fills in defaults and checks c.
func (c Config) normalize() (Config, error) {
	bad := func(format string, args ...any) (Config, error) {
		return c, fmt.Errorf("%w %q: %s", ErrConfig, c.Name, fmt.Sprintf(format, args...))
	}
	if c.VRID == 0 {
		return bad("virtual_router_id 0, want 1..255")
	}
	if !c.SrcAddr.IsValid() {
		return bad("no source address")
	}
	c.SrcAddr = c.SrcAddr.Unmap().WithZone("")
	fam := inet.Of(c.SrcAddr)
	if c.Family == 0 {
		c.Family = fam
	}
	if c.Family != fam {
		return bad("source address %v is not %v", c.SrcAddr, c.Family)
	}
	if c.Version == 0 {
		c.Version = 2
		if c.Family == inet.IPv6 {
			c.Version = 3
		}
	}
	switch {
	case c.Version != 2 && c.Version != 3:
		return bad("version %d, want 2 or 3", c.Version)
	case c.Version == 2 && c.Family == inet.IPv6:
		return bad("version 2 over IPv6, want version 3")
	}
	if c.Priority == 0 {
		c.Priority = 100
	}
	if c.AdvertInterval == 0 {
		c.AdvertInterval = time.Second
	}
	unit, max := time.Second, 255*time.Second
	if c.Version == 3 {
		unit, max = 10*time.Millisecond, 4095*10*time.Millisecond
	}
	if c.AdvertInterval < unit || c.AdvertInterval > max || c.AdvertInterval%unit != 0 {
		return bad("version %d advert interval %v, want a multiple of %v from %v to %v", c.Version, c.AdvertInterval, unit, unit, max)
	}
	if c.PreemptDelay < 0 {
		return bad("negative preempt delay %v", c.PreemptDelay)
	}
	switch c.AuthType {
	case wire.AuthNone:
	case wire.AuthPass:
		if c.Version != 2 {
			return bad("auth_type PASS needs version 2")
		}
	default:
		return bad("auth type %d not supported, want none or PASS", c.AuthType)
	}
	for _, list := range [][]netip.Prefix{c.VIPs, c.ExcludedVIPs} {
		for _, p := range list {
			if !p.IsValid() {
				return bad("invalid virtual address %v", p)
			}
		}
	}
	if len(c.VIPs) > 255 {
		return bad("%d virtual addresses, an advert carries at most 255", len(c.VIPs))
	}
	for _, p := range c.VIPs {
		if inet.Of(p.Addr()) != c.Family {
			return bad("virtual address %v is not %v", p, c.Family)
		}
	}
	c.VIPs, c.ExcludedVIPs, c.Peers = slices.Clone(c.VIPs), slices.Clone(c.ExcludedVIPs), slices.Clone(c.Peers)
	for i, p := range c.Peers {
		if !p.IsValid() || inet.Of(p) != c.Family {
			return bad("unicast peer %v is not %v", p, c.Family)
		}
		c.Peers[i] = p.Unmap().WithZone("")
	}
	if c.InitialState != StateInit && c.InitialState != StateBackup && c.InitialState != StateMaster {
		return bad("initial state %v, want MASTER or BACKUP", c.InitialState)
	}
	if c.GARP == (GARP{}) {
		c.GARP = DefaultGARP()
	}
	if c.GARP.MasterRepeat < 0 || c.GARP.MasterRefreshRepeat < 0 || c.GARP.LowerPrioRepeat < 0 {
		return bad("negative gratuitous ARP repeat count")
	}
	return c, nil
}
