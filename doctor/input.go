package doctor

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"vigil/config"
	"vigil/control"
	"vigil/internal/inet"
	"vigil/vrrp/wire"
)

// Input is everything the checks look at. Any part may be missing: no
// daemon running (Status nil), no readable configuration (Config nil), no
// capture on an interface; each check uses what is there.
type Input struct {
	Now time.Time

	// Config is the keepalived.conf that was read, with its diagnostics.
	Config     *config.Config
	ConfigFile string
	Diags      config.Diagnostics

	// Status is the daemon's status at the end of the capture, Before at
	// its start (so counters are seen moving). StatusErr says why there is
	// none; StatusTimeout that a daemon holds the socket but did not answer.
	Status, Before *control.Status
	StatusErr      string
	StatusTimeout  bool

	// Captures are keyed by interface name.
	Captures map[string]*Capture

	// Facts answers questions about the host; nil means none can be asked.
	Facts Facts

	// DRProbes are the probes of the DR path to each real server of the
	// DR services this host directs (drprobe.go).
	DRProbes []DRProbe

	// Peers are the other directors' tables, read from their metrics
	// (`vigil doctor --peer`; tables.go).
	Peers []PeerTables
}

// Facts are the host facts a check may ask for. Gather implements them on
// Linux; tests use a fake. Answers should be cached by the implementation:
// several checks may ask the same question.
type Facts interface {
	// Firewall returns the packet filter dumps.
	Firewall() (Firewall, error)
	// Proc returns the trimmed contents of a file under /proc, such as
	// "sys/net/ipv4/conf/eth0/rp_filter" or "pressure/cpu".
	Proc(path string) (string, error)
	// Addrs returns the addresses on interface ifname, or on every
	// interface when ifname is empty.
	Addrs(ifname string) ([]netip.Prefix, error)
	// Holders returns the link-layer addresses of other hosts on ifname
	// that answer ARP for vip (IPv4 only; none for IPv6).
	Holders(ifname string, vip netip.Addr) ([]string, error)
}

// Capture is what a short passive capture heard on one interface.
type Capture struct {
	Interface string
	Duration  time.Duration
	// Err is set when the capture could not run at all.
	Err string
	// Wire is every advert seen on the link, before this host's firewall
	// and rp_filter: what a tcpdump would show, our own adverts included.
	Wire []Heard
	// Delivered is what reached a VRRP socket on this host, after the
	// firewall and rp_filter. DeliveredErr is set when that listener could
	// not run (Delivered is then meaningless).
	Delivered    []Heard
	DeliveredErr string
}

// Heard is one advertising source for one VRID.
type Heard struct {
	Version  uint8      `json:"version"`
	VRID     uint8      `json:"vrid"`
	Src      netip.Addr `json:"src"`
	Adverts  uint64     `json:"adverts"`
	Priority uint8      `json:"priority"`
	// Interval is raw: seconds (v2) or centiseconds (v3).
	Interval uint16 `json:"interval"`
	NAddrs   int    `json:"naddrs"`
	// Addrs, AuthType and AuthData are known only for Delivered adverts
	// (the wire capture counts, it does not decode).
	Addrs    []netip.Addr `json:"addrs,omitempty"`
	AuthType uint8        `json:"auth_type,omitempty"`
	AuthData [8]byte      `json:"-"`
	Decoded  bool         `json:"decoded,omitempty"`
	MAC      string       `json:"mac,omitempty"`
}

// target is one VRRP instance as the checks see it: its configuration
// and, when a daemon runs, its live status.
type target struct {
	name    string
	iface   string
	vrid    int
	version int
	fam     int // 4 or 6
	vips    []netip.Addr
	peers   []netip.Addr
	src     netip.Addr // unicast_src_ip or mcast_src_ip when configured
	cfg     *config.Instance
	st      *control.InstanceStatus
	before  *control.InstanceStatus
}

func (t *target) multicast() bool { return len(t.peers) == 0 }

func (t *target) state() string {
	if t.st == nil {
		return ""
	}
	return t.st.State
}

func (t *target) group() netip.Addr {
	if t.cfg != nil && t.cfg.McastDstIP.IsValid() {
		return t.cfg.McastDstIP
	}
	if t.fam == 6 {
		return wire.GroupV6
	}
	return wire.GroupV4
}

