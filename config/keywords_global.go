package config

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

var globalTable *table[Global]

// maxGarp bounds GARP timers: keepalived takes any unsigned number of
// seconds there.
const maxGarp = 4294967295 * time.Second

// looksNumeric reports whether s is made of digits and dots only, so that
// it cannot be a host name.
func looksNumeric(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' {
			return false
		}
	}
	return s != ""
}

func fifoKW(name, doc string, field func(*Global) **Fifo) keyword[Global] {
	return keyword[Global]{Name: name, Status: Supported, Doc: doc, Parse: func(b *builder, n *Node, g *Global) {
		b.noBlock(n)
		w, ok := b.arg(n, "a FIFO path")
		if !ok {
			return
		}
		f := *field(g)
		if f == nil {
			f = &Fifo{}
			*field(g) = f
		}
		f.Pos, f.Path = n.Key.Pos, w.Text
		if len(n.Args) > 1 {
			f.User = n.Args[1].Text
		}
		if len(n.Args) > 2 {
			f.Group = n.Args[2].Text
		}
	}}
}

func fifoScriptKW(name, doc string, field func(*Global) **Fifo) keyword[Global] {
	return keyword[Global]{Name: name, Status: Supported, Doc: doc, Parse: func(b *builder, n *Node, g *Global) {
		b.noBlock(n)
		c := b.commandArg(n)
		if c == nil {
			return
		}
		f := *field(g)
		if f == nil {
			f = &Fifo{Pos: n.Key.Pos}
			*field(g) = f
		}
		f.Script = c
	}}
}

// garpDurKW is a GARP/NA pacing interval: keepalived 2.2.7 refuses 0 (its
// range starts at 1 µs; leaving the keyword out is how to ask for no gap).
func garpDurKW(name, doc string, field func(*Garp) *time.Duration, max time.Duration) keyword[Global] {
	return durKW(name, doc, time.Microsecond, max, func(g *Global) *time.Duration { return field(&g.Garp) }, 0)
}

func garpIntKW(name, doc string, field func(*Garp) *int, min int64) keyword[Global] {
	return intKW(name, doc, min, 1<<31-1, func(g *Global) *int { return field(&g.Garp) }, 0)
}

func mcastGroupKW(name, doc string, v6 bool, field func(*Global) *netip.Addr) keyword[Global] {
	return keyword[Global]{Name: name, Status: Supported, Doc: doc, Parse: func(b *builder, n *Node, g *Global) {
		b.noBlock(n)
		a, ok := b.addrArg(n)
		if !ok {
			return
		}
		if !a.IsMulticast() || a.Is6() != v6 {
			fam := "IPv4"
			if v6 {
				fam = "IPv6"
			}
			b.errorf(n.Args[0].Pos, "%s %q: expected an %s multicast address", n.Key.Text, n.Args[0].Text, fam)
			return
		}
		*field(g) = a
	}}
}

