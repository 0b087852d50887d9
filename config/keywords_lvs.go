package config

import (
	"encoding/hex"
	"net/netip"
	"regexp"
	"strings"
	"time"
	"vigil/internal/inet"
)

var (
	vsTable           *table[VirtualServer]
	rsTable           *table[RealServer]
	checkerTable      *table[Checker]
	checkerTables     map[string]*table[Checker]
	urlTable          *table[URLCheck]
	sslTable          *table[SSLConfig]
	schedulerSet      = map[string]bool{}
	maxTimer          = 4294967295 * time.Microsecond
	maxLongTimer      = 4294967295 * time.Second
	minConnectTimeout = time.Microsecond
)

// SSLConfig is the top-level SSL block used by SSL_GET checkers.
type SSLConfig struct {
	Pos         Pos
	Password    string
	CA          string
	Certificate string
	Key         string
}

// methodWord parses NAT|DR|TUN|FNAT; TUN is rejected.
func (b *builder) methodArg(n *Node) (Method, bool) {
	w, ok := b.arg(n, "NAT, DR or FNAT")
	if !ok {
		return MethodUnset, false
	}
	if len(n.Args) > 1 && w.Text != "TUN" {
		// keepalived reads words after the method as tunnel options,
		// which only TUN has, and refuses them otherwise.
		b.errorf(n.Args[1].Pos, "%s %s: unexpected %q: only TUN takes options after the method (keepalived refuses this too)", n.Key.Text, w.Text, n.Args[1].Text)
	}
	switch w.Text {
	case "NAT":
		return NAT, true
	case "DR":
		return DR, true
	case "FNAT":
		return FNAT, true
	case "TUN":
		b.errorf(w.Pos, unsupportedMark+"%s TUN (keepalived accepts it): tunnelling is not built yet; use NAT, DR or FNAT", n.Key.Text)
		return TUN, true
	}
	b.errorf(w.Pos, "%s %q: expected NAT, DR, TUN or FNAT", n.Key.Text, w.Text)
	return MethodUnset, false
}

func methodKW[T any](name, doc string, field func(*T) *Method) keyword[T] {
	return keyword[T]{Name: name, Status: Supported, Doc: doc, Parse: func(b *builder, n *Node, v *T) {
		b.noBlock(n)
		if m, ok := b.methodArg(n); ok {
			*field(v) = m
			markSet(v, fMethod)
		}
	}}
}

func schedKW(name string) keyword[VirtualServer] {
	return keyword[VirtualServer]{Name: name, Status: Supported, Doc: "Scheduler: rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos (default wlc, reported as an error as keepalived does).", Parse: func(b *builder, n *Node, vs *VirtualServer) {
		b.noBlock(n)
		w, ok := b.arg(n, "a scheduler name")
		if !ok {
			return
		}
		if !schedulerSet[w.Text] {
			b.errorf(w.Pos, "%s %q: expected one of %s", n.Key.Text, w.Text, strings.Join(Schedulers, " "))
			return
		}
		vs.Scheduler = keep(w.Text)
		vs.has |= fScheduler
	}}
}

func schedFlagKW(name string) keyword[VirtualServer] {
	return keyword[VirtualServer]{Name: name, Status: Supported, Doc: "Scheduler flag " + name + ".", Parse: func(b *builder, n *Node, vs *VirtualServer) {
		b.noBlock(n)
		vs.SchedFlags = append(vs.SchedFlags, name)
	}}
}

