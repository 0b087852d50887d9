package sim

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"vigil/internal/inet"
	"vigil/vrrp"
	"vigil/vrrp/wire"
)

// Script drives a Network from text commands, one per line, each returning
// the trace lines it caused. The commands:
//
//	add-router NAME [OPTION...]     a router with one instance (see below)
//	add-instance NAME vrid=N [OPTION...]   one more instance on NAME
//	sync-group NAME GROUP           tie NAME's instances into a sync group
//	advance DURATION [quiet]        run; quiet leaves out adverts and GARPs
//	partition A B | C D             only routers on one side talk
//	block FROM TO                   drop packets FROM -> TO (one way)
//	heal                            undo partition and block
//	loss A B FRACTION               lose packets between A and B
//	delay A B DURATION              delay packets between A and B
//	stall NAME DURATION             SIGSTOP NAME for DURATION
//	kill NAME / restart NAME        kill -9, and start again
//	shutdown NAME [vrid=N] / startup NAME [vrid=N]
//	iface-down NAME / iface-up NAME
//	fault NAME on|off               a weight 0 tracker fails or recovers
//	set-priority NAME PRIO [vrid=N] tracking moves the effective priority
//	inject NAME [src=IP] [dst=IP] [ttl=N] HEX     raw bytes
//	forge NAME [src=IP] [dst=IP] [ttl=N] [vrid=N] [prio=N] [version=N]
//	      [int=N] [auth=PASS] [authtype=N] [type=N] [vips=A,B] [cksum=N]
//	                                a well-formed advert with those fields
//	status [NAME]                   state, priority, master, counters
//	vips                            who holds which VIP
//
// Options of add-router and add-instance: addr=IP (default 192.0.2.K for
// the K-th router, fe80::K with family=6), family=4|6, vrid=N (51),
// prio=N, version=2|3, int=DURATION, vips=P,P (default 198.51.100.VRID/32
// or 2001:db8::VRID/128), excluded=P,P, nopreempt, preempt-delay=D,
// auth=PASS, unicast=IP,IP, check-unicast-src, state=MASTER|BACKUP,
// checksum=nopseudo, lower-prio-no-advert, higher-prio-send-advert,
// garp-delay=D, garp-repeat=N, garp-refresh=D, garp-refresh-repeat=N,
// garp-lower-delay=D, garp-lower-repeat=N.
type Script struct {
	Net   *Network
	track map[string]vrrp.Tracking
	quiet bool
}

// NewScript returns a script over a new network seeded with seed.
func NewScript(seed int64) *Script {
	return &Script{Net: New(seed), track: map[string]vrrp.Tracking{}}
}

// Run executes one command and returns its trace, one line per event; an
// error is returned as a line "error: ...".
func (s *Script) Run(line string) string {
	f := strings.Fields(line)
	if len(f) == 0 {
		return ""
	}
	s.Net.Quiet = s.quiet
	err := s.exec(f[0], f[1:])
	out := s.Net.Lines()
	if err != nil {
		out = append(out, "error: "+err.Error())
	}
	s.Net.Quiet = false
	return strings.Join(out, "\n")
}

var errUsage = errors.New("usage")

func (s *Script) router(name string) (*Router, error) {
	r := s.Net.Router(name)
	if r == nil {
		return nil, fmt.Errorf("no router %q", name)
	}
	return r, nil
}

// minArgs is how many arguments the commands that need some take at least
// (those acting on one router need its name, checked where they run).
var minArgs = map[string]int{
	"add-router": 1, "add-instance": 1, "sync-group": 2, "advance": 1, "block": 2, "loss": 3, "delay": 3,
}