func init() {
	globalTable = newTable("global_defs { }", "Settings for the whole daemon.", []keyword[Global]{
		// identity and notification
		strKW("router_id", "Name of this host in notifications (default: the host name).", "a name", func(g *Global) *string { return &g.RouterID }, 0),
		{Name: "notification_email", Status: Supported, Doc: "Block of addresses that receive e-mail alerts.", Parse: func(b *builder, n *Node, g *Global) {
			emails, _ := b.stringList(n)
			if n.HasBlock && len(emails) == 0 {
				b.errorf(n.Key.Pos, "notification_email: empty block: expected e-mail addresses")
			}
			g.NotificationEmail = append(g.NotificationEmail, emails...)
		}},
		strKW("notification_email_from", "Sender address of e-mail alerts.", "an e-mail address", func(g *Global) *string { return &g.NotificationEmailFrom }, 0),
		{Name: "smtp_server", Status: Supported, Doc: "SMTP relay (address or name) and optional port (default 25).", Parse: func(b *builder, n *Node, g *Global) {
			b.noBlock(n)
			w, ok := b.arg(n, "an address or host name")
			if !ok {
				return
			}
			if _, ok := parseAddr(w.Text); !ok {
				if looksNumeric(w.Text) {
					b.errorf(w.Pos, "smtp_server %q: expected an IP address or a host name", w.Text)
					return
				}
				// keepalived resolves the name while reading the config:
				// without working DNS `keepalived -t` fails.
				if b.env.HostResolves != nil && !b.env.HostResolves(w.Text) {
					b.errorf(w.Pos, "smtp_server %q does not resolve to an address", w.Text)
					return
				}
			}
			g.SMTPServer, g.SMTPPort = keep(w.Text), 25
			if len(n.Args) > 1 {
				if p, ok := b.portWord("smtp_server port", n.Args[1]); ok {
					g.SMTPPort = p
				}
			}
		}},
		strKW("smtp_helo_name", "Name sent in SMTP HELO (default: the host name).", "a name", func(g *Global) *string { return &g.SMTPHeloName }, 0),
		durKW("smtp_connect_timeout", "Timeout connecting to the SMTP server (default 30 s).", time.Second, 3600*time.Second, func(g *Global) *time.Duration { return &g.SMTPConnectTimeout }, 0),
		optBoolKW("smtp_alert", "Default for sending e-mail alerts everywhere.", func(g *Global) *OptBool { return &g.SMTPAlert }),
		optBoolKW("smtp_alert_vrrp", "Default for e-mail alerts of VRRP instances and groups.", func(g *Global) *OptBool { return &g.SMTPAlertVRRP }),
		optBoolKW("smtp_alert_checker", "Default for e-mail alerts of health checkers.", func(g *Global) *OptBool { return &g.SMTPAlertChecker }),
		boolKW("checker_log_all_failures", "Log every failed check, not only state changes.", func(g *Global) *bool { return &g.CheckerLogAllFails }, 0),
		flagKW("no_email_faults", "Do not send e-mail for FAULT transitions.", func(g *Global) *bool { return &g.NoEmailFaults }, 0),
		flagKW("no_checker_emails", "Only e-mail when a real server is added or removed.", func(g *Global) *bool { return &g.NoCheckerEmail }, 0),
		flagKW("rs_init_notifies", "Run real server notifies for the initial state at startup.", func(g *Global) *bool { return &g.RSInitNotifies }, 0),

		// scripts
		{Name: "script_user", Status: Supported, Doc: "User (and group) that scripts run as by default.", Parse: func(b *builder, n *Node, g *Global) {
			b.noBlock(n)
			if s, ok := b.strArg(n, "a user name"); ok {
				if b.env.UserExists != nil && !b.env.UserExists(s) {
					b.errorf(n.Args[0].Pos, "script_user %s does not exist", s)
				}
				g.ScriptUser = keep(s)
				if len(n.Args) > 1 {
					g.ScriptGroup = keep(n.Args[1].Text)
					if b.env.GroupExists != nil && !b.env.GroupExists(g.ScriptGroup) {
						b.errorf(n.Args[1].Pos, "script_user group %s does not exist", g.ScriptGroup)
					}
				}
			}
		}},
		flagKW("enable_script_security", "Refuse to run scripts as root when a non-root user could change them.", func(g *Global) *bool { return &g.EnableScriptSecurity }, 0),
		cmdKW("startup_script", "Script run once before the daemon starts its work.", func(g *Global) **Command { return &g.StartupScript }),
		durKW("startup_script_timeout", "Time allowed for startup_script (default 10 s).", time.Second, 1000*time.Second, func(g *Global) *time.Duration { return &g.StartupTimeout }, 0),
		cmdKW("shutdown_script", "Script run once when the daemon has stopped.", func(g *Global) **Command { return &g.ShutdownScript }),
		durKW("shutdown_script_timeout", "Time allowed for shutdown_script (default 10 s).", time.Second, 1000*time.Second, func(g *Global) *time.Duration { return &g.ShutdownTimeout }, 0),
		fifoKW("notify_fifo", "FIFO that receives every notify event, in order.", func(g *Global) **Fifo { return &g.NotifyFifo }),
		fifoScriptKW("notify_fifo_script", "Script that reads notify_fifo.", func(g *Global) **Fifo { return &g.NotifyFifo }),
		fifoKW("vrrp_notify_fifo", "FIFO that receives VRRP notify events.", func(g *Global) **Fifo { return &g.VRRPNotifyFifo }),
		fifoScriptKW("vrrp_notify_fifo_script", "Script that reads vrrp_notify_fifo.", func(g *Global) **Fifo { return &g.VRRPNotifyFifo }),
		fifoKW("lvs_notify_fifo", "FIFO that receives health checker events.", func(g *Global) **Fifo { return &g.LVSNotifyFifo }),
		fifoScriptKW("lvs_notify_fifo_script", "Script that reads lvs_notify_fifo.", func(g *Global) **Fifo { return &g.LVSNotifyFifo }),
		ignoredWith[Global]("fifo_write_vrrp_states_on_reload", "Write current states to the FIFOs on reload.", checkFlag),

		// VRRP defaults
		intKW("vrrp_version", "Default VRRP version, 2 or 3 (IPv6 always uses 3).", 2, 3, func(g *Global) *int { return &g.VRRPVersion }, 0),
		flagKW("vrrp_strict", "Enforce RFC behaviour: no auth, no unicast, accept mode off, state MASTER only for priority 255.", func(g *Global) *bool { return &g.VRRPStrict }, 0),
		flagKW("vrrp_check_unicast_src", "Accept unicast adverts only from configured peers.", func(g *Global) *bool { return &g.VRRPCheckUnicastSrc }, 0),
		flagKW("vrrp_skip_check_adv_addr", "Skip checking the address list of adverts from the current master.", func(g *Global) *bool { return &g.VRRPSkipCheckAdvAddr }, 0),
		mcastGroupKW("vrrp_mcast_group4", "IPv4 multicast group for adverts (default 224.0.0.18).", false, func(g *Global) *netip.Addr { return &g.VRRPMcastGroup4 }),
		mcastGroupKW("vrrp_mcast_group6", "IPv6 multicast group for adverts (default ff02::12).", true, func(g *Global) *netip.Addr { return &g.VRRPMcastGroup6 }),
		wholeSecondsKW("vrrp_garp_master_delay", "Delay of the second GARP burst after becoming master, whole seconds (default 5, 0 none).", func(g *Global) *time.Duration { return &g.Garp.MasterDelay }, 0),
		garpIntKW("vrrp_garp_master_repeat", "GARPs per burst on becoming master (default 5).", func(g *Garp) *int { return &g.MasterRepeat }, 1),
		wholeSecondsKW("vrrp_garp_lower_prio_delay", "Delay of the second burst after a lower priority advert, whole seconds (default vrrp_garp_master_delay).", func(g *Global) *time.Duration { return &g.Garp.LowerPrioDelay }, 0),
		garpIntKW("vrrp_garp_lower_prio_repeat", "GARPs per burst after a lower priority advert (default vrrp_garp_master_repeat; 0 sends none).", func(g *Garp) *int { return &g.LowerPrioRepeat }, 0),
		wholeSecondsKW("vrrp_garp_master_refresh", "Period of GARP refreshes while master, whole seconds (default 0, none).", func(g *Global) *time.Duration { return &g.Garp.MasterRefresh }, 0),
		garpIntKW("vrrp_garp_master_refresh_repeat", "GARPs per refresh (default 1).", func(g *Garp) *int { return &g.MasterRefreshRepeat }, 1),
		garpDurKW("vrrp_garp_interval", "Minimum gap between two gratuitous ARPs on an interface, shared by every instance announcing there, 0.000001 seconds or more (default: no gap; 0 is an error, as in keepalived). The paced ARPs are queued, so they delay no other work; those still queued when the instance leaves MASTER are dropped.", func(g *Garp) *time.Duration { return &g.Interval }, maxGarp),
		garpDurKW("vrrp_gna_interval", "Minimum gap between two unsolicited NAs on an interface, as vrrp_garp_interval is for ARPs (the two are paced independently), 0.000001 seconds or more (default: no gap; 0 is an error, as in keepalived).", func(g *Garp) *time.Duration { return &g.NAInterval }, maxGarp),
		boolKW("vrrp_min_garp", "Send one GARP/NA on becoming master and no second burst.", func(g *Global) *bool { return &g.VRRPMinGarp }, 0),
		{Name: "vrrp_garp_extra_if", Status: Supported, Doc: "Period of GARPs on VIP interfaces other than the instance's (`all` for every interface).", Parse: func(b *builder, n *Node, g *Global) {
			b.noBlock(n)
			args := n.Args
			if len(args) > 0 && args[0].Text == "all" {
				g.VRRPGarpExtraIfAll = true
				args = args[1:]
			}
			if len(args) == 0 {
				b.errorf(n.Key.Pos, "%s: missing value: expected seconds 0..86400", n.Key.Text)
				return
			}
			if d, ok := b.durWord(n.Key.Text, args[0], 0, 86400*time.Second); ok {
				g.VRRPGarpExtraIf = d
			}
		}},
		intKW("vrrp_down_timer_adverts", "Default number of advert intervals in the master down timer (1..100, default 3).", 1, 100, func(g *Global) *int { return &g.VRRPDownTimerAdverts }, 0),
		optBoolKW("vrrp_lower_prio_no_advert", "As master, do not answer a lower priority advert with an advert.", func(g *Global) *OptBool { return &g.VRRPLowerPrioNoAdvert }),
		optBoolKW("vrrp_higher_prio_send_advert", "As master, send an advert before yielding to a higher priority.", func(g *Global) *OptBool { return &g.VRRPHigherPrioSendAdv }),
		boolKW("vrrp_notify_priority_changes", "Send priority changes to the notify FIFOs.", func(g *Global) *bool { return &g.VRRPNotifyPriority }, 0),
		durKW("vrrp_startup_delay", "Delay before instances start, for slow links at boot.", 0, 3600*time.Second, func(g *Global) *time.Duration { return &g.VRRPStartupDelay }, 0),
		{Name: "max_auto_priority", Status: Supported, Doc: "Highest SCHED_RR priority (1..99; no value: 99; 0 or -1: off) vigil's threads (keepalived: the VRRP process) are raised to, one step at a time, each time the event loop wakes min_auto_priority_delay late.", Parse: func(b *builder, n *Node, g *Global) {
			if len(n.Args) == 0 {
				g.MaxAutoPriority = 99
				return
			}
			if v, ok := b.intArg(n, -1, 99); ok {
				g.MaxAutoPriority = v
			}
		}},
		strKW("default_interface", "Interface for static addresses without dev (default eth0).", "an interface name", func(g *Global) *string { return &g.DefaultInterface }, 0),
		{Name: "dynamic_interfaces", Status: Supported, Doc: "Allow interfaces that do not exist yet; the only option is allow_if_changes (keepalived refuses any other).", Parse: func(b *builder, n *Node, g *Global) {
			b.noBlock(n)
			if len(n.Args) > 0 && n.Args[0].Text != "allow_if_changes" {
				b.errorf(n.Args[0].Pos, "dynamic_interfaces %q: expected no option or allow_if_changes", n.Args[0].Text)
			}
			g.DynamicInterfaces = true
		}},
		strKW("vmac_prefix", "Prefix of generated VMAC interface names (default vrrp).", "a name", func(g *Global) *string { return &g.VmacPrefix }, 0),
		strKW("vmac_addr_prefix", "Prefix of VMAC names for VIPs on other interfaces.", "a name", func(g *Global) *string { return &g.VmacAddrPrefix }, 0),

		// firewall
		{Name: "nftables", Status: Ignored, Doc: "Table keepalived would create for no_accept; vigil manages its own `vigil` tables.", Parse: func(b *builder, n *Node, g *Global) {
			g.Nftables = "keepalived"
			if len(n.Args) > 0 {
				g.Nftables = n.Args[0].Text
			}
		}},
		ignoredWith[Global]("nftables_priority", "Priority of keepalived's nftables chains.", checkInt(-2147483648, 2147483647)),
		ignoredWith[Global]("nftables_counters", "Counters in keepalived's nftables rules.", checkFlag),
		ignoredWith[Global]("nftables_ifindex", "Interface indexes in keepalived's nftables sets.", checkFlag),
		ignoredWith[Global]("nftables_ipvs", "nftables table for virtual server group fwmarks.", checkAny),
		ignoredWith[Global]("nftables_ipvs_priority", "Priority of that table's chains.", checkInt(-2147483648, 2147483647)),
		ignoredWith[Global]("nftables_ipvs_start_fwmark", "First fwmark used for virtual server groups.", checkInt(1, 4294967295)),
		rejected[Global]("vrrp_iptables", "iptables is not available (keepalived 2.2.7 reports the same error): use nftables."),
		rejected[Global]("vrrp_ipsets", "ipsets are not available (keepalived 2.2.7 reports the same error): use nftables."),
		ignoredWith[Global]("disable_local_igmp", "Turn off IGMP reports for link-local groups.", checkFlag),

		// LVS globals
		{Name: "lvs_sync_daemon", Status: Supported, Doc: "INTERFACE VRRP_INSTANCE [id N] [maxlen N] [port N] [ttl N] [group IP]: sync NAT and FNAT connections between directors over INTERFACE; the MASTER of VRRP_INSTANCE sends, the others keep a copy they install when they take over (defaults: id = the instance's VRID, port 8848, ttl 1, maxlen from the MTU; the packets go to the instance's unicast peers if it has them on INTERFACE, else to group, default 224.0.0.81). See docs/operations.md, \"Connection sync\".", Parse: parseSyncDaemon},
		{Name: "lvs_sync_auth_key", Status: Supported, Doc: "Vigil extension: KEY (at least 16 characters) authenticating every lvs_sync_daemon packet with HMAC-SHA256; a packet without the right MAC is counted and dropped. Both directors need the same key. Without it the sync is confined to its interface only.", Parse: func(b *builder, n *Node, g *Global) {
			b.noBlock(n)
			if s, ok := b.strArg(n, "a key of at least 16 characters"); ok {
				b.setSyncAuth(n, g, []byte(s), "")
			}
		}},
		{Name: "lvs_sync_auth_key_file", Status: Supported, Doc: "Vigil extension: PATH of a file holding the lvs_sync_auth_key (one line; a trailing newline is dropped), so that the key stays out of keepalived.conf; it is read at every (re)load and should be readable by root only.", Parse: func(b *builder, n *Node, g *Global) {
			b.noBlock(n)
			path, ok := b.strArg(n, "a file name")
			if !ok {
				return
			}
			if b.env.ReadFile == nil {
				b.setSyncAuth(n, g, nil, path)
				return
			}
			data, err := b.env.ReadFile(path)
			if err != nil {
				b.errorf(n.Args[0].Pos, "lvs_sync_auth_key_file %s: %v", path, err)
				return
			}
			key := strings.TrimRight(string(data), "\r\n")
			if strings.ContainsAny(key, "\r\n") {
				b.errorf(n.Args[0].Pos, "lvs_sync_auth_key_file %s: expected the key on one line", path)
				return
			}
			if b.env.Stat != nil {
				if fi, err := b.env.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
					b.warnf(n.Args[0].Pos, "lvs_sync_auth_key_file %s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
				}
			}
			b.setSyncAuth(n, g, []byte(key), path)
		}},
		{Name: "lvs_timeouts", Status: Supported, Doc: "Connection timeouts: tcp SECS, tcpfin SECS, udp SECS (IPVS's defaults 900, 120, 300). vigil applies them to how long a DR director remembers the real server of a flow it forwarded after the flow's last packet (tcpfin: after a FIN or RST), so that a change of the Maglev table does not move the flows in flight. NAT and FNAT connections live in conntrack and follow the host's net.netfilter.nf_conntrack_* timeouts (a warning says so).", Parse: func(b *builder, n *Node, g *Global) {
			b.noBlock(n)
			g.LVSTimeouts.Pos = n.Key.Pos
			if len(n.Args) == 0 {
				b.errorf(n.Key.Pos, "lvs_timeouts: expected tcp|tcpfin|udp SECONDS")
			}
			for i := 0; i < len(n.Args); i++ {
				w := n.Args[i]
				var dst *time.Duration
				switch w.Text {
				case "tcp":
					dst = &g.LVSTimeouts.TCP
				case "tcpfin":
					dst = &g.LVSTimeouts.TCPFin
				case "udp":
					dst = &g.LVSTimeouts.UDP
				default:
					b.errorf(w.Pos, "lvs_timeouts %q: expected tcp|tcpfin|udp SECONDS", w.Text)
					continue
				}
				if i+1 >= len(n.Args) {
					b.errorf(w.Pos, "lvs_timeouts %s: missing seconds", w.Text)
					break
				}
				i++
				if d, ok := b.durWord("lvs_timeouts "+w.Text, n.Args[i], 0, 86400*31*time.Second); ok {
					*dst = d
				}
			}
		}},
		flagKW("lvs_flush", "Remove existing services at startup.", func(g *Global) *bool { return &g.LVSFlush }, 0),
		flagKW("lvs_flush_on_stop", "Remove all services at shutdown.", func(g *Global) *bool { return &g.LVSFlushOnStop }, 0),
		ignoredWith[Global]("lvs_netlink_cmd_rcv_bufs", "Netlink buffer size of the checker.", checkInt(0, 4294967295)),
		ignoredWith[Global]("lvs_netlink_cmd_rcv_bufs_force", "Force that buffer size.", checkBool),
		ignoredWith[Global]("lvs_netlink_monitor_rcv_bufs", "Netlink monitor buffer size of the checker.", checkInt(0, 4294967295)),
		ignoredWith[Global]("lvs_netlink_monitor_rcv_bufs_force", "Force that buffer size.", checkBool),

		// process and host tuning keepalived needs and vigil does not
		ignoredWith[Global]("tmp_config_directory", "Where the config copy of child processes is kept.", checkArg("a directory")),
		ignoredWith[Global]("config_save_dir", "Save configurations around reloads, for debugging.", checkSaveDir),
		ignoredWith[Global]("process_names", "Set default process names.", checkFlag),
		ignoredWith[Global]("process_name", "Name of the parent process.", checkArg("a name")),
		ignoredWith[Global]("vrrp_process_name", "Name of the VRRP child process.", checkArg("a name")),
		ignoredWith[Global]("checker_process_name", "Name of the checker child process.", checkArg("a name")),
		{Name: "bfd_process_name", Status: Supported, Doc: "Name of the BFD process (a child of the daemon) and of each of its threads, as ps, top and /proc/PID/comm show it, as keepalived names its BFD child; the kernel keeps its first 15 bytes. Default vigil_bfd.", Parse: func(b *builder, n *Node, g *Global) {
			b.noBlock(n)
			if w, ok := b.arg(n, "a name"); ok {
				g.BFDProcessName = w.Text
			}
		}},
		{Name: "min_auto_priority_delay", Status: Supported, Doc: "Lateness in microseconds (default 1000000) that makes max_auto_priority raise the priority.", Parse: func(b *builder, n *Node, g *Global) {
			b.noBlock(n)
			if v, ok := b.intArg(n, 1, 10000000); ok {
				g.MinAutoPriorityDelay = time.Duration(v) * time.Microsecond
			}
		}},
		{Name: "vrrp_priority", Status: Supported, Doc: "Nice value (-20..19) of the daemon's threads (keepalived: of the VRRP process); the BFD process has bfd_priority.", Parse: func(b *builder, n *Node, g *Global) {
			b.noBlock(n)
			if v, ok := b.intArg(n, -20, 19); ok {
				g.VRRPPriority, g.VRRPPrioritySet = v, true
			}
		}},
		ignoredWith[Global]("checker_priority", "Nice value of the checker process.", checkInt(-20, 19)),
		{Name: "bfd_priority", Status: Supported, Doc: "Nice value (-20..19) of the BFD process, every thread of it (as keepalived's BFD process); vigil's default is -10, not 0, since a BFD packet that waits for a CPU is a false Down at the peer. vrrp_priority and vrrp_rt_priority apply to the daemon only.", Parse: func(b *builder, n *Node, g *Global) {
			b.noBlock(n)
			if v, ok := b.intArg(n, -20, 19); ok {
				g.BFDPriority, g.BFDPrioritySet = v, true
			}
		}},
		{Name: "vrrp_no_swap", Status: Supported, Doc: "Lock vigil's memory (mlockall, pages as they are touched) so the advert path never waits for swap.", Parse: func(b *builder, n *Node, g *Global) {
			b.noBlock(n)
			g.VRRPNoSwap = true
		}},
		ignoredWith[Global]("checker_no_swap", "Lock the checker process in memory.", checkFlag),
		{Name: "bfd_no_swap", Status: Supported, Doc: "Lock vigil's memory, as vrrp_no_swap (BFD runs in vigil's process; keepalived: the BFD process's memory).", Parse: func(b *builder, n *Node, g *Global) {
			b.noBlock(n)
			g.BFDNoSwap = true
		}},
		ignoredWith[Global]("vrrp_cpu_affinity", "CPUs of the VRRP process.", checkInts(0, 4095)),
		ignoredWith[Global]("checker_cpu_affinity", "CPUs of the checker process.", checkInts(0, 4095)),
		ignoredWith[Global]("bfd_cpu_affinity", "CPUs of the BFD process.", checkInts(0, 4095)),
		{Name: "vrrp_rt_priority", Status: Supported, Doc: "SCHED_RR priority (1..99) of the daemon's threads (the BFD process has bfd_rt_priority), not of the programs it runs (keepalived: of the VRRP process).", Parse: func(b *builder, n *Node, g *Global) {
			b.noBlock(n)
			if v, ok := b.intArg(n, 1, 99); ok {
				g.VRRPRTPriority = v
			}
		}},
		ignoredWith[Global]("checker_rt_priority", "Real-time priority of the checker process.", checkInt(1, 99)),
		{Name: "bfd_rt_priority", Status: Supported, Doc: "SCHED_RR priority (1..99) of the BFD process, every thread of it (as keepalived's BFD process); it takes precedence over bfd_priority. The BFD process runs no programs.", Parse: func(b *builder, n *Node, g *Global) {
			b.noBlock(n)
			if v, ok := b.intArg(n, 1, 99); ok {
				g.BFDRTPriority = v
			}
		}},
		ignoredWith[Global]("vrrp_rlimit_rttime", "CPU time limit under real-time scheduling (VRRP).", checkInt(1, 4294967295)),
		ignoredWith[Global]("checker_rlimit_rttime", "CPU time limit under real-time scheduling (checker).", checkInt(1, 4294967295)),
		ignoredWith[Global]("bfd_rlimit_rttime", "CPU time limit under real-time scheduling (BFD).", checkInt(1, 4294967295)),
		ignoredWith[Global]("vrrp_netlink_cmd_rcv_bufs", "Netlink buffer size of the VRRP process.", checkInt(0, 4294967295)),
		ignoredWith[Global]("vrrp_netlink_cmd_rcv_bufs_force", "Force that buffer size.", checkBool),
		ignoredWith[Global]("vrrp_netlink_monitor_rcv_bufs", "Netlink monitor buffer size of the VRRP process.", checkInt(0, 4294967295)),
		ignoredWith[Global]("vrrp_netlink_monitor_rcv_bufs_force", "Force that buffer size.", checkBool),
		ignoredWith[Global]("process_monitor_rcv_bufs", "Buffer size of the process monitor.", checkInt(0, 4294967295)),
		ignoredWith[Global]("process_monitor_rcv_bufs_force", "Force that buffer size.", checkBool),
		ignoredWith[Global]("vrrp_rx_bufs_policy", "Receive buffer sizing of VRRP sockets.", checkRxBufsPolicy),
		ignoredWith[Global]("vrrp_rx_bufs_multiplier", "Multiplier for vrrp_rx_bufs_policy.", checkInt(1, 4294967295)),
		ignoredWith[Global]("umask", "umask for files keepalived creates.", checkUmask),
		ignoredWith[Global]("log_unknown_vrids", "Log adverts for VRIDs not configured (vigil counts them in metrics).", checkFlag),
		ignoredWith[Global]("random_seed", "Seed of ${_RANDOM}.", checkInt(0, 4294967295)),
		ignoredWith[Global]("reload_check_config", "Check the config before reloading; vigil always does and keeps the running config.", checkAny),
		{Name: "include_check", Status: Supported, Doc: "Strictness of include: match, wildcard_match, brace_match with +/-; applied by the preprocessor.", Parse: func(b *builder, n *Node, g *Global) {
			for _, w := range n.Args {
				if strings.TrimLeft(w.Text, "+-") == "readable" {
					// Documented, but keepalived 2.2.7 does not know it.
					b.errorf(w.Pos, "include_check %q: keepalived 2.2.7 does not accept readable (despite its man page): use match", w.Text)
				}
			}
		}},
		ignoredWith[Global]("reload_time_file", "Schedule a reload from a file.", checkArg("a file path")),
		ignoredWith[Global]("reload_repeat", "Keep the reload_time_file.", checkFlag),
		ignoredWith[Global]("reload_file", "File that signals a reload in progress.", checkAny),
		ignoredWith[Global]("data_use_instance", "Instance name in USR1 dump file names.", checkBool),

		// SNMP and DBus
		ignoredWith[Global]("snmp_socket", "Socket of the SNMP master agent; vigil exports Prometheus metrics instead.", checkArg("a socket address")),
		ignoredWith[Global]("enable_snmp_vrrp", "SNMP VRRP MIB.", checkFlag),
		ignoredWith[Global]("enable_snmp_checker", "SNMP checker MIB.", checkFlag),
		ignoredWith[Global]("enable_snmp_rfc", "SNMP RFC VRRP MIBs.", checkFlag),
		ignoredWith[Global]("enable_snmp_rfcv2", "SNMP RFC2787 MIB.", checkFlag),
		ignoredWith[Global]("enable_snmp_rfcv3", "SNMP RFC6527 MIB.", checkFlag),
		ignoredWith[Global]("enable_traps", "SNMP traps.", checkFlag),
		ignoredWith[Global]("enable_dbus", "DBus interface; vigil has its control socket instead.", checkFlag),
		ignoredWith[Global]("dbus_service_name", "DBus service name.", checkArg("a service name")),
	})
}

