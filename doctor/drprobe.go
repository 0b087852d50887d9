package doctor

import (
	"fmt"
	"net/netip"
)

// ---- VD705/VD706: the DR path from this director to each real server ----
//
// A DR director forwards the client's frames unchanged but for the
// destination MAC: their IP source is the client's, not the director's.
// A filter between the director and the real servers that lets a host
// send only its own addresses (libvirt's clean-traffic/no-ip-spoofing, a
// cloud's source/destination check, switch port security) drops every one
// of them, while the health checks, sent from the director's own address,
// pass. Nothing in the director's state shows it.
//
// The probe (drprobe_linux.go, with package internal/drpath) sends each
// real server, to its MAC, a TCP SYN for VIP:port twice: once from this
// host's own address (the control: the real server answers it straight
// back, SYN-ACK or RST) and once from an unused address of the same
// subnet, as a forwarded client frame would come. The real server answers
// that one too, and to send its answer it must first ask by ARP broadcast
// who has the unused address: that request is what the director captures
// as proof that the spoofed frame arrived.

// DRProbe is what probing one real server of a DR service found.
type DRProbe struct {
	Service   string     `json:"service"` // VIP:port
	Real      netip.Addr `json:"real"`
	RealMAC   string     `json:"real_mac,omitempty"`
	Interface string     `json:"interface"`
	// Own is this host's address on Interface, the control probe's source;
	// Spoofed the unused address the other probe came from.
	Own     netip.Addr `json:"own"`
	Spoofed netip.Addr `json:"spoofed,omitempty"`
	Sent    int        `json:"sent"` // SYNs sent of each kind
	// ControlAnswered: the real server answered the SYN from Own;
	// SpoofAnswered: it asked for (or answered) the spoofed address.
	ControlAnswered bool   `json:"control_answered"`
	SpoofAnswered   bool   `json:"spoof_answered"`
	ControlSeen     string `json:"control_seen,omitempty"`
	SpoofSeen       string `json:"spoof_seen,omitempty"`
	Wait            string `json:"wait,omitempty"`
	// Err says why the probe could not run (then nothing else counts).
	Err string `json:"err,omitempty"`
}

func checkDRPath(in *Input) []Finding {
	var out []Finding
	for _, p := range in.DRProbes {
		where := fmt.Sprintf("real server %s of %s", p.Real, p.Service)
		switch {
		case p.Err != "":
			out = append(out, Finding{Code: "VD705", Severity: Info, Interface: p.Interface,
				Summary: fmt.Sprintf("The DR path to %s could not be probed: %s.", where, p.Err),
				Fix:     "See docs/doctor.md, VD705, for what the probe needs (root, an IPv4 service, a free address in the subnet).",
			})
		case p.ControlAnswered && !p.SpoofAnswered:
			out = append(out, Finding{Code: "VD705", Severity: Crit, Interface: p.Interface,
				Summary: fmt.Sprintf("Frames this director forwards do not reach %s: a SYN for %s sent to its MAC from this host's own address %s is answered, the same SYN with another source address (%s, as a forwarded client frame has) never arrives. Something between the two drops frames whose IP source is not this host's: typically the hypervisor's or cloud's anti-spoofing filter (libvirt clean-traffic or no-ip-spoofing, an OpenStack port security group, AWS/GCP/Azure source/destination check, switch port security). Clients time out while the health checks pass.", p.Real, p.Service, p.Own, p.Spoofed),
				Evidence: []string{
					fmt.Sprintf("control: %d SYN(s) %s -> %s via %s (%s) on %s: answered: %s", p.Sent, p.Own, p.Service, p.RealMAC, p.Real, p.Interface, p.ControlSeen),
					fmt.Sprintf("probe: %d SYN(s) %s -> %s via %s: no ARP request for %s and no answer from %s within %s", p.Sent, p.Spoofed, p.Service, p.RealMAC, p.Spoofed, p.Real, p.Wait),
				},
				Fix: "Allow this director to send frames with any IP source (or the clients' sources) on this interface: turn off the VM's clean-traffic/no-ip-spoofing nwfilter, disable the instance's source/destination check (AWS), set can_ip_forward (GCP) or IP forwarding on the NIC (Azure), add allowed_address_pairs 0.0.0.0/0 (OpenStack); or use lb_kind NAT/FNAT, whose frames carry the director's address.",
			})
		case !p.ControlAnswered && !p.SpoofAnswered:
			out = append(out, Finding{Code: "VD706", Severity: Warn, Interface: p.Interface,
				Summary:  fmt.Sprintf("%s does not answer a SYN for %s sent to its MAC %s, even from this host's own address: it does not hold the VIP, a firewall there drops it, or the MAC is stale. Health checks to its own address can still pass while every client connection scheduled to it fails.", where, p.Service, p.RealMAC),
				Evidence: []string{fmt.Sprintf("%d SYN(s) %s -> %s via %s on %s and %d from %s: no answer within %s", p.Sent, p.Own, p.Service, p.RealMAC, p.Interface, p.Sent, p.Spoofed, p.Wait)},
				Fix:      fmt.Sprintf("On %s: put %s on lo (`ip addr add %s/32 dev lo`, arp_ignore=1, arp_announce=2) and accept TCP to it; run `vigil doctor -f` with this configuration there (VD702, VD704).", p.Real, vipOf(p.Service), vipOf(p.Service)),
			})
		default:
			out = append(out, Finding{Code: "VD705", Severity: Ok, Interface: p.Interface,
				Summary: fmt.Sprintf("frames with a client's source address reach %s (%s)", where, p.SpoofSeen),
			})
		}
	}
	return out
}

func vipOf(service string) string {
	if ap, err := netip.ParseAddrPort(service); err == nil {
		return ap.Addr().String()
	}
	return service
}