func (s *Script) exec(cmd string, args []string) error {
	need := func(n int) error {
		if len(args) < n {
			return fmt.Errorf("%w: %s needs %d arguments", errUsage, cmd, n)
		}
		return nil
	}
	if err := need(minArgs[cmd]); err != nil {
		return err
	}
	switch cmd {
	case "add-router":
		cfg, err := s.config(args[0], len(s.Net.routers)+1, nil, args[1:])
		if err != nil {
			return err
		}
		_, err = s.Net.Add(args[0], cfg)
		return err
	case "add-instance":
		r, err := s.router(args[0])
		if err != nil {
			return err
		}
		cfg, err := s.config(args[0], 0, r, args[1:])
		if err != nil {
			return err
		}
		return s.Net.AddInstance(r, cfg)
	case "sync-group":
		r, err := s.router(args[0])
		if err != nil {
			return err
		}
		return s.Net.SyncGroup(r, args[1])
	case "advance":
		d, err := time.ParseDuration(args[0])
		if err != nil {
			return err
		}
		s.Net.Quiet = s.Net.Quiet || slices.Contains(args[1:], "quiet")
		s.Net.RunFor(d)
		return nil
	case "quiet":
		s.quiet = len(args) == 0 || args[0] == "on"
		return nil
	case "partition":
		var sides [][]string
		cur := []string{}
		for _, a := range args {
			if a == "|" {
				sides = append(sides, cur)
				cur = []string{}
				continue
			}
			if _, err := s.router(a); err != nil {
				return err
			}
			cur = append(cur, a)
		}
		s.Net.Partition(append(sides, cur)...)
		s.Net.logf("partition %s", strings.Join(args, " "))
		return nil
	case "block":
		s.Net.Block(args[0], args[1])
		s.Net.logf("block %s -> %s", args[0], args[1])
		return nil
	case "heal":
		s.Net.Heal()
		s.Net.logf("healed")
		return nil
	case "loss":
		p, err := strconv.ParseFloat(args[2], 64)
		if err != nil {
			return err
		}
		s.Net.SetLoss(args[0], args[1], p)
		return nil
	case "delay":
		d, err := time.ParseDuration(args[2])
		if err != nil {
			return err
		}
		s.Net.SetDelay(args[0], args[1], d)
		return nil
	case "stall", "kill", "restart", "shutdown", "startup", "iface-down", "iface-up", "fault", "set-priority", "inject", "forge", "status":
	case "vips":
		h := s.Net.Holders()
		keys := make([]netip.Prefix, 0, len(h))
		for p := range h {
			keys = append(keys, p)
		}
		slices.SortFunc(keys, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		for _, p := range keys {
			s.Net.logf("vip %v on %s", p, strings.Join(h[p], ","))
		}
		if len(keys) == 0 {
			s.Net.logf("no vips installed")
		}
		return nil
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}

	// The rest act on one router, or all of them for status.
	if cmd == "status" && len(args) == 0 {
		for _, r := range s.Net.routers {
			s.status(r)
		}
		return nil
	}
	if err := need(1); err != nil {
		return err
	}
	r, err := s.router(args[0])
	if err != nil {
		return err
	}
	args = args[1:]
	kv, rest := options(args)
	vrid := uint8(0)
	if v, ok := kv["vrid"]; ok && cmd != "forge" {
		n, err := strconv.ParseUint(v, 10, 8)
		if err != nil {
			return err
		}
		vrid = uint8(n)
	}
	switch cmd {
	case "status":
		s.status(r)
	case "stall":
		if len(rest) < 1 {
			return fmt.Errorf("%w: stall NAME DURATION", errUsage)
		}
		d, err := time.ParseDuration(rest[0])
		if err != nil {
			return err
		}
		s.Net.Stall(r, d)
	case "kill":
		s.Net.Kill(r)
	case "restart":
		return s.Net.Restart(r)
	case "shutdown":
		return s.Net.Step(r, vrid, vrrp.Shutdown{})
	case "startup":
		return s.Net.Step(r, vrid, vrrp.Startup{})
	case "iface-down":
		return s.Net.Step(r, vrid, vrrp.InterfaceDown{})
	case "iface-up":
		return s.Net.Step(r, vrid, vrrp.InterfaceUp{})
	case "fault", "set-priority":
		if len(rest) < 1 {
			return fmt.Errorf("%w: %s NAME on|off|PRIO", errUsage, cmd)
		}
		// Each instance keeps its own tracking state, which the next
		// command changes in one field.
		for _, in := range r.insts {
			if vrid != 0 && in.Config().VRID != vrid {
				continue
			}
			key := r.label(in)
			t := s.track[key]
			if cmd == "fault" {
				if rest[0] != "on" && rest[0] != "off" {
					return fmt.Errorf("%w: fault NAME on|off", errUsage)
				}
				t.Fault = rest[0] == "on"
				t.Reason = "tracker failed"
				if !t.Fault {
					t.Reason = "tracker recovered"
				}
			} else {
				p, err := strconv.Atoi(rest[0])
				if err != nil {
					return err
				}
				t.Delta = p - int(in.Config().Priority)
				t.Reason = fmt.Sprintf("tracking set priority %d", p)
			}
			s.track[key] = t
			if err := in.Step(s.Net.now, t); err != nil {
				return err
			}
		}
		s.Net.flush()
	case "inject", "forge":
		p, err := s.packet(r, cmd, kv, rest)
		if err != nil {
			return err
		}
		err = s.Net.Inject(r, p)
		if err != nil {
			s.Net.logf("%s drop: %s", r.Name, dropText(err))
		} else {
			s.Net.logf("%s accepted", r.Name)
		}
	}
	return nil
}

// options splits key=value arguments from the others.
func options(args []string) (map[string]string, []string) {
	kv := map[string]string{}
	var rest []string
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok {
			kv[k] = v
		} else {
			rest = append(rest, a)
		}
	}
	return kv, rest
}