// checkSaveDir mirrors keepalived creating config_save_dir: its parent
// must exist (checked through Env.Glob when available).
func checkSaveDir(b *builder, n *Node) {
	b.noBlock(n)
	w, ok := b.arg(n, "a directory")
	if !ok || b.env.Glob == nil {
		return
	}
	parent := w.Text
	if i := strings.LastIndexByte(strings.TrimRight(parent, "/"), '/'); i > 0 {
		parent = parent[:i]
	} else {
		return
	}
	if m, err := b.env.Glob(parent); err != nil || len(m) == 0 {
		b.errorf(w.Pos, "config_save_dir %s cannot be created: %s does not exist", w.Text, parent)
	}
}

func checkRxBufsPolicy(b *builder, n *Node) {
	b.noBlock(n)
	w, ok := b.arg(n, "MTU, ADVERT or a size")
	if !ok {
		return
	}
	if w.Text == "MTU" || w.Text == "ADVERT" {
		return
	}
	b.intWord(n.Key.Text, w, 1, 4294967295)
}

var umaskBits = map[string]int64{"IRUSR": 0o400, "IWUSR": 0o200, "IXUSR": 0o100, "IRGRP": 0o40, "IWGRP": 0o20, "IXGRP": 0o10, "IROTH": 0o4, "IWOTH": 0o2, "IXOTH": 0o1}

