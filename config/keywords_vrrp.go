package config

import (
	"net/netip"
	"strings"
	"time"
	"vigil/internal/inet"
)

var (
	scriptTable       *table[VRRPScript]
	trackFileTable    *table[TrackFile]
	trackProcessTable *table[TrackProcess]
	syncGroupTable    *table[SyncGroup]
	instanceTable     *table[Instance]
	authTable         *table[Auth]
)

// weightKW reads `weight N [reverse]`.
func weightKW[T any](name, doc string, min, max int64, weight func(*T) *int, reverse func(*T) *bool) keyword[T] {
	return keyword[T]{Name: name, Status: Supported, Doc: doc, Parse: func(b *builder, n *Node, v *T) {
		b.noBlock(n)
		w, ok := b.arg(n, "an integer weight")
		if !ok {
			return
		}
		x, ok := b.intWord(n.Key.Text, w, min, max)
		if !ok {
			return
		}
		*weight(v) = int(x)
		markSet(v, fWeight)
		if len(n.Args) > 1 {
			switch n.Args[1].Text {
			case "reverse":
				*reverse(v) = true
			case "noreverse", "no_reverse":
			default:
				b.errorf(n.Args[1].Pos, "%s: unexpected %q: expected reverse", n.Key.Text, n.Args[1].Text)
			}
		}
	}}
}

func trackKW[T any](name, doc string, min, max int64, field func(*T) *[]*TrackRef) keyword[T] {
	return keyword[T]{Name: name, Status: Supported, Doc: doc, Parse: func(b *builder, n *Node, v *T) {
		refs := b.trackList(n, min, max)
		for _, r := range refs {
			switch name {
			case "track_script":
				r.late = b.cfg.idx.scripts[r.Name] == nil
			case "track_file":
				r.late = b.cfg.idx.trackFiles[r.Name] == nil
			case "track_process":
				r.late = b.cfg.idx.trackProcs[r.Name] == nil
			}
		}
		*field(v) = append(*field(v), refs...)
	}}
}

func notifyRows[T any](field func(*T) *Notify, who string) []keyword[T] {
	return []keyword[T]{
		cmdKW("notify_master", "Script run when the "+who+" becomes MASTER.", func(v *T) **Command { return &field(v).Master }),
		cmdKW("notify_backup", "Script run when the "+who+" becomes BACKUP.", func(v *T) **Command { return &field(v).Backup }),
		cmdKW("notify_fault", "Script run when the "+who+" enters FAULT.", func(v *T) **Command { return &field(v).Fault }),
		cmdKW("notify_stop", "Script run when the "+who+" stops.", func(v *T) **Command { return &field(v).Stop }),
		cmdKW("notify", "Script run on every transition with TYPE NAME STATE PRIORITY appended.", func(v *T) **Command { return &field(v).Any }),
		{Name: "notify_deleted", Status: Supported, Doc: "Report DELETED instead of FAULT when a reload removes the " + who + "; optional script.", Parse: func(b *builder, n *Node, v *T) {
			b.noBlock(n)
			if len(n.Args) == 0 {
				field(v).Deleted = &Command{Pos: n.Key.Pos}
				return
			}
			field(v).Deleted = b.commandArg(n)
		}},
	}
}