// timerRows are the checker settings inherited virtual server → real
// server → checker.
func timerRows[T any](get func(*T) *checkTimers) []keyword[T] {
	return []keyword[T]{
		durKW("connect_timeout", "Timeout of a check's connection (default 5 s).", minConnectTimeout, maxTimer, func(v *T) *time.Duration { return &get(v).ConnectTimeout }, fConnectTimeout),
		intKW("retry", "Extra checks before declaring a failure (default 1; DNS 3; MISC 0).", 0, 1<<31-1, func(v *T) *int { return &get(v).Retry }, fRetry),
		{Name: "nb_get_retry", Status: Supported, Doc: "Old name of retry (keepalived reports it as a deprecation error).", Parse: func(b *builder, n *Node, v *T) {
			b.noBlock(n)
			b.errorf(n.Key.Pos, "nb_get_retry is deprecated: use retry (keepalived reports this as an error)")
			if r, ok := b.intArg(n, 0, 1<<31-1); ok {
				get(v).Retry = r
				markSet(v, fRetry)
			}
		}},
		durKW("delay_before_retry", "Wait before a retry (default 1 s; HTTP/SSL 3 s; DNS delay_loop).", 0, maxLongTimer, func(v *T) *time.Duration { return &get(v).DelayBeforeRetry }, fDelayBeforeRetry),
		durKW("warmup", "Maximum random delay of the first check (default delay_loop; 0 off).", 0, maxLongTimer, func(v *T) *time.Duration { return &get(v).Warmup }, fWarmup),
		durKW("delay_loop", "Interval between checks (default 60 s).", time.Microsecond, maxLongTimer, func(v *T) *time.Duration { return &get(v).DelayLoop }, fDelayLoop),
	}
}

// checkTimers is the shape the inherited settings share; the model
// structs expose the same fields, filled by resolve.
type checkTimers struct {
	ConnectTimeout   time.Duration
	Retry            int
	DelayBeforeRetry time.Duration
	Warmup           time.Duration
	DelayLoop        time.Duration
}

