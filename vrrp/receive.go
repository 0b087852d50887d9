package vrrp

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"vigil/internal/inet"
	"vigil/vrrp/wire"
)

// receive runs the receive checks on p, in keepalived's order (see the
// package documentation), and then the state machine.
func (i *Instance) receive(p Packet) error {
	b := p.Data
	src, dst := p.Src.Unmap().WithZone(""), p.Dst.Unmap().WithZone("")
	drop := func(r DropReason, format string, args ...any) error {
		i.countDrop(r)
		return &DropError{Reason: r, Src: src, Detail: fmt.Sprintf(format, args...)}
	}

	if inet.Of(src) != i.cfg.Family || inet.Of(dst) != i.cfg.Family {
		return drop(DropLength, "from %v to %v, want %v", src, dst, i.cfg.Family)
	}
	a, perr := wire.ParseHeader(b, i.cfg.Family)
	badVersion := errors.Is(perr, wire.ErrVersion)
	badCount := errors.Is(perr, wire.ErrAddrCount)
	if perr != nil && !badVersion && !badCount {
		return drop(DropLength, "%v", perr)
	}
	// From here the fixed header is there; when Parse failed on the
	// version or the count, read the header fields where they are so the
	// checks keep their order.
	version, typ, vrid, count := b[0]>>4, b[0]&0x0f, b[1], int(b[3])
	if vrid != i.cfg.VRID {
		return drop(DropVRID, "vrid %d, want %d", vrid, i.cfg.VRID)
	}
	// RFC 5798 section 7.1: a TTL below 255 means the advert crossed a
	// router, and VRRP is link-local.
	multicast := dst.IsMulticast()
	if (multicast || i.cfg.CheckUnicastTTL) && p.TTL != 255 {
		return drop(DropTTL, "ttl %d, want 255", p.TTL)
	}
	if badVersion || int(version) != i.cfg.Version {
		return drop(DropVersion, "version %d, want %d", version, i.cfg.Version)
	}
	if version == 2 {
		if at := b[4]; at != i.cfg.AuthType {
			return drop(DropAuthType, "auth type %d, want %d", at, i.cfg.AuthType)
		}
		if i.cfg.AuthType == wire.AuthPass {
			// The auth data follows the addresses the count announces;
			// a message too long for its count still has it there.
			off := wire.HeaderLen + count*4
			pw := i.authData()
			if off+wire.AuthDataLen > len(b) ||
				subtle.ConstantTimeCompare(b[off:off+wire.AuthDataLen], pw[:]) != 1 {
				return drop(DropAuth, "wrong password")
			}
		}
		if want := uint16(i.cfg.AdvertInterval / time.Second); uint16(b[5]) != want {
			return drop(DropInterval, "interval %ds, want %ds", b[5], want)
		}
	}
	if typ != wire.TypeAdvertisement {
		return drop(DropType, "type %d, want %d", typ, wire.TypeAdvertisement)
	}
	if badCount {
		return drop(DropAddrCount, "%v", perr)
	}
	skipAddrs := i.cfg.SkipCheckAdvAddr && src == i.masterAddr && src != i.cfg.SrcAddr
	if count != len(i.cfg.VIPs) && !skipAddrs {
		return drop(DropAddrCount, "%d addresses, want %d", count, len(i.cfg.VIPs))
	}
	oldSum := false
	if !wire.VerifyChecksum(b, src, dst, i.cfg.ChecksumMode) {
		// A keepalived before 1.3.6 (or with old_unicast_checksum) puts
		// the multicast group in a unicast advert's pseudo-header.
		oldSum = version == 3 && dst.Is4() && !multicast && wire.VerifyChecksum(b, src, wire.GroupV4, i.cfg.ChecksumMode)
		if !oldSum {
			return drop(DropChecksum, "checksum 0x%04x does not verify (%v)", a.Checksum, i.cfg.ChecksumMode)
		}
	}
	if unicast := len(i.cfg.Peers) > 0; multicast == unicast {
		if unicast {
			return drop(DropCast, "multicast to %v, but the instance is unicast", dst)
		}
		return drop(DropCast, "unicast to %v, but the instance is multicast", dst)
	}
	for _, v := range i.cfg.VIPs {
		if !skipAddrs && !wire.HasAddr(b, i.cfg.Family, v.Addr()) {
			all, _ := wire.Parse(b, i.cfg.Family)
			return drop(DropVIPs, "our address %v is not in the advert's %v", v.Addr(), all.Addrs)
		}
	}
	if !multicast && i.cfg.CheckUnicastSrc && !slices.Contains(i.cfg.Peers, src) {
		return drop(DropUnknownPeer, "not a unicast peer")
	}
	if src == i.cfg.SrcAddr {
		return drop(DropOwn, "our own advert")
	}
	if i.state != StateBackup && i.state != StateMaster {
		return drop(DropInactive, "instance is %v", i.state)
	}

	if oldSum && !i.oldUnicastSum {
		i.oldUnicastSum = true
		i.adverts = nil // checksummed the new way
		r := i.out.rest()
		r.Notes = append(r.Notes, fmt.Sprintf("advert from %v uses the old unicast checksum; sending it too", src))
	}
	if a.Version == 3 {
		differs := a.AdverInterval() != i.cfg.AdvertInterval
		if differs && !i.ivalMismatch {
			r := i.out.rest()
			r.Notes = append(r.Notes, fmt.Sprintf("advert from %v has interval %v, ours is %v", src, a.AdverInterval(), i.cfg.AdvertInterval))
		}
		i.ivalMismatch = differs
	}
	i.counters.Received++
	if a.Priority == 0 {
		i.counters.PriorityZeroRcvd++
	}
	if i.state == StateBackup {
		i.onBackup(a, src)
	} else {
		i.onMaster(a, src)
	}
	return nil
}