// checkUmask accepts a number (decimal, 0octal or 0xhex) up to 0777 or
// permission names joined with '|'.
func checkUmask(b *builder, n *Node) {
	b.noBlock(n)
	w, ok := b.arg(n, "a number or IRUSR|IWGRP|...")
	if !ok {
		return
	}
	text := strings.Join(strings.Fields(joinWords(n.Args)), "")
	if v, err := strconv.ParseInt(text, 0, 32); err == nil {
		if v < 0 || v > 0o777 {
			b.errorf(w.Pos, "umask %q: expected a mask 0..0777", text)
		}
		return
	}
	for _, part := range strings.Split(text, "|") {
		if _, ok := umaskBits[part]; !ok {
			b.errorf(w.Pos, "umask %q: expected a number or names like IWGRP|IWOTH", text)
			return
		}
	}
}

// parseSyncDaemon reads `IF [[inst] NAME] [id N] [maxlen N] [port N]
// [ttl N] [group IP]` as keepalived 2.2.7 does: the interface is required,
// the instance is the second word (or follows inst), every other word is an
// option with a value; a bare number after the instance is the old SYNCID
// form keepalived refuses ("use id"). What keepalived -t accepts but
// cannot run (no instance, an unknown one) is judged by validateSync.
func parseSyncDaemon(b *builder, n *Node, g *Global) {
	b.noBlock(n)
	w0, ok := b.arg(n, "an interface name")
	if !ok {
		return
	}
	sd := &SyncDaemon{Pos: n.Key.Pos, Interface: w0.Text, ID: -1}
	bad := false
	args := n.Args[1:]
	limits := map[string][2]int64{"id": {0, 255}, "maxlen": {1, 65507}, "port": {1, 65535}, "ttl": {1, 255}}
	for k := 0; k < len(args); k++ {
		w := args[k]
		switch w.Text {
		case "inst", "id", "maxlen", "port", "ttl", "group":
			if k+1 >= len(args) {
				b.errorf(w.Pos, "lvs_sync_daemon %s: missing value", w.Text)
				bad = true
				continue
			}
			k++
			v := args[k]
			switch w.Text {
			case "inst":
				sd.Instance = v.Text
			case "group":
				a, ok := b.addrWord("lvs_sync_daemon group", v)
				switch {
				case !ok:
					bad = true
				case !a.IsMulticast():
					b.errorf(v.Pos, "lvs_sync_daemon group %s: expected a multicast address", a)
					bad = true
				default:
					sd.Group = a
				}
			default:
				l := limits[w.Text]
				x, ok := b.intWord("lvs_sync_daemon "+w.Text, v, l[0], l[1])
				if !ok {
					bad = true
					continue
				}
				switch w.Text {
				case "id":
					sd.ID = int(x)
				case "maxlen":
					sd.MaxLen = int(x)
				case "port":
					sd.Port = int(x)
				case "ttl":
					sd.TTL = int(x)
				}
			}
		default:
			if k == 0 && sd.Instance == "" {
				sd.Instance = w.Text
				continue
			}
			bad = true
			if _, isNum := parseInt(w.Text); isNum && k == 1 {
				b.errorf(w.Pos, "lvs_sync_daemon: unexpected %q: write the sync id as id %s", w.Text, w.Text)
			} else {
				b.errorf(w.Pos, "lvs_sync_daemon: unexpected %q: expected id, maxlen, port, ttl or group", w.Text)
			}
		}
	}
	if bad {
		return
	}
	if g.LVSSyncDaemon != nil {
		b.warnf(n.Key.Pos, "lvs_sync_daemon is already set at %s: this one replaces it", g.LVSSyncDaemon.Pos)
	}
	g.LVSSyncDaemon = sd
}

// setSyncAuth records the sync key; validateSync folds it in.
func (b *builder) setSyncAuth(n *Node, g *Global, key []byte, file string) {
	if g.lvsSyncAuth.set {
		b.warnf(n.Key.Pos, "%s: the sync key is already set at %s: this one replaces it", n.Key.Text, g.lvsSyncAuth.pos)
	}
	if key != nil && len(key) < MinSyncAuthKey {
		b.errorf(n.Args[0].Pos, "%s: the key is %d characters: expected at least %d", n.Key.Text, len(key), MinSyncAuthKey)
		return
	}
	g.lvsSyncAuth = syncAuth{pos: n.Key.Pos, key: key, file: file, set: true}
}