func init() {
	scriptTable = newTable("vrrp_script NAME { }", "A periodic check whose result changes the priority of the instances that track it, or puts them in FAULT.", []keyword[VRRPScript]{
		{Name: "script", Status: Supported, Doc: "Command to run (quoted to include arguments).", Parse: func(b *builder, n *Node, s *VRRPScript) {
			b.noBlock(n)
			if len(n.Args) == 0 {
				// keepalived skips an empty script line silently.
				return
			}
			s.Script = b.wholeCommand(n)
		}},
		secondsKW("interval", "Whole seconds between runs, 1..4294 (default 1).", 1, 4294, func(s *VRRPScript) *time.Duration { return &s.Interval }),
		secondsKW("timeout", "Whole seconds after which a run counts as failed, 1..4294 (default: interval).", 1, 4294, func(s *VRRPScript) *time.Duration { return &s.Timeout }),
		weightKW("weight", "Priority change, -253..253 [reverse]; 0 (default) means failure puts the instance in FAULT.", -253, 253,
			func(s *VRRPScript) *int { return &s.Weight }, func(s *VRRPScript) *bool { return &s.Reverse }),
		intKW("rise", "Successes needed to count as up (default 1).", 1, 1<<31-1, func(s *VRRPScript) *int { return &s.Rise }, 0),
		intKW("fall", "Failures needed to count as down (default 1).", 1, 1<<31-1, func(s *VRRPScript) *int { return &s.Fall }, 0),
		{Name: "user", Status: Supported, Doc: "User and optional group to run the script as.", Parse: func(b *builder, n *Node, s *VRRPScript) {
			b.noBlock(n)
			if u, ok := b.strArg(n, "a user name"); ok {
				s.User = u
				if len(n.Args) > 1 {
					s.Group = n.Args[1].Text
				}
			}
		}},
		flagKW("init_fail", "Start in the failed state.", func(s *VRRPScript) *bool { return &s.InitFail }, 0),
	})

	trackFileTable = newTable("track_file NAME { }", "A file holding a number that is multiplied by the weight and added to the priority (`vrrp_track_file` is the old name).", []keyword[TrackFile]{
		strKW("file", "Path of the file to watch.", "a file path", func(t *TrackFile) *string { return &t.File }, 0),
		weightKW("weight", "Multiplier of the value read, default 1 [reverse].", -2147483647, 2147483647,
			func(t *TrackFile) *int { return &t.Weight }, func(t *TrackFile) *bool { return &t.Reverse }),
		{Name: "init_file", Status: Supported, Doc: "Create the file at startup with VALUE (default 0); `overwrite` replaces an existing one.", Parse: func(b *builder, n *Node, t *TrackFile) {
			b.noBlock(n)
			t.InitFile = true
			for _, w := range n.Args {
				if w.Text == "overwrite" {
					t.Overwrite = true
					continue
				}
				if v, ok := b.intWord("init_file", w, -2147483648, 2147483647); ok {
					t.InitValue = int(v)
				}
			}
		}},
	})

	trackProcessTable = newTable("vrrp_track_process NAME { }", "Watches whether a process runs, through the kernel's process events.", []keyword[TrackProcess]{
		{Name: "process", Status: Supported, Doc: "Process name and optional parameters to match.", Parse: func(b *builder, n *Node, t *TrackProcess) {
			b.noBlock(n)
			if len(n.Args) == 0 {
				b.errorf(n.Key.Pos, "process: missing value: expected a process name")
				return
			}
			t.Process = t.Process[:0]
			for _, w := range n.Args {
				t.Process = append(t.Process, w.Text)
			}
		}},
		{Name: "param_match", Status: Supported, Doc: "`initial` or `partial` matching of the parameters.", Parse: func(b *builder, n *Node, t *TrackProcess) {
			b.noBlock(n)
			if len(n.Args) == 0 {
				t.ParamMatch = "exact"
				return
			}
			switch n.Args[0].Text {
			case "initial", "partial":
				t.ParamMatch = n.Args[0].Text
			default:
				b.errorf(n.Args[0].Pos, "param_match %q: expected initial or partial", n.Args[0].Text)
			}
		}},
		weightKW("weight", "Priority change, -254..254 (default 1) [reverse].", -254, 254,
			func(t *TrackProcess) *int { return &t.Weight }, func(t *TrackProcess) *bool { return &t.Reverse }),
		intKW("quorum", "Minimum number of matching processes (default 1).", 1, 65535, func(t *TrackProcess) *int { return &t.Quorum }, 0),
		intKW("quorum_max", "Maximum number of matching processes.", 0, 65535, func(t *TrackProcess) *int { return &t.QuorumMax }, 0),
		durKW("fork_delay", "Wait after the quorum is reached before counting it up.", 0, 3600*time.Second, func(t *TrackProcess) *time.Duration { return &t.ForkDelay }, 0),
		durKW("terminate_delay", "Wait after the quorum is lost before counting it down.", 0, 3600*time.Second, func(t *TrackProcess) *time.Duration { return &t.TerminateDelay }, 0),
		{Name: "delay", Status: Supported, Doc: "Sets fork_delay and terminate_delay.", Parse: func(b *builder, n *Node, t *TrackProcess) {
			b.noBlock(n)
			if d, ok := b.durArg(n, 0, 3600*time.Second); ok {
				t.ForkDelay, t.TerminateDelay = d, d
			}
		}},
		flagKW("full_command", "Match the whole command line instead of the process name.", func(t *TrackProcess) *bool { return &t.FullCommand }, 0),
	})

	syncRows := []keyword[SyncGroup]{
		{Name: "group", Status: Supported, Doc: "Block listing the member vrrp_instance names.", Parse: func(b *builder, n *Node, g *SyncGroup) {
			names, pos := b.stringList(n)
			g.Members = append(g.Members, names...)
			g.MemberPos = append(g.MemberPos, pos...)
		}},
		trackKW("track_interface", "Interfaces whose state every member follows: NAME [weight -253..253] [reverse].", -253, 253, func(g *SyncGroup) *[]*TrackRef { return &g.TrackInterfaces }),
		trackKW("track_script", "vrrp_script names every member follows: NAME [weight -253..253] [reverse].", -253, 253, func(g *SyncGroup) *[]*TrackRef { return &g.TrackScripts }),
		trackKW("track_file", "track_file names every member follows: NAME [weight -254..254] [reverse].", -254, 254, func(g *SyncGroup) *[]*TrackRef { return &g.TrackFiles }),
		trackKW("track_process", "vrrp_track_process names every member follows: NAME [weight -254..254] [reverse].", -254, 254, func(g *SyncGroup) *[]*TrackRef { return &g.TrackProcesses }),
		trackBFD(func(g *SyncGroup) *[]*TrackRef { return &g.TrackBFD }),
		optBoolKW("notify_priority_changes", "Send priority changes to the notify FIFOs.", func(g *SyncGroup) *OptBool { return &g.NotifyPriority }),
		optBoolKW("smtp_alert", "E-mail on transitions.", func(g *SyncGroup) *OptBool { return &g.SMTPAlert }),
		{Name: "global_tracking", Status: Rejected, Doc: "deprecated (keepalived reports an error): track on the sync group instead.", Parse: func(b *builder, n *Node, g *SyncGroup) {
			b.errorf(n.Key.Pos, "global_tracking is rejected: deprecated (keepalived reports an error): use track_interface/track_script/track_file on the sync group")
			g.GlobalTracking = true
		}},
		flagKW("sync_group_tracking_weight", "Allow tracking weights on members (they are otherwise forced to 0).", func(g *SyncGroup) *bool { return &g.TrackingWeight }, 0),
	}
	syncRows = append(syncRows, notifyRows(func(g *SyncGroup) *Notify { return &g.Notify }, "group")...)
	syncGroupTable = newTable("vrrp_sync_group NAME { }", "Instances that change state together.", syncRows)

	authTable = newTable("authentication { } (in vrrp_instance)", "VRRPv2 authentication (removed from the protocol by RFC 3768; avoid it).", []keyword[Auth]{
		{Name: "auth_type", Status: Supported, Doc: "PASS (a clear-text password). AH is rejected: vigil does not implement IPsec AH.", Parse: func(b *builder, n *Node, a *Auth) {
			b.noBlock(n)
			t, ok := choiceArg(b, n, "PASS or AH", false, map[string]AuthType{"PASS": AuthPass, "AH": AuthAH})
			if !ok {
				return
			}
			a.Type = t
			if t == AuthAH {
				b.errorf(n.Args[0].Pos, unsupportedMark+"auth_type AH (keepalived accepts it): IPsec AH is not implemented; use PASS or no authentication")
			}
		}},
		{Name: "auth_pass", Status: Supported, Doc: "The password; only 8 characters are used (longer ones are an error, as in keepalived).", Parse: func(b *builder, n *Node, a *Auth) {
			b.noBlock(n)
			w, ok := b.arg(n, "a password")
			if !ok {
				return
			}
			a.Pass = keep(w.Text)
			if len(a.Pass) > 8 {
				a.Pass = a.Pass[:8]
				b.errorf(w.Pos, "auth_pass is longer than 8 characters: truncated to %q (keepalived reports this as an error)", a.Pass)
			}
		}},
	})

	garp := func(i *Instance) *Garp { return &i.Garp }
	instRows := []keyword[Instance]{
		{Name: "state", Status: Supported, Doc: "Initial state, MASTER or BACKUP (default BACKUP); MASTER without a priority makes the instance the address owner (priority 255), which takes over at once.", Parse: func(b *builder, n *Node, i *Instance) {
			b.noBlock(n)
			if s, ok := choiceArg(b, n, "MASTER or BACKUP (upper case)", false, map[string]State{"MASTER": StateMaster, "BACKUP": StateBackup}); ok {
				i.State = s
				i.has |= fState
			}
		}},
		strKW("interface", "Interface the instance runs on (required, also for unicast).", "an interface name", func(i *Instance) *string { return &i.Interface }, 0),
		intKW("virtual_router_id", "VRID, 1..255, unique per interface and address family (required).", 1, 255, func(i *Instance) *int { return &i.VRID }, 0),
		intKW("priority", "Election priority 1..255 (default 100); 255 is the address owner.", 1, 255, func(i *Instance) *int { return &i.Priority }, fPriority),
		durKW("advert_int", "Advert interval in seconds (default 1): whole seconds for v2, up to 40.95 for v3.", 10*time.Millisecond, 255*time.Second, func(i *Instance) *time.Duration { return &i.AdvertInt }, fAdvertInt),
		{Name: "version", Status: Supported, Doc: "VRRP version 2 or 3 (default vrrp_version; IPv6 is always 3).", Parse: func(b *builder, n *Node, i *Instance) {
			b.noBlock(n)
			v, ok := b.intArg(n, 2, 3)
			if !ok {
				return
			}
			// keepalived judges in file order: `version 2` after an IPv6
			// VIP is an error, before one it is silently upgraded.
			if v == 2 && len(i.VIPs) > 0 && i.VIPs[0].Addr().Is6() {
				b.errorf(n.Args[0].Pos, "version 2 conflicts with the IPv6 VIPs above (IPv6 needs version 3): ignored")
				return
			}
			if i.has&fVersion != 0 && i.Version != v {
				b.errorf(n.Args[0].Pos, "version %d conflicts with version %d set above: ignored", v, i.Version)
				return
			}
			i.Version = v
			i.has |= fVersion
		}},
		{Name: "authentication", Status: Supported, Doc: "Block with auth_type and auth_pass (VRRPv2 only).", Parse: func(b *builder, n *Node, i *Instance) {
			if !b.needBlock(n) {
				return
			}
			a := &Auth{Pos: n.Key.Pos}
			authTable.run(b, n.Block, a)
			if a.Type == AuthNone && a.Pass != "" && !hasKey(n.Block, "auth_type") {
				// keepalived accepts this and authenticates nothing.
				b.warnf(n.Key.Pos, "authentication: auth_pass without auth_type: no authentication is used")
			}
			if a.Type == AuthPass && a.Pass == "" {
				b.errorf(n.Key.Pos, "authentication: auth_type PASS without auth_pass: ignored")
				return
			}
			if a.Type != AuthNone {
				i.Auth = a
			}
		}},
		listKW("virtual_ipaddress", "Block of VIPs sent in adverts: IP[/LEN] [brd IP] [dev IF] [scope S] [label L] [peer IP] [home] [-nodad] [mngtmpaddr] [noprefixroute] [autojoin] [no_track] [use_vmac] [preferred_lft N|forever].", (*builder).vrrpVIPs, func(i *Instance) *[]*VIP { return &i.VIPs }),
		listKW("virtual_ipaddress_excluded", "Block of addresses moved with the VIPs but not sent in adverts (may mix families); same options.", (*builder).vrrpVIPs, func(i *Instance) *[]*VIP { return &i.ExcludedVIPs }),
		listKW("virtual_routes", "Block of routes added when MASTER, in `ip route` syntax, plus no_track.", (*builder).routeList, func(i *Instance) *[]*Route { return &i.Routes }),
		listKW("virtual_rules", "Block of policy rules added when MASTER, in `ip rule` syntax, plus no_track.", (*builder).ruleList, func(i *Instance) *[]*Rule { return &i.Rules }),
		{Name: "unicast_src_ip", Status: Supported, Doc: "Source address of unicast adverts.", Parse: func(b *builder, n *Node, i *Instance) {
			b.noBlock(n)
			i.has |= fUnicastKeyword
			if a, ok := b.addrArg(n); ok {
				i.UnicastSrcIP = a
			}
		}},
		{Name: "unicast_peer", Status: Supported, Doc: "Block of peer addresses: send adverts by unicast. Each IP [min_ttl N] [max_ttl N].", Parse: func(b *builder, n *Node, i *Instance) {
			i.has |= fUnicastKeyword
			i.UnicastPeers = append(i.UnicastPeers, b.peerList(n)...)
		}},
		addrKW("mcast_src_ip", "Source address of multicast adverts (default: the interface's primary address).", func(i *Instance) *netip.Addr { return &i.McastSrcIP }, 0),
		{Name: "mcast_dst_ip", Status: Supported, Doc: "Multicast group for this instance instead of the global one.", Parse: func(b *builder, n *Node, i *Instance) {
			b.noBlock(n)
			if a, ok := b.addrArg(n); ok {
				if !a.IsMulticast() {
					b.errorf(n.Args[0].Pos, "mcast_dst_ip %q: expected a multicast address", n.Args[0].Text)
					return
				}
				i.McastDstIP = a
			}
		}},
		intKW("unicast_ttl", "TTL / hop limit of unicast adverts (default 255).", 0, 255, func(i *Instance) *int { return &i.UnicastTTL }, fUnicastKeyword),
		flagKW("unicast_fault_no_peer", "Go to FAULT without unicast peers instead of falling back to multicast.", func(i *Instance) *bool { return &i.UnicastFaultNoPeer }, 0),
		flagKW("check_unicast_src", "Accept unicast adverts only from configured peers.", func(i *Instance) *bool { return &i.CheckUnicastSrc }, fCheckUnicastSrc),
		flagKW("nopreempt", "Do not take over from a lower priority master (needs state BACKUP).", func(i *Instance) *bool { return &i.Nopreempt }, 0),
		{Name: "preempt", Status: Supported, Doc: "Preempt (the default); clears nopreempt.", Parse: func(b *builder, n *Node, i *Instance) {
			b.noBlock(n)
			i.Nopreempt = false
		}},
		durKW("preempt_delay", "Seconds, 0..1000, to wait before preempting after startup or a lower priority master.", 0, 1000*time.Second, func(i *Instance) *time.Duration { return &i.PreemptDelay }, fPreemptDelay),
		{Name: "accept", Status: Supported, Doc: "Accept packets to the VIPs when not address owner (the default unless strict).", Parse: func(b *builder, n *Node, i *Instance) {
			b.noBlock(n)
			i.Accept = OptBool{Set: true, Value: true}
		}},
		{Name: "no_accept", Status: Supported, Doc: "While master and not the address owner, drop packets addressed to the VIPs (nft table `inet vigil_noaccept`); ARP and neighbour discovery for them still work.", Parse: func(b *builder, n *Node, i *Instance) {
			b.noBlock(n)
			i.Accept = OptBool{Set: true, Value: false}
		}},
		wholeSecondsKW("garp_master_delay", "Per-instance vrrp_garp_master_delay (whole seconds).", func(i *Instance) *time.Duration { return &garp(i).MasterDelay }, fGarpMasterDelay),
		intKW("garp_master_repeat", "Per-instance vrrp_garp_master_repeat.", 1, 1<<31-1, func(i *Instance) *int { return &garp(i).MasterRepeat }, fGarpMasterRepeat),
		wholeSecondsKW("garp_lower_prio_delay", "Per-instance vrrp_garp_lower_prio_delay (whole seconds).", func(i *Instance) *time.Duration { return &garp(i).LowerPrioDelay }, fGarpLowerPrioDelay),
		intKW("garp_lower_prio_repeat", "Per-instance vrrp_garp_lower_prio_repeat (0 sends none).", 0, 1<<31-1, func(i *Instance) *int { return &garp(i).LowerPrioRepeat }, fGarpLowerPrioRepeat),
		wholeSecondsKW("garp_master_refresh", "Per-instance vrrp_garp_master_refresh (whole seconds).", func(i *Instance) *time.Duration { return &garp(i).MasterRefresh }, fGarpRefresh),
		intKW("garp_master_refresh_repeat", "Per-instance vrrp_garp_master_refresh_repeat.", 1, 1<<31-1, func(i *Instance) *int { return &garp(i).MasterRefreshRepeat }, fGarpRefreshRepeat),
		ignored[Instance]("garp_extra_if", "Per-instance vrrp_garp_extra_if (the global setting applies)."),
		intKW("down_timer_adverts", "Advert intervals in the master down timer, 1..100 (default 3; other values break the RFC).", 1, 100, func(i *Instance) *int { return &i.DownTimerAdverts }, fDownTimerAdverts),
		boolKW("lower_prio_no_advert", "As master, do not answer a lower priority advert.", func(i *Instance) *bool { return &i.LowerPrioNoAdvert }, fLowerPrioNoAdvert),
		boolKW("higher_prio_send_advert", "As master, send an advert before yielding to a higher priority.", func(i *Instance) *bool { return &i.HigherPrioSendAdvert }, fHigherPrioSendAdvert),
		trackKW("track_interface", "Interfaces to follow: NAME [weight -253..253] [reverse]; unweighted, down means FAULT.", -253, 253, func(i *Instance) *[]*TrackRef { return &i.TrackInterfaces }),
		trackKW("track_script", "vrrp_script names: NAME [weight -253..253] [reverse] (default: the script's weight).", -253, 253, func(i *Instance) *[]*TrackRef { return &i.TrackScripts }),
		trackKW("track_file", "track_file names: NAME [weight -254..254] [reverse].", -254, 254, func(i *Instance) *[]*TrackRef { return &i.TrackFiles }),
		trackKW("track_process", "vrrp_track_process names: NAME [weight -254..254] [reverse].", -254, 254, func(i *Instance) *[]*TrackRef { return &i.TrackProcesses }),
		trackBFD(func(i *Instance) *[]*TrackRef { return &i.TrackBFD }),
		bfdTakeoverKW(),
		cmdKW("notify_master_rx_lower_pri", "Script run when the master hears a lower priority advert.", func(i *Instance) **Command { return &i.Notify.MasterRxLowerPri }),
		optBoolKW("notify_priority_changes", "Send priority changes to the notify FIFOs.", func(i *Instance) *OptBool { return &i.NotifyPriorityChanges }),
		optBoolKW("smtp_alert", "E-mail on transitions.", func(i *Instance) *OptBool { return &i.SMTPAlert }),
		{Name: "use_vmac", Status: Supported, Doc: "Use a macvlan with the VRRP MAC 00:00:5e:00:01:VRID: [NAME] [MAC].", Parse: func(b *builder, n *Node, i *Instance) {
			b.noBlock(n)
			i.UseVMAC = true
			for _, w := range n.Args {
				if isMAC(w.Text) {
					if len(w.Text) == 17 && strings.HasPrefix(strings.ToLower(w.Text), "00:00:5e:00:01:") {
						b.errorf(w.Pos, "use_vmac %s: the VRRP MAC 00:00:5e:00:01:XX is chosen automatically and may not be configured", w.Text)
						continue
					}
					i.VMACAddr = w.Text
				} else if i.VMACName == "" {
					if !validIfName(w.Text) {
						b.errorf(w.Pos, "use_vmac %q: interface names have 1..15 characters without '/', ':' or blanks", w.Text)
						continue
					}
					i.VMACName = w.Text
				} else {
					b.errorf(w.Pos, "use_vmac: unexpected %q: expected [NAME] [MAC]", w.Text)
				}
			}
		}},
		flagKW("vmac_xmit_base", "Send and receive adverts on the base interface rather than the VMAC.", func(i *Instance) *bool { return &i.VMACXmitBase }, 0),
		ignoredWith[Instance]("use_vmac_addr", "VMACs for VIPs on other interfaces.", checkFlag),
		{Name: "use_ipvlan", Status: Ignored, Doc: "Put the VIPs on an ipvlan interface: [NAME] [IP[/LEN]] [bridge|private|vepa]; vigil uses the interface itself.", Parse: func(b *builder, n *Node, i *Instance) {
			b.noBlock(n)
			i.ipvlan, i.ipvlanAddr = true, false
			for _, w := range n.Args {
				if _, ok := parsePrefix(w.Text); ok {
					i.ipvlanAddr = true
				}
			}
		}},
		{Name: "native_ipv6", Status: Supported, Doc: "Deprecated: force IPv6 (the VIPs decide the family).", Parse: func(b *builder, n *Node, i *Instance) {
			b.noBlock(n)
			i.Family = inet.IPv6
		}},
		flagKW("dont_track_primary", "Ignore faults of the instance's own interface.", func(i *Instance) *bool { return &i.DontTrackPrimary }, 0),
		flagKW("track_src_ip", "FAULT when the configured source address disappears.", func(i *Instance) *bool { return &i.TrackSrcIP }, 0),
		boolKW("strict_mode", "Per-instance vrrp_strict.", func(i *Instance) *bool { return &i.StrictMode }, fStrict),
		boolKW("skip_check_adv_addr", "Per-instance vrrp_skip_check_adv_addr.", func(i *Instance) *bool { return &i.SkipCheckAdvAddr }, fSkipCheckAdv),
		flagKW("promote_secondaries", "Set promote_secondaries on the interface so removing a VIP keeps the others.", func(i *Instance) *bool { return &i.PromoteSecondaries }, 0),
		ignored[Instance]("old_unicast_checksum", "Old VRRPv3 unicast checksum compatibility."),
		ignoredWith[Instance]("vrf", "VRF for unicast instances without interface.", checkArg("a VRF interface")),
		ignoredWith[Instance]("debug", "Debug level (not implemented in keepalived either).", checkInt(0, 4)),
		ignoredWith[Instance]("kernel_rx_buf_size", "Socket receive buffer size.", checkInt(0, 4294967295)),
		rejected[Instance]("linkbeat_use_polling", "deprecated inside vrrp_instance (keepalived reports it as an error): use the top-level linkbeat_interfaces block."),
	}
	instRows = append(instRows, notifyRows(func(i *Instance) *Notify { return &i.Notify }, "instance")...)
	instRows = append(instRows, bgpAnnounceKW("vigil extension: NAME: announce the instance's VIPs (/32 or /128) through bgp_instance NAME while the instance is MASTER.", false, func(i *Instance) *[]*BGPAnnounce { return &i.BGPAnnounce }))
	instanceTable = newTable("vrrp_instance NAME { }", "One virtual router: its VIPs, election settings and tracking.", instRows)
}