// adopt is RFC 5798 section 6.4.2's "set Master_Adver_Interval to Adver
// Interval contained in the ADVERTISEMENT" (version 3 only: a version 2
// advert with another interval never gets here). An interval of 0 would
// make the down timer fire at once; it is not adopted.
func (i *Instance) adopt(a wire.Advert) {
	if a.Version == 3 && a.Interval > 0 {
		i.setMasterAdverInt(a.AdverInterval())
	}
}

// onBackup is RFC 5798 section 6.4.2, receiving an ADVERTISEMENT.
func (i *Instance) onBackup(a wire.Advert, src netip.Addr) {
	i.adopt(a)
	// Whatever this advert does to the down timer, a takeover brought
	// forward by PeerDown no longer stands: the master is heard.
	i.setTakeover("")
	if a.Priority == 0 {
		// The master is leaving: take over after Skew_Time, so that the
		// highest priority backup answers first.
		i.masterAddr, i.masterPrio = src, 0
		i.downAt = i.after(i.skew())
		return
	}
	lower := a.Priority < i.prio
	if !lower {
		i.preemptAt = 0 // a master at least as good: a later lower one starts the delay afresh
	}
	delaying := false
	if lower && !i.cfg.NoPreempt && i.cfg.PreemptDelay > 0 {
		if i.preemptAt == 0 {
			i.preemptAt = i.after(i.cfg.PreemptDelay)
		}
		delaying = i.now < i.preemptAt
	}
	if i.cfg.NoPreempt || !lower || delaying {
		i.masterAddr, i.masterPrio = src, a.Priority
		i.downAt = i.after(i.downInterval())
		i.wantMaster = false
		return
	}
	// A preempting backup discards a lower priority advert: its down
	// timer runs out and it takes over.
}

// onMaster is RFC 5798 section 6.4.3, receiving an ADVERTISEMENT.
func (i *Instance) onMaster(a wire.Advert, src netip.Addr) {
	if a.Priority == 0 {
		// Another master is leaving; assert ourselves at once so its
		// backups do not take over after Skew_Time.
		i.sendAdvert(i.prio)
		i.advertAt = i.after(i.cfg.AdvertInterval)
		return
	}
	var reason because
	switch {
	case a.Priority > i.prio:
		reason = because{CauseHigherPriority, fmt.Sprintf("higher priority %d from %v", a.Priority, src)}
	case a.Priority == i.prio && src.Compare(i.cfg.SrcAddr) > 0:
		reason = because{CauseHigherAddress, fmt.Sprintf("equal priority %d from higher address %v", a.Priority, src)}
	}
	if reason.cause != 0 {
		if i.cfg.HigherPrioSendAdvert {
			i.sendAdvert(i.prio)
		}
		i.adopt(a)
		i.becomeBackup(reason)
		i.masterAddr, i.masterPrio = src, a.Priority
		if i.group != nil {
			i.group.follow(i, StateBackup)
		}
		return
	}
	// A lower priority master: a split brain healing, or a router that
	// has just come up. Assert ourselves and fix the ARP caches its
	// announcements may have spoiled (keepalived's garp_lower_prio).
	if !i.cfg.LowerPrioNoAdvert {
		i.sendAdvert(i.prio)
		i.advertAt = i.after(i.cfg.AdvertInterval)
	}
	why := fmt.Sprintf("lower priority %d from %v", a.Priority, src)
	i.announce(i.cfg.GARP.LowerPrioRepeat, why)
	if i.cfg.GARP.LowerPrioDelay > 0 && !slices.ContainsFunc(i.bursts(), func(b burst) bool { return b.lowerPrio }) {
		i.addBurst(burst{at: i.after(i.cfg.GARP.LowerPrioDelay), repeat: i.cfg.GARP.LowerPrioRepeat, reason: why + ", delayed", lowerPrio: true})
	}
}
