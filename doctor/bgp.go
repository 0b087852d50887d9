package doctor

import (
	"fmt"
	"strings"
	"time"

	"vigil/control"
)

// checkBGP explains BGP sessions (bgp_instance, a vigil extension) that
// do not establish, from the daemon's status (the speaker keeps the last
// error: a NOTIFICATION or a connection failure), the configuration and
// the host's firewall:
//
//   - VDA01: the router refused our OPEN for the AS numbers (RFC 4271
//     6.2, Bad Peer AS): local_as or remote_as differ from the router's;
//   - VDA02: TCP port 179 does not answer: filtered on the way, the router
//     has no route back to our address, or it expects a TCP MD5 password;
//   - VDA03: the same with a password set: the likeliest cause is an MD5
//     key that differs, since a router drops such segments silently;
//   - VDA04: the router refuses the connection (RST): it has no neighbor
//     for this address, or BGP does not run there;
//   - VDA05: no route to the neighbor from this host;
//   - VDA06: an established session flaps;
//   - VDA09: vigil holds the session down itself: its BFD session is
//     not Up (crit), or bfd_holddown runs after the BFD session flapped
//     (warn).
//
// VDA00 reports a healthy session, with what it announces.
func checkBGP(in *Input) []Finding {
	if in.Status == nil || len(in.Status.BGPInstances) == 0 {
		return nil
	}
	var out []Finding
	fw := bgpFirewallRules(in)
	for _, b := range in.Status.BGPInstances {
		announced := 0
		for _, r := range b.Routes {
			if r.Announced {
				announced++
			}
		}
		for _, s := range b.Sessions {
			password := false
			if in.Config != nil {
				if bi := in.Config.BGPInstance(b.Name); bi != nil {
					for _, n := range bi.Neighbors {
						if n.Addr.String() == s.Peer && n.Password != "" {
							password = true
						}
					}
				}
			}
			ev := []string{fmt.Sprintf("bgp_instance %s (AS %d) to %s (AS %d): %s since %s, %d flaps", b.Name, b.LocalAS, s.Peer, s.RemoteAS,
				s.State, ago(in.Now, s.Since), s.Flaps)}
			if s.LastError != "" {
				ev = append(ev, fmt.Sprintf("last error %s: %s", ago(in.Now, s.LastErrorAt), s.LastError))
			}
			f := Finding{Instance: b.Name, Evidence: ev}
			e := strings.ToLower(s.LastError)
			switch {
			case s.HeldDown != "":
				// vigil itself keeps the session down: whatever its last
				// error says (gobgp's "admin-down"), TCP 179 is not the cause.
				f.Evidence = append(f.Evidence, "held down by vigil: "+s.HeldDown)
				if strings.HasPrefix(s.HeldDown, "bfd_holddown") {
					f.Code, f.Severity = "VDA09", Warn
					f.Summary = fmt.Sprintf("vigil holds the BGP session to %s down because its BFD session flapped (%s); this director's routes stay withdrawn until then.", s.Peer, s.HeldDown)
					f.Fix = "Find why the BFD session flaps (the VD9xx findings: packets lost on the path, a stalled host, a firewall). If the router must have this director back sooner after a flap, lower bfd_holddown or bfd_holddown_max on the neighbor."
				} else {
					f.Code, f.Severity = "VDA09", Crit
					f.Summary = fmt.Sprintf("vigil keeps the BGP session to %s down because its BFD session is not Up (%s); this director's routes are withdrawn.", s.Peer, s.HeldDown)
					f.Fix = "Bring the BFD session up (the VD9xx findings say why it is down): the BGP session follows it, after bfd_holddown if it flapped."
				}
			case s.State == "Established":
				var before *control.BGPPeerStatus
				if in.Before != nil {
					for i := range in.Before.BGP {
						if in.Before.BGP[i].Peer == s.Peer && in.Before.BGP[i].Instance == s.Instance {
							before = &in.Before.BGP[i]
						}
					}
				}
				if s.Flaps > 0 && (before == nil || before.Flaps < s.Flaps || in.Now.Sub(s.Since) < 10*time.Minute) {
					f.Code, f.Severity = "VDA06", Warn
					f.Summary = fmt.Sprintf("The BGP session to %s flaps (%d times down since vigil started); each flap withdraws this director's routes.", s.Peer, s.Flaps)
					f.Fix = "Look at the last error: a hold timer expiring means keepalives are lost or a host stalls (VD603/VD604); raise hold_time on both ends or fix the path."
				} else {
					f.Code, f.Severity = "VDA00", Ok
					f.Summary = fmt.Sprintf("BGP session %s to %s is Established; %d of %d prefixes announced.", b.Name, s.Peer, announced, len(b.Routes))
				}
			case strings.Contains(e, "bad peer as") || strings.Contains(e, "refused our open"):
				f.Code, f.Severity = "VDA01", Crit
				f.Summary = fmt.Sprintf("The router %s refuses the session for its AS numbers: our local_as is %d, and we expect it to be AS %d.", s.Peer, b.LocalAS, s.RemoteAS)
				if !strings.Contains(e, "bad peer as") {
					f.Summary = fmt.Sprintf("The router %s refuses our OPEN: most often our local_as %d is not the AS it expects for this director (or it refuses the router ID or the hold time).", s.Peer, b.LocalAS)
				}
				f.Fix = "Make local_as here equal the router's `neighbor ... remote-as` for this address, and remote_as here equal the router's own AS."
			case strings.Contains(e, "connection refused"):
				f.Code, f.Severity = "VDA04", Crit
				f.Summary = fmt.Sprintf("The router %s refuses TCP connections to port 179: BGP does not run there or it has no neighbor for this host's address.", s.Peer)
				f.Fix = "Configure this director's address as a neighbor on the router (the address vigil dials from is its route's source towards the router)."
			case strings.Contains(e, "no route to host") || strings.Contains(e, "network is unreachable"):
				f.Code, f.Severity = "VDA05", Crit
				f.Summary = fmt.Sprintf("This host has no route to the BGP neighbor %s.", s.Peer)
				f.Fix = "Add an address on the neighbor's subnet or a route to it."
			case s.State != "Established" && (strings.Contains(e, "timeout") || strings.Contains(e, "timed out") || len(fw) > 0):
				if password {
					f.Code, f.Severity = "VDA03", Crit
					f.Summary = fmt.Sprintf("TCP port 179 on %s never answers and a password is set: the TCP MD5 keys probably differ (a router drops segments with a wrong signature without a word).", s.Peer)
					f.Fix = "Set the same password on both ends (`neighbor ... password` on the router); if they match, see VDA02."
				} else {
					f.Code, f.Severity = "VDA02", Crit
					f.Summary = fmt.Sprintf("TCP port 179 on %s never answers: a firewall drops it, the router has no route back to this host, or it expects a TCP MD5 password.", s.Peer)
					f.Fix = "Allow TCP 179 between this host and the router both ways, give the router a route to this host's address, and check whether the router's neighbor has a password."
				}
				f.Evidence = append(f.Evidence, fw...)
			case s.State != "Established" && in.Now.Sub(s.Since) > 30*time.Second:
				f.Code, f.Severity = "VDA02", Warn
				f.Summary = fmt.Sprintf("The BGP session to %s has not established for %s.", s.Peer, ago(in.Now, s.Since))
				f.Fix = "See the last error; check TCP 179 both ways, the AS numbers and the password on both ends."
			default:
				continue
			}
			out = append(out, f)
		}
	}
	return out
}

// bgpFirewallRules returns the firewall rules that mention port 179 (or
// the bgp service name) and drop or reject.
func bgpFirewallRules(in *Input) []string {
	return droppingRules(in, func(l, lo string) bool {
		return strings.Contains(l, " 179 ") || strings.HasSuffix(l, " 179") || strings.Contains(lo, " bgp ")
	})
}