func isMAC(s string) bool {
	if len(s) != 17 && len(s) != 14 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i%3 == 2 {
			if c != ':' {
				return false
			}
			continue
		}
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// peerList parses unicast_peer items: IP [min_ttl N] [max_ttl N].
func (b *builder) peerList(n *Node) []*UnicastPeer {
	if !b.needListBlock(n) {
		return nil
	}
	out := make([]*UnicastPeer, 0, len(n.Block))
	for _, it := range n.Block {
		a, ok := parseAddr(it.Key.Text)
		if !ok {
			b.errorf(it.Key.Pos, "unicast_peer %q: expected an IPv4 or IPv6 address", it.Key.Text)
			continue
		}
		if it.HasBlock {
			b.errorf(it.Key.Pos, "unicast_peer %s: unexpected block", it.Key.Text)
			continue
		}
		p := &UnicastPeer{Pos: it.Key.Pos, Addr: a, MinTTL: -1, MaxTTL: -1}
		for j := 0; j < len(it.Args); j++ {
			w := it.Args[j]
			if (w.Text != "min_ttl" && w.Text != "max_ttl") || j+1 >= len(it.Args) {
				b.errorf(w.Pos, "unicast_peer %s: unexpected %q: expected min_ttl N or max_ttl N", it.Key.Text, w.Text)
				break
			}
			j++
			v, ok := b.intWord("unicast_peer "+w.Text, it.Args[j], 0, 255)
			if !ok {
				continue
			}
			if w.Text == "min_ttl" {
				p.MinTTL = int(v)
			} else {
				p.MaxTTL = int(v)
			}
		}
		out = append(out, p)
	}
	return out
}

func hasKey(nodes []*Node, key string) bool {
	for _, n := range nodes {
		if n.Key.Text == key {
			return true
		}
	}
	return false
}

// secondsKW is a duration written as whole seconds.
func secondsKW[T any](name, doc string, min, max int64, field func(*T) *time.Duration) keyword[T] {
	return keyword[T]{Name: name, Status: Supported, Doc: doc, Parse: func(b *builder, n *Node, v *T) {
		b.noBlock(n)
		if x, ok := b.intArg(n, min, max); ok {
			*field(v) = time.Duration(x) * time.Second
		}
	}}
}

// validIfName reports whether s can be a Linux interface name.
func validIfName(s string) bool {
	if len(s) == 0 || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '/' || c == ':' || c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// wholeSecondsKW is a timer keepalived reads as an unsigned integer
// number of seconds.
func wholeSecondsKW[T any](name, doc string, field func(*T) *time.Duration, bit fieldSet) keyword[T] {
	return keyword[T]{Name: name, Status: Supported, Doc: doc, Parse: func(b *builder, n *Node, v *T) {
		b.noBlock(n)
		if x, ok := b.intArg(n, 0, 4294967295); ok {
			*field(v) = time.Duration(x) * time.Second
			markSet(v, bit)
		}
	}}
}
