package doctor

import (
	"fmt"
	"strings"
	"time"

	"vigil/control"
)

// checkBFD explains BFD sessions (bfd_instance) that are not Up, and
// sessions that are Up but unhealthy, from the daemon's status and the
// host's firewall:
//
//   - VD901: nothing at all received from the neighbor;
//   - VD902: the host firewall has a rule dropping UDP 3784;
//   - VD903: packets dropped for a TTL below 255 (RFC 5881 single hop);
//   - VD904: stuck in Init: we hear the neighbor, it does not hear us;
//   - VD905: the session flaps, or the peer slows the negotiated intervals;
//   - VD906: the BFD process died and was started again.
func checkBFD(in *Input) []Finding {
	if in.Status == nil || len(in.Status.BFD) == 0 {
		return nil
	}
	var out []Finding
	fwRules := bfdFirewallRules(in)
	for _, s := range in.Status.BFD {
		var before *control.BFDSessionStatus
		if in.Before != nil {
			for i := range in.Before.BFD {
				if in.Before.BFD[i].Name == s.Name {
					before = &in.Before.BFD[i]
				}
			}
		}
		ev := []string{fmt.Sprintf("session %s to %s: %s (remote %s), sent %d, received %d, since %s", s.Name, s.Peer, s.State,
			s.RemoteState, s.Sent, s.Received, ago(in.Now, s.Since))}
		if s.LastDown != "" {
			ev = append(ev, fmt.Sprintf("last down %s: %s", ago(in.Now, s.LastDownAt), s.LastDown))
		}
		if s.SendError != "" {
			ev = append(ev, "send error: "+s.SendError)
		}
		found := false
		add := func(f Finding) {
			f.Instance = s.Name
			f.Evidence = append(append([]string{}, ev...), f.Evidence...)
			out = append(out, f)
			found = true
		}
		if n := s.Drops["ttl"]; n > 0 {
			sev := Info
			if s.State != "Up" || before == nil || before.Drops["ttl"] < n {
				sev = Warn
			}
			add(Finding{Code: "VD903", Severity: sev,
				Summary:  fmt.Sprintf("BFD packets from %s arrive with a TTL (hop limit) below 255 and are dropped: a router sits between the two, or the peer sends a lower TTL.", s.Peer),
				Evidence: []string{fmt.Sprintf("dropped for TTL: %d", n)},
				Fix:      "RFC 5881 single hop needs both ends on one link sending TTL 255: set `ttl 255` / `hoplimit 255` on the peer (keepalived's man page gives 64 as the IPv6 default), or allow the reduction with `max_hops N` here if the path really has routers.",
			})
		}
		if s.State != "Up" && s.Received == 0 {
			f := Finding{Code: "VD901", Severity: Crit,
				Summary: fmt.Sprintf("BFD session %s has never heard %s: nothing arrives on UDP 3784 from it.", s.Name, s.Peer),
				Fix:     "Check that the neighbor runs a BFD session back to this address (its neighbor_ip / peer is our source_ip), that nothing between drops UDP 3784 (see VD902), and that source_ip is an address of this host.",
			}
			if len(fwRules) > 0 {
				f.Evidence = append(f.Evidence, "the host firewall has rules for UDP 3784 (VD902)")
			}
			add(f)
		}
		if s.State != "Up" && len(fwRules) > 0 {
			add(Finding{Code: "VD902", Severity: Crit,
				Summary:  "The host firewall has a rule that drops or rejects UDP port 3784 (single-hop BFD): the session cannot come up.",
				Evidence: fwRules,
				Fix:      "Accept UDP 3784 from the neighbor before that rule (and source ports 49152-65535 on the way out).",
			})
		}
		if s.State == "Init" || (s.State == "Down" && s.Received > 0 && s.RemoteState == "Down" && s.LastRx.After(in.Now.Add(-3*time.Second))) {
			add(Finding{Code: "VD904", Severity: Crit,
				Summary: fmt.Sprintf("BFD session %s hears %s, but the neighbor does not hear us: it keeps reporting Down.", s.Name, s.Peer),
				Fix:     "Our packets are lost on the way to the neighbor or dropped there: its firewall on UDP 3784, its TTL check (we send 255), or it expects another source address (set source_ip to the address its configuration names).",
			})
		}
		slower := s.RemoteMinRx > s.MinTx || s.RemoteMinTx > s.MinRx
		flapping := s.Flaps > 0 && (before == nil || s.Flaps > before.Flaps || in.Now.Sub(s.LastDownAt) < 10*time.Minute)
		if s.State == "Up" && (slower || flapping) {
			sev := Info
			if flapping {
				sev = Warn
			}
			f := Finding{Code: "VD905", Severity: sev,
				Evidence: []string{fmt.Sprintf("we ask min_tx %v, min_rx %v, multiplier %d; the peer asks min_rx %v, min_tx %v, multiplier %d; negotiated tx %v, rx %v, detection time %v; flaps %d",
					time.Duration(s.MinTx), time.Duration(s.MinRx), s.Multiplier, time.Duration(s.RemoteMinRx), time.Duration(s.RemoteMinTx),
					s.RemoteMultiplier, time.Duration(s.TxInterval), time.Duration(s.RxInterval), time.Duration(s.DetectTime), s.Flaps)},
			}
			if r := in.Status.BFDRunner; r != nil {
				f.Evidence = append(f.Evidence, fmt.Sprintf("the BFD timer fired at most %v late", time.Duration(r.WakeLateMax)))
			}
			if flapping {
				f.Summary = fmt.Sprintf("BFD session %s flaps (%d times Up to Down): the detection time of %v is too tight for this path or one of the hosts.", s.Name, s.Flaps, time.Duration(s.DetectTime))
				f.Fix = "Raise min_rx/min_tx or multiplier on both ends until the session holds, or find what stalls a host (CPU pressure, see VD603/VD604)."
			} else {
				f.Summary = fmt.Sprintf("The neighbor %s asks for slower BFD intervals than this end: detection takes %v, not what min_rx/min_tx/multiplier here suggest.", s.Peer, time.Duration(s.DetectTime))
				f.Fix = "Use the same min_rx, min_tx and multiplier on both ends."
			}
			add(f)
		}
		if !found {
			out = append(out, Finding{Code: "VD901", Severity: Ok, Instance: s.Name,
				Summary: fmt.Sprintf("BFD session %s to %s is %s.", s.Name, s.Peer, s.State)})
		}
	}
	if r := in.Status.BFDRunner; r != nil && r.Restarts > 0 {
		// While it restarts, every session is down (track_bfd FAULT,
		// BFD_CHECK down) until its peer answers the new process.
		sev := Info
		if r.PID == 0 || (in.Before != nil && in.Before.BFDRunner != nil && r.Restarts > in.Before.BFDRunner.Restarts) {
			sev = Warn
		}
		running := fmt.Sprintf("it runs as pid %d", r.PID)
		if r.PID == 0 {
			running = "none runs at the moment"
		}
		out = append(out, Finding{Code: "VD906", Severity: sev,
			Summary:  fmt.Sprintf("The BFD process (vigil _bfd) died and was started again %d times since the daemon started; its sessions were down each time.", r.Restarts),
			Evidence: []string{fmt.Sprintf("bfd_runner: restarts %d; %s", r.Restarts, running)},
			Fix:      "Find why it ended: the daemon's log says \"the BFD process is not running\" with the reason, its stderr (a panic) follows it in the journal, and dmesg shows an OOM kill or a signal."})
	}
	return out
}

// bfdFirewallRules returns the firewall rules that mention port 3784 and
// drop or reject.
func bfdFirewallRules(in *Input) []string {
	return droppingRules(in, func(l, _ string) bool { return strings.Contains(l, "3784") })
}