func init() {
	for _, s := range Schedulers {
		schedulerSet[s] = true
	}

	vsRows := []keyword[VirtualServer]{
		schedKW("lb_algo"),
		schedKW("lvs_sched"),
		methodKW("lb_kind", "Forwarding: NAT, DR or FNAT (DPVS full NAT); TUN is rejected. Default NAT, reported as an error as keepalived does.", func(v *VirtualServer) *Method { return &v.Method }),
		methodKW("lvs_method", "Same as lb_kind.", func(v *VirtualServer) *Method { return &v.Method }),
		{Name: "protocol", Status: Supported, Doc: "TCP, UDP or SCTP (keepalived reports a missing protocol as an error and uses UDP).", Parse: func(b *builder, n *Node, vs *VirtualServer) {
			b.noBlock(n)
			if p, ok := choiceArg(b, n, "TCP, UDP or SCTP", true, map[string]Protocol{"TCP": TCP, "UDP": UDP, "SCTP": SCTP}); ok {
				vs.Protocol = p
				vs.has |= fProtocol
			}
		}},
		{Name: "persistence_timeout", Status: Supported, Doc: "Seconds a client sticks to its real server (bare: 360).", Parse: func(b *builder, n *Node, vs *VirtualServer) {
			b.noBlock(n)
			if len(n.Args) == 0 {
				vs.PersistenceTimeout = 360 * time.Second
				return
			}
			if v, ok := b.intArg(n, 1, 2678400); ok {
				vs.PersistenceTimeout = time.Duration(v) * time.Second
			}
		}},
		{Name: "persistence_granularity", Status: Supported, Doc: "Netmask (or IPv6 prefix length) grouping clients for persistence.", Parse: func(b *builder, n *Node, vs *VirtualServer) {
			b.noBlock(n)
			w, ok := b.arg(n, "a netmask")
			if !ok {
				return
			}
			if a, ok := parseAddr(w.Text); ok && a.Is4() {
				bits := maskBits(a)
				if bits < 0 {
					// keepalived passes any mask to the kernel.
					bits = leadingOnes(a)
					b.warnf(w.Pos, "persistence_granularity %q is not a contiguous netmask: vigil uses /%d", w.Text, bits)
				}
				vs.PersistenceGranularity = netip.PrefixFrom(netip.IPv4Unspecified(), bits)
				return
			}
			if v, ok := parseInt(w.Text); ok && v >= 1 && v <= 128 {
				vs.PersistenceGranularity = netip.PrefixFrom(netip.IPv6Unspecified(), int(v))
				return
			}
			b.errorf(w.Pos, "persistence_granularity %q: expected a netmask or a prefix length 1..128", w.Text)
		}},
		strKW("persistence_engine", "Persistence engine (sip).", "an engine name", func(v *VirtualServer) *string { return &v.PersistenceEngine }, 0),
		intKW("quorum", "Minimum total weight of live real servers (default 1).", 1, 1<<31-1, func(v *VirtualServer) *int { return &v.Quorum }, fQuorum),
		intKW("hysteresis", "Weight tolerance around the quorum (default 0).", 0, 1<<31-1, func(v *VirtualServer) *int { return &v.Hysteresis }, 0),
		cmdKW("quorum_up", "Script run when the quorum is gained.", func(v *VirtualServer) **Command { return &v.QuorumUp }),
		cmdKW("quorum_down", "Script run when the quorum is lost.", func(v *VirtualServer) **Command { return &v.QuorumDown }),
		{Name: "sorry_server", Status: Supported, Doc: "IP [PORT] used when the quorum is lost.", Parse: func(b *builder, n *Node, vs *VirtualServer) {
			b.noBlock(n)
			w, ok := b.arg(n, "IP [PORT]")
			if !ok {
				return
			}
			a, ok := b.addrWord("sorry_server", w)
			if !ok {
				return
			}
			s := &SorryServer{Pos: n.Key.Pos, Addr: a}
			if len(n.Args) > 1 {
				p, ok := b.portWord("sorry_server port", n.Args[1])
				if !ok {
					return
				}
				s.Port = p
			}
			if vs.SorryServer != nil {
				s.Method = vs.SorryServer.Method
			}
			vs.SorryServer = s
		}},
		flagKW("sorry_server_inhibit", "Keep the sorry server with weight 0 instead of removing it.", func(v *VirtualServer) *bool { return &v.SorryServerInhibit }, 0),
		{Name: "sorry_server_lvs_method", Status: Supported, Doc: "Forwarding method of the sorry server (default: the service's).", Parse: func(b *builder, n *Node, vs *VirtualServer) {
			b.noBlock(n)
			if m, ok := b.methodArg(n); ok {
				if vs.SorryServer == nil {
					vs.SorryServer = &SorryServer{Pos: n.Key.Pos}
				}
				vs.SorryServer.Method = m
			}
		}},
		{Name: "inhibit_on_failure", Status: Supported, Doc: "On failure set the weight to 0 instead of removing the server.", Parse: func(b *builder, n *Node, vs *VirtualServer) {
			b.noBlock(n)
			if x, ok := b.boolArg(n); ok {
				vs.InhibitOnFailure = x
				vs.has |= fInhibit
			}
		}},
		boolKW("alpha", "Start with every real server down until checked.", func(v *VirtualServer) *bool { return &v.Alpha }, fAlpha),
		boolKW("omega", "Run quorum and real server notifies at shutdown.", func(v *VirtualServer) *bool { return &v.Omega }, 0),
		flagKW("ha_suspend", "Suspend checks while the VIP is not on this host.", func(v *VirtualServer) *bool { return &v.HASuspend }, 0),
		strKW("virtualhost", "Default Host header of HTTP_GET/SSL_GET.", "a host name", func(v *VirtualServer) *string { return &v.Virtualhost }, fVirtualhost),
		optBoolKW("smtp_alert", "E-mail on quorum changes.", func(v *VirtualServer) *OptBool { return &v.SMTPAlert }),
		strKW("laddr_group_name", "DPVS: local_address_group used as SNAT sources of an FNAT service.", "a group name", func(v *VirtualServer) *string { return &v.LaddrGroupName }, 0),
		{Name: "ip_family", Status: Supported, Doc: "inet or inet6, for fwmark services.", Parse: func(b *builder, n *Node, vs *VirtualServer) {
			b.noBlock(n)
			if f, ok := choiceArg(b, n, "inet or inet6", false, map[string]inet.Family{"inet": inet.IPv4, "inet6": inet.IPv6}); ok {
				vs.Family = f
				vs.has |= fIPFamily
			}
		}},
		schedFlagKW("flag-1"), schedFlagKW("flag-2"), schedFlagKW("flag-3"),
		schedFlagKW("sh-port"), schedFlagKW("sh-fallback"), schedFlagKW("mh-port"), schedFlagKW("mh-fallback"),
		flagKW("ops", "One-packet scheduling for UDP.", func(v *VirtualServer) *bool { return &v.OPS }, 0),
		ignored[VirtualServer]("snmp_name", "Name in SNMP output."),
		{Name: "real_server", Status: Supported, Doc: "A real server block: IP [PORT] { ... }.", Parse: func(b *builder, n *Node, vs *VirtualServer) {
			if rs := b.realServer(n, vs); rs != nil {
				vs.RealServers = append(vs.RealServers, rs)
			}
		}},
	}
	vsRows = append(vsRows, bgpAnnounceKW("vigil extension: NAME [community A:B]... [med N]: announce the service's address (/32 or /128) through bgp_instance NAME while the service has its quorum.", true, func(v *VirtualServer) *[]*BGPAnnounce { return &v.BGPAnnounce }))
	vsRows = append(vsRows, timerRows(func(v *VirtualServer) *checkTimers { return vsTimers(v) })...)
	vsTable = newTable("virtual_server IP [PORT] | fwmark N | group NAME { }", "A load-balanced service and its real servers.", vsRows)

	rsRows := []keyword[RealServer]{
		intKW("weight", "Relative weight, 0..2147483647 (default 1).", 0, 1<<31-1, func(r *RealServer) *int { return &r.Weight }, fWeight),
		methodKW("lvs_method", "Forwarding method of this server (default: the service's).", func(r *RealServer) *Method { return &r.Method }),
		{Name: "inhibit_on_failure", Status: Supported, Doc: "On failure set the weight to 0 instead of removing the server.", Parse: func(b *builder, n *Node, r *RealServer) {
			b.noBlock(n)
			if x, ok := b.boolArg(n); ok {
				r.InhibitOnFailure = x
				r.has |= fInhibit
			}
		}},
		cmdKW("notify_up", "Script run when the server comes up.", func(r *RealServer) **Command { return &r.NotifyUp }),
		cmdKW("notify_down", "Script run when the server goes down.", func(r *RealServer) **Command { return &r.NotifyDown }),
		{Name: "uthreshold", Status: Supported, Doc: "Maximum connections to the server.", Parse: func(b *builder, n *Node, r *RealServer) {
			b.noBlock(n)
			if v, ok := b.intArg(n, 0, 1<<32-1); ok {
				r.UThreshold = uint32(v)
			}
		}},
		{Name: "lthreshold", Status: Supported, Doc: "Connections below which an overloaded server is used again.", Parse: func(b *builder, n *Node, r *RealServer) {
			b.noBlock(n)
			if v, ok := b.intArg(n, 0, 1<<32-1); ok {
				r.LThreshold = uint32(v)
			}
		}},
		strKW("virtualhost", "Default Host header of this server's HTTP checks.", "a host name", func(r *RealServer) *string { return &r.Virtualhost }, fVirtualhost),
		optBoolKW("smtp_alert", "E-mail on state changes.", func(r *RealServer) *OptBool { return &r.SMTPAlert }),
		boolKW("alpha", "Start down until checked.", func(r *RealServer) *bool { return &r.Alpha }, fAlpha),
		ignored[RealServer]("snmp_name", "Name in SNMP output."),
	}
	rsRows = append(rsRows, timerRows(func(r *RealServer) *checkTimers { return rsTimers(r) })...)
	for _, ct := range []CheckerType{CheckTCP, CheckHTTP, CheckSSL, CheckMisc, CheckDNS, CheckUDP, CheckPing, CheckSMTP, CheckFile} {
		ct := ct
		rsRows = append(rsRows, keyword[RealServer]{Name: ct.String(), Status: Supported, Doc: "A " + ct.String() + " health checker block.", Parse: func(b *builder, n *Node, r *RealServer) {
			if c := b.checker(n, ct); c != nil {
				r.Checkers = append(r.Checkers, c)
			}
		}})
	}
	rsRows = append(rsRows, keyword[RealServer]{Name: "DR_PATH_CHECK", Status: Supported, Doc: "vigil extension, lb_kind DR (IPv4) only: up while a TCP SYN for VIP:port sent to the real server's MAC from an unused address of the subnet (as a forwarded client frame, whose source is not the director's) reaches it, seen as the real server's ARP request for that address. Catches anti-spoofing filters (libvirt clean-traffic, cloud source/destination checks) that drop forwarded frames while other checks pass. Takes the common options; connect_timeout bounds the wait for the answer. Needs root. keepalived does not know it.", Parse: func(b *builder, n *Node, r *RealServer) {
		if c := b.checker(n, CheckDRPath); c != nil {
			r.Checkers = append(r.Checkers, c)
		}
	}})
	rsRows = append(rsRows, keyword[RealServer]{Name: "BFD_CHECK", Status: Supported, Doc: "BFD checker: name NAME (a bfd_instance); the server is down while that session is not Up.", Parse: bfdCheck})
	rsTable = newTable("real_server IP [PORT] { } (in virtual_server)", "A backend of a virtual server.", rsRows)

	common := []keyword[Checker]{
		addrKW("connect_ip", "Address to check (default: the real server's).", func(c *Checker) *netip.Addr { return &c.ConnectIP }, fConnectIP),
		{Name: "connect_port", Status: Supported, Doc: "Port to check (default: the real server's).", Parse: func(b *builder, n *Node, c *Checker) {
			b.noBlock(n)
			if w, ok := b.arg(n, "a port 1..65535"); ok {
				if p, ok := b.portWord("connect_port", w); ok {
					c.ConnectPort = p
					c.has |= fConnectPort
				}
			}
		}},
		addrKW("bindto", "Source address of checks.", func(c *Checker) *netip.Addr { return &c.BindTo }, 0),
		strKW("bind_if", "Interface of checks (needed for link-local bindto).", "an interface name", func(c *Checker) *string { return &c.BindIf }, 0),
		{Name: "bind_port", Status: Supported, Doc: "Source port of checks.", Parse: func(b *builder, n *Node, c *Checker) {
			b.noBlock(n)
			if w, ok := b.arg(n, "a port 1..65535"); ok {
				if p, ok := b.portWord("bind_port", w); ok {
					c.BindPort = p
				}
			}
		}},
		{Name: "fwmark", Status: Supported, Doc: "fwmark set on check packets.", Parse: func(b *builder, n *Node, c *Checker) {
			b.noBlock(n)
			if v, ok := b.intArg(n, 0, 1<<32-1); ok {
				c.Fwmark = uint32(v)
			}
		}},
		boolKW("alpha", "Start down until checked.", func(c *Checker) *bool { return &c.Alpha }, fAlpha),
		optBoolKW("log_all_failures", "Log every failure while up.", func(c *Checker) *OptBool { return &c.LogAllFailures }),
	}
	common = append(common, timerRows(func(c *Checker) *checkTimers { return checkerTimers(c) })...)
	checkerTable = newTable("CHECKER { } (TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK, DNS_CHECK, UDP_CHECK, PING_CHECK, SMTP_CHECK, FILE_CHECK in real_server)", "Options every checker takes (FILE_CHECK takes none of them).", common)

	urlTable = newTable("url { } (in HTTP_GET, SSL_GET)", "One URL to fetch.", []keyword[URLCheck]{
		strKW("path", "Path to request.", "a path", func(u *URLCheck) *string { return &u.Path }, 0),
		{Name: "digest", Status: Supported, Doc: "MD5 of the expected body, in hex.", Parse: func(b *builder, n *Node, u *URLCheck) {
			b.noBlock(n)
			w, ok := b.arg(n, "an MD5 digest")
			if !ok {
				return
			}
			if _, err := hex.DecodeString(w.Text); err != nil || len(w.Text) != 32 {
				b.errorf(w.Pos, "digest %q: expected 32 hexadecimal digits", w.Text)
				return
			}
			u.Digest = keep(strings.ToLower(w.Text))
		}},
		{Name: "status_code", Status: Supported, Doc: "Accepted statuses: codes and ranges, e.g. `200-299 404` (default 200-299).", Parse: func(b *builder, n *Node, u *URLCheck) {
			b.noBlock(n)
			if len(n.Args) == 0 {
				b.errorf(n.Key.Pos, "status_code: missing value: expected codes or ranges 100..999")
			}
			for _, w := range n.Args {
				lo, hi, isRange := strings.Cut(w.Text, "-")
				l, ok1 := parseInt(lo)
				h := l
				ok2 := true
				if isRange {
					h, ok2 = parseInt(hi)
				}
				if !ok1 || !ok2 || l < 100 || h > 599 || l > h {
					b.errorf(w.Pos, "status_code %q: expected an HTTP status 100..599 or a range like 200-299", w.Text)
					continue
				}
				u.StatusCodes = append(u.StatusCodes, StatusRange{int(l), int(h)})
			}
		}},
		strKW("virtualhost", "Host header for this URL.", "a host name", func(u *URLCheck) *string { return &u.Virtualhost }, 0),
		strKW("regex", "Regular expression the body must match.", "a regular expression", func(u *URLCheck) *string { return &u.Regex }, 0),
		flagKW("regex_no_match", "The check fails when the regex matches.", func(u *URLCheck) *bool { return &u.RegexNoMatch }, 0),
		ignored[URLCheck]("regex_options", "PCRE2 options of regex."),
		ignored[URLCheck]("regex_stack", "PCRE2 JIT stack sizes."),
		intKW("regex_min_offset", "Offset into the body where regex matching starts.", 0, 1<<31-1, func(u *URLCheck) *int { return &u.RegexMinOffset }, 0),
		intKW("regex_max_offset", "Largest offset into the body where a regex match may start (0: anywhere).", 0, 1<<31-1, func(u *URLCheck) *int { return &u.RegexMaxOffset }, 0),
	})

	httpRows := []keyword[Checker]{
		{Name: "url", Status: Supported, Doc: "A url block; several are allowed.", Parse: func(b *builder, n *Node, c *Checker) {
			if !b.needBlock(n) {
				return
			}
			u := &URLCheck{Pos: n.Key.Pos}
			urlTable.run(b, n.Block, u)
			if u.Path == "" {
				b.errorf(n.Key.Pos, "url has no path: ignored")
				return
			}
			if len(u.StatusCodes) == 0 {
				u.StatusCodes = []StatusRange{{200, 299}}
			}
			if u.Regex != "" {
				// keepalived compiles with PCRE2; vigil runs Go's RE2, so a
				// pattern RE2 cannot run (look-around, back-references) is
				// refused here rather than failing every check.
				// keepalived -t accepts any pattern (PCRE2 compiles it at
				// run time), so this is a warning and the check fails.
				if _, err := regexp.Compile(u.Regex); err != nil {
					b.warnf(u.Pos, "url %s: regex %q: %v: vigil uses Go's RE2 syntax (no look-around or back-references), so this URL's check always fails", u.Path, u.Regex, err)
				}
			} else if u.RegexNoMatch || u.RegexMinOffset != 0 || u.RegexMaxOffset != 0 {
				b.warnf(u.Pos, "url %s: regex_no_match and regex offsets have no effect without regex", u.Path)
			}
			if u.RegexMaxOffset != 0 && u.RegexMaxOffset < u.RegexMinOffset {
				b.warnf(u.Pos, "url %s: regex_max_offset %d is below regex_min_offset %d: the regex can never match", u.Path, u.RegexMaxOffset, u.RegexMinOffset)
			}
			c.HTTP.URLs = append(c.HTTP.URLs, u)
		}},
		{Name: "http_protocol", Status: Supported, Doc: "1.0 (default), 1.0C or 1.1.", Parse: func(b *builder, n *Node, c *Checker) {
			b.noBlock(n)
			if p, ok := choiceArg(b, n, "1.0, 1.0C or 1.1", true, map[string]string{"1.0": "1.0", "1.0C": "1.0C", "1.1": "1.1"}); ok {
				c.HTTP.Protocol = p
			}
		}},
		strKW("virtualhost", "Host header (default: the real or virtual server's).", "a host name", func(c *Checker) *string { return &c.HTTP.Virtualhost }, 0),
		boolKW("fast_recovery", "Check all URLs at once when recovering.", func(c *Checker) *bool { return &c.HTTP.FastRecovery }, 0),
		flagKW("enable_sni", "Send SNI in the TLS handshake (SSL_GET).", func(c *Checker) *bool { return &c.HTTP.EnableSNI }, 0),
	}
	checkerTables = map[string]*table[Checker]{}
	checkerTables["HTTP_GET"] = newTable("HTTP_GET { }, SSL_GET { }", "HTTP(S) checks of one or more URLs.", httpRows)
	checkerTables["SSL_GET"] = checkerTables["HTTP_GET"]
	checkerTables["MISC_CHECK"] = newTable("MISC_CHECK { }", "Runs a program; exit 0 is up.", []keyword[Checker]{
		{Name: "misc_path", Status: Supported, Doc: "Command to run (quoted to include arguments).", Parse: func(b *builder, n *Node, c *Checker) {
			b.noBlock(n)
			c.Misc.Path = b.wholeCommand(n)
		}},
		{Name: "misc_timeout", Status: Supported, Doc: "Seconds before the program is killed (default delay_loop).", Parse: func(b *builder, n *Node, c *Checker) {
			b.noBlock(n)
			if v, ok := b.intArg(n, 1, 1<<31-1); ok {
				c.Misc.Timeout = time.Duration(v) * time.Second
				c.has |= fMiscTimeout
			}
		}},
		flagKW("misc_dynamic", "Exit codes 2..255 set the weight to code-2.", func(c *Checker) *bool { return &c.Misc.Dynamic }, 0),
		{Name: "user", Status: Supported, Doc: "User and optional group to run as.", Parse: func(b *builder, n *Node, c *Checker) {
			b.noBlock(n)
			if u, ok := b.strArg(n, "a user name"); ok {
				if c.Misc.Path == nil {
					c.Misc.Path = &Command{Pos: n.Key.Pos}
				}
				c.Misc.Path.User = u
				if len(n.Args) > 1 {
					c.Misc.Path.Group = n.Args[1].Text
				}
			}
		}},
	})
	checkerTables["DNS_CHECK"] = newTable("DNS_CHECK { }", "Sends a DNS query over UDP.", []keyword[Checker]{
		{Name: "type", Status: Supported, Doc: "Query type: A NS CNAME SOA MX TXT AAAA (default SOA).", Parse: func(b *builder, n *Node, c *Checker) {
			b.noBlock(n)
			w, ok := b.arg(n, "a DNS type")
			if !ok {
				return
			}
			switch t := strings.ToUpper(w.Text); t {
			case "A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA":
				c.DNS.Type = t
			default:
				b.errorf(w.Pos, "DNS_CHECK type %q: expected A, NS, CNAME, SOA, MX, TXT or AAAA", w.Text)
			}
		}},
		strKW("name", "Name to query (default \".\").", "a domain name", func(c *Checker) *string { return &c.DNS.Name }, 0),
	})
	checkerTables["UDP_CHECK"] = newTable("UDP_CHECK { }", "Sends a datagram; ICMP errors mean down.", []keyword[Checker]{
		{Name: "payload", Status: Supported, Doc: "Data to send, in hex (default random).", Parse: func(b *builder, n *Node, c *Checker) {
			b.noBlock(n)
			p, _, ok := b.hexArg(n, false)
			if ok {
				c.UDP.Payload = p
			}
		}},
		{Name: "require_reply", Status: Supported, Doc: "A reply is needed; with hex, it must match (X is a wildcard nibble).", Parse: func(b *builder, n *Node, c *Checker) {
			b.noBlock(n)
			c.UDP.RequireReply = true
			if len(n.Args) > 0 {
				p, m, ok := b.hexArg(n, true)
				if ok {
					c.UDP.ReplyPattern, c.UDP.ReplyMask = p, m
				}
			}
		}},
		intKW("min_reply_length", "Shortest acceptable reply (default 0).", 0, 65535, func(c *Checker) *int { return &c.UDP.MinReplyLength }, 0),
		intKW("max_reply_length", "Longest acceptable reply (default 255).", 0, 65535, func(c *Checker) *int { return &c.UDP.MaxReplyLength }, 0),
	})
	checkerTables["SMTP_CHECK"] = newTable("SMTP_CHECK { }", "Up when the server greets with 220 and answers HELO with 250 (RFC 5321), within connect_timeout; then QUIT. The port defaults to the real server's, else 25.", []keyword[Checker]{
		strKW("helo_name", "Name sent in HELO (default: this host's name).", "a name", func(c *Checker) *string { return &c.SMTP.HeloName }, 0),
		{Name: "host", Status: Supported, Doc: "Deprecated: a block with connect options for another target.", Parse: func(b *builder, n *Node, c *Checker) {
			if !b.needBlock(n) {
				return
			}
			h := &Checker{Pos: n.Key.Pos, Type: CheckSMTP}
			checkerTable.run(b, n.Block, h)
			c.SMTP.Hosts = append(c.SMTP.Hosts, h)
		}},
	})
	checkerTables["FILE_CHECK"] = newTable("FILE_CHECK { }", "Follows a track_file's number, read every second (keepalived uses inotify). Weight 0: non-zero is down; otherwise value × weight (negated by reverse) added to the real server's weight: below 0 is down.", []keyword[Checker]{
		strKW("track_file", "Name of the track_file block.", "a track_file name", func(c *Checker) *string { return &c.File.TrackFile }, 0),
		flagKW("dynamic", "Add the weighted value to the real server's weight.", func(c *Checker) *bool { return &c.File.Dynamic }, 0),
		{Name: "weight", Status: Supported, Doc: "Multiplier of the value read [reverse].", Parse: func(b *builder, n *Node, c *Checker) {
			b.noBlock(n)
			if v, ok := b.intArg(n, -2147483647, 2147483647); ok {
				c.File.Weight, c.File.WeightSet = v, true
			}
			if len(n.Args) > 1 && n.Args[1].Text == "reverse" {
				c.File.Reverse = true
			}
		}},
	})

	sslTable = newTable("SSL { }", "TLS client settings of SSL_GET checkers.", []keyword[SSLConfig]{
		sslKW("password", "Password of the key; once.", "a password", func(s *SSLConfig) *string { return &s.Password }),
		sslKW("ca", "CA file; once.", "a file path", func(s *SSLConfig) *string { return &s.CA }),
		sslKW("certificate", "Client certificate file; once.", "a file path", func(s *SSLConfig) *string { return &s.Certificate }),
		sslKW("key", "Client key file; once.", "a file path", func(s *SSLConfig) *string { return &s.Key }),
	})
}