// counter returns a status counter and how much it grew during the
// capture (the delta is -1 when there was no earlier snapshot).
func (t *target) counter(name string) (total uint64, delta int64) {
	if t.st == nil {
		return 0, -1
	}
	total = t.st.Counters[name]
	if t.before == nil {
		return total, -1
	}
	return total, int64(total) - int64(t.before.Counters[name])
}

// interval is the configured or live advert interval.
func (t *target) interval() time.Duration {
	if t.st != nil && t.st.AdvertInterval > 0 {
		return time.Duration(t.st.AdvertInterval)
	}
	if t.cfg != nil {
		return t.cfg.AdvertInt
	}
	return time.Second
}

// targets merges configured and running instances by name.
func (in *Input) targets() []*target {
	var out []*target
	byName := map[string]*target{}
	if in.Config != nil {
		for _, c := range in.Config.Instances {
			t := &target{name: c.Name, iface: c.Interface, vrid: c.VRID, version: c.Version, fam: 4, cfg: c}
			if c.Family == inet.IPv6 {
				t.fam = 6
			}
			for _, v := range c.VIPs {
				t.vips = append(t.vips, v.Addr())
			}
			for _, p := range c.UnicastPeers {
				t.peers = append(t.peers, p.Addr)
			}
			t.src = c.UnicastSrcIP
			if !t.src.IsValid() {
				t.src = c.McastSrcIP
			}
			byName[c.Name] = t
			out = append(out, t)
		}
	}
	statusInstances := func(s *control.Status) []control.InstanceStatus {
		if s == nil {
			return nil
		}
		return s.Instances
	}
	for i := range statusInstances(in.Status) {
		st := &in.Status.Instances[i]
		t := byName[st.Name]
		if t == nil {
			t = &target{name: st.Name, iface: st.Interface, vrid: st.VRID, version: st.Version, fam: 4}
			if st.Family == "ipv6" {
				t.fam = 6
			}
			for _, v := range st.VIPs {
				if p, err := netip.ParsePrefix(v); err == nil {
					t.vips = append(t.vips, p.Addr())
				} else if a, err := netip.ParseAddr(v); err == nil {
					t.vips = append(t.vips, a)
				}
			}
			byName[st.Name] = t
			out = append(out, t)
		}
		// The daemon's view wins: it is what runs (a config edited since
		// the last reload may differ).
		t.st, t.iface, t.vrid, t.version = st, st.Interface, st.VRID, st.Version
	}
	for i := range statusInstances(in.Before) {
		b := &in.Before.Instances[i]
		if t := byName[b.Name]; t != nil {
			t.before = b
		}
	}
	return out
}

// local reports whether a is an address of this host (or the configured
// source of t).
func (in *Input) local(t *target, a netip.Addr) bool {
	if t != nil && t.src == a {
		return true
	}
	if in.Facts == nil {
		return false
	}
	ps, err := in.Facts.Addrs("")
	if err != nil {
		return false
	}
	return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Addr() == a })
}

// holdsVIPs reports whether this host has t's first VIP: the mark of a
// master when no daemon can be asked.
func (in *Input) holdsVIPs(t *target) bool {
	if in.Facts == nil || len(t.vips) == 0 {
		return false
	}
	ps, err := in.Facts.Addrs("")
	if err != nil {
		return false
	}
	return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Addr() == t.vips[0] })
}

// master reports whether this node acts as master of t: by the daemon's
// word, or, without a daemon, because it holds the VIPs.
func (in *Input) master(t *target) bool {
	if t.st != nil {
		return t.st.State == "MASTER"
	}
	return in.holdsVIPs(t)
}

// heard returns the wire and delivered adverts for t's VRID and version
// from sources other than this host.
func (in *Input) heard(t *target) (wireH, delivered []Heard, c *Capture) {
	c = in.Captures[t.iface]
	if c == nil || c.Err != "" {
		return nil, nil, c
	}
	pick := func(hs []Heard) []Heard {
		var out []Heard
		for _, h := range hs {
			if int(h.VRID) != t.vrid || (h.Src.Is4()) != (t.fam == 4) || in.local(t, h.Src) {
				continue
			}
			out = append(out, h)
		}
		return out
	}
	return pick(c.Wire), pick(c.Delivered), c
}

func addrList(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}