func (s *Script) packet(r *Router, cmd string, kv map[string]string, rest []string) (vrrp.Packet, error) {
	c := r.insts[0].Config()
	p := vrrp.Packet{TTL: 255, Dst: wire.GroupV4, Src: netip.MustParseAddr("192.0.2.250")}
	if c.Family == inet.IPv6 {
		p.Dst, p.Src = wire.GroupV6, netip.MustParseAddr("fe80::250")
	}
	var err error
	if v, ok := kv["src"]; ok {
		if p.Src, err = netip.ParseAddr(v); err != nil {
			return p, err
		}
	}
	if v, ok := kv["dst"]; ok {
		if p.Dst, err = netip.ParseAddr(v); err != nil {
			return p, err
		}
	}
	if v, ok := kv["ttl"]; ok {
		if p.TTL, err = strconv.Atoi(v); err != nil {
			return p, err
		}
	}
	if cmd == "inject" {
		if len(rest) != 1 {
			return p, fmt.Errorf("%w: inject NAME [src=IP] [dst=IP] [ttl=N] HEX", errUsage)
		}
		p.Data, err = hex.DecodeString(rest[0])
		return p, err
	}
	num := func(key string, def int) (int, error) {
		v, ok := kv[key]
		if !ok {
			return def, nil
		}
		return strconv.Atoi(v)
	}
	a := wire.Advert{Type: wire.TypeAdvertisement, Addrs: nil}
	var n int
	if n, err = num("version", c.Version); err != nil {
		return p, err
	}
	a.Version = uint8(n)
	if n, err = num("vrid", int(c.VRID)); err != nil {
		return p, err
	}
	a.VRID = uint8(n)
	if n, err = num("prio", 100); err != nil {
		return p, err
	}
	a.Priority = uint8(n)
	if n, err = num("type", wire.TypeAdvertisement); err != nil {
		return p, err
	}
	a.Type = uint8(n)
	defInt, _ := wire.EncodeInterval(a.Version, c.AdvertInterval)
	if n, err = num("int", int(defInt)); err != nil {
		return p, err
	}
	a.Interval = uint16(n)
	if a.Version == 2 {
		a.AuthType = c.AuthType
		a.AuthData = wire.Password(c.AuthPass)
		if v, ok := kv["auth"]; ok {
			a.AuthType, a.AuthData = wire.AuthPass, wire.Password(v)
		}
		if n, err = num("authtype", int(a.AuthType)); err != nil {
			return p, err
		}
		a.AuthType = uint8(n)
	}
	for _, v := range c.VIPs {
		a.Addrs = append(a.Addrs, v.Addr())
	}
	if v, ok := kv["vips"]; ok {
		a.Addrs = nil
		for _, x := range strings.Split(v, ",") {
			if x == "" {
				continue
			}
			ad, err := netip.ParseAddr(x)
			if err != nil {
				return p, err
			}
			a.Addrs = append(a.Addrs, ad)
		}
	}
	p.Data, err = a.Marshal(p.Src, p.Dst, c.ChecksumMode)
	if err != nil {
		return p, err
	}
	if v, ok := kv["cksum"]; ok {
		n, err := strconv.ParseUint(v, 0, 16)
		if err != nil {
			return p, err
		}
		p.Data[6], p.Data[7] = byte(n>>8), byte(n)
	}
	return p, nil
}

func (s *Script) status(r *Router) {
	if r.dead {
		s.Net.logf("%s dead, vips %s", r.Name, prefixes(r.vips))
		return
	}
	for _, in := range r.insts {
		st := in.Status()
		var drops []string
		for _, reason := range vrrp.DropReasons() {
			if d := st.Counters.Drops(reason); d > 0 {
				drops = append(drops, fmt.Sprintf("%v=%d", reason, d))
			}
		}
		dr := "none"
		if len(drops) > 0 {
			dr = strings.Join(drops, ",")
		}
		master := "none"
		if st.MasterAddr.IsValid() {
			master = fmt.Sprintf("%v/%d", st.MasterAddr, st.MasterPriority)
		}
		s.Net.logf("%s %v prio %d master %s down-interval %v rcvd %d sent %d drops %s vips %s",
			r.label(in), st.State, st.Priority, master, st.MasterDownInterval,
			st.Counters.Received, st.Counters.Sent, dr, prefixes(r.vips))
	}
}