// sslKW is a keyword of the SSL block. keepalived 2.2.7 reports a second
// password, ca, certificate or key as an error (and uses the later one):
// two key files in one block are a mistake, not a choice.
func sslKW(name, doc, what string, field func(*SSLConfig) *string) keyword[SSLConfig] {
	kw := strKW(name, doc, what, field, 0)
	parse := kw.Parse
	kw.Parse = func(b *builder, n *Node, s *SSLConfig) {
		if *field(s) != "" {
			b.errorf(n.Key.Pos, "SSL: a second %s (the first was %q): keepalived refuses to repeat it; keep one", name, *field(s))
		}
		parse(b, n, s)
	}
	return kw
}

// vsTimers and friends give the tables a common view of the inherited
// timer fields of each level.
func vsTimers(v *VirtualServer) *checkTimers { return &v.timers }
func rsTimers(r *RealServer) *checkTimers    { return &r.timers }
func checkerTimers(c *Checker) *checkTimers  { return &c.timers }

func leadingOnes(a netip.Addr) int {
	n := 0
	for _, by := range a.As4() {
		for m := byte(0x80); m != 0 && by&m != 0; m >>= 1 {
			n++
		}
		if by != 0xff {
			break
		}
	}
	return n
}

func maskBits(a netip.Addr) int {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := 0
	for v&0x80000000 != 0 {
		n++
		v <<= 1
	}
	if v != 0 {
		return -1
	}
	return n
}

// hexArg joins the arguments and decodes the free-form hex keepalived
// accepts: blank-separated groups, an odd group gets a leading 0. With
// wild, X/x nibbles are wildcards (their mask bits are cleared).
func (b *builder) hexArg(n *Node, wild bool) (data, mask []byte, ok bool) {
	for _, w := range n.Args {
		t := w.Text
		if len(t)%2 == 1 {
			t = "0" + t
		}
		for i := 0; i < len(t); i += 2 {
			var by, m byte
			for j := 0; j < 2; j++ {
				c := t[i+j]
				var v byte
				switch {
				case '0' <= c && c <= '9':
					v = c - '0'
				case 'a' <= c && c <= 'f':
					v = c - 'a' + 10
				case 'A' <= c && c <= 'F':
					v = c - 'A' + 10
				case wild && (c == 'x' || c == 'X'):
					by, m = by<<4, m<<4
					continue
				default:
					b.errorf(w.Pos, "%s %q: expected hexadecimal digits", n.Key.Text, w.Text)
					return nil, nil, false
				}
				by, m = by<<4|v, m<<4|0xf
			}
			data, mask = append(data, by), append(mask, m)
		}
	}
	return data, mask, true
}