// config builds an instance config from add-router / add-instance options.
// k is the router's index for default addresses (0: take r's address).
func (s *Script) config(name string, k int, r *Router, args []string) (vrrp.Config, error) {
	kv, flags := options(args)
	c := vrrp.Config{VRID: 51}
	fam := inet.IPv4
	if v := kv["family"]; v == "6" {
		fam = inet.IPv6
	}
	if r != nil {
		c.SrcAddr = r.Addr
		fam = inet.Of(r.Addr)
	} else if fam == inet.IPv6 {
		c.SrcAddr = netip.AddrFrom16([16]byte{0: 0xfe, 1: 0x80, 15: byte(k)})
	} else {
		c.SrcAddr = netip.AddrFrom4([4]byte{192, 0, 2, byte(k)})
	}
	var err error
	for key, v := range kv {
		switch key {
		case "family":
		case "addr":
			c.SrcAddr, err = netip.ParseAddr(v)
		case "vrid":
			var n uint64
			n, err = strconv.ParseUint(v, 10, 8)
			c.VRID = uint8(n)
		case "prio":
			var n uint64
			n, err = strconv.ParseUint(v, 10, 8)
			c.Priority = uint8(n)
		case "version":
			c.Version, err = strconv.Atoi(v)
		case "int":
			c.AdvertInterval, err = time.ParseDuration(v)
		case "vips":
			c.VIPs, err = prefixList(v)
		case "excluded":
			c.ExcludedVIPs, err = prefixList(v)
		case "preempt-delay":
			c.PreemptDelay, err = time.ParseDuration(v)
		case "auth":
			c.AuthType, c.AuthPass = wire.AuthPass, v
		case "unicast":
			for _, x := range strings.Split(v, ",") {
				var a netip.Addr
				if a, err = netip.ParseAddr(x); err != nil {
					break
				}
				c.Peers = append(c.Peers, a)
			}
		case "state":
			switch v {
			case "MASTER":
				c.InitialState = vrrp.StateMaster
			case "BACKUP":
				c.InitialState = vrrp.StateBackup
			default:
				err = fmt.Errorf("state %q, want MASTER or BACKUP", v)
			}
		case "checksum":
			if v != "nopseudo" {
				err = fmt.Errorf("checksum %q, want nopseudo", v)
			}
			c.ChecksumMode = wire.ChecksumNoPseudoHeader
		case "garp-delay", "garp-repeat", "garp-refresh", "garp-refresh-repeat", "garp-lower-delay", "garp-lower-repeat":
			if c.GARP == (vrrp.GARP{}) {
				c.GARP = vrrp.DefaultGARP()
			}
			counts := map[string]*int{"garp-repeat": &c.GARP.MasterRepeat, "garp-refresh-repeat": &c.GARP.MasterRefreshRepeat, "garp-lower-repeat": &c.GARP.LowerPrioRepeat}
			delays := map[string]*time.Duration{"garp-delay": &c.GARP.MasterDelay, "garp-refresh": &c.GARP.MasterRefresh, "garp-lower-delay": &c.GARP.LowerPrioDelay}
			if n, ok := counts[key]; ok {
				*n, err = strconv.Atoi(v)
			} else {
				*delays[key], err = time.ParseDuration(v)
			}
		default:
			err = fmt.Errorf("unknown option %q", key)
		}
		if err != nil {
			return c, fmt.Errorf("%s: %s=%s: %w", name, key, v, err)
		}
	}
	for _, f := range flags {
		switch f {
		case "nopreempt":
			c.NoPreempt = true
		case "check-unicast-src":
			c.CheckUnicastSrc = true
		case "lower-prio-no-advert":
			c.LowerPrioNoAdvert = true
		case "higher-prio-send-advert":
			c.HigherPrioSendAdvert = true
		default:
			return c, fmt.Errorf("%s: unknown flag %q", name, f)
		}
	}
	if _, ok := kv["vips"]; !ok {
		if inet.Of(c.SrcAddr) == inet.IPv6 {
			c.VIPs = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: c.VRID}), 128)}
		} else {
			c.VIPs = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, c.VRID}), 32)}
		}
	}
	return c, nil
}

func prefixList(v string) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	for _, x := range strings.Split(v, ",") {
		if x == "" {
			continue
		}
		if p, err := netip.ParsePrefix(x); err == nil {
			ps = append(ps, p)
			continue
		}
		a, err := netip.ParseAddr(x)
		if err != nil {
			return nil, err
		}
		ps = append(ps, netip.PrefixFrom(a, a.BitLen()))
	}
	return ps, nil
}
