package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"time"

	"vigil/control"
	"vigil/doctor"
)

// cmdDoctor gathers the daemon's status, the configuration, host facts and
// a short capture on every VRRP interface, runs every doctor check and
// prints the findings. It exits 0 when nothing is warn or crit, 1 otherwise.
func cmdDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ctl := fs.String("control", control.DefaultPath, "control socket `path` of the running vigil (empty: do not ask)")
	file := fs.String("f", "", "configuration `file` (default: the one the running daemon loaded, else /etc/keepalived/keepalived.conf)")
	id := fs.String("i", "", "config `id` for @ID lines (default: short hostname)")
	sniff := fs.Duration("sniff", 3*time.Second, "how long to listen to the VRRP traffic on each interface")
	asJSON := fs.Bool("json", false, "print the findings as JSON")
	drProbe := fs.Bool("dr-probe", true, "probe the DR path to each real server of the DR services this host directs, with a TCP SYN from its own address and one from an unused address of the subnet (VD705)")
	var peers []string
	fs.Func("peer", "metrics `address` (host:port of its --metrics) of another director of the same virtual servers, whose tables to compare with this one's (VDA07); repeatable", func(v string) error {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return fmt.Errorf("expected host:port: %w", err)
		}
		peers = append(peers, v)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vigil doctor: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *sniff < 0 || *sniff > time.Minute {
		fmt.Fprintf(stderr, "vigil doctor: -sniff %v: expected between 0s and 1m\n", *sniff)
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "vigil doctor: not root: the capture, the firewall dump and the ARP probes will fail; findings will be partial")
	}
	if !*asJSON {
		fmt.Fprintf(stderr, "vigil doctor: listening to VRRP traffic for %v...\n", *sniff)
	}
	in := doctor.Gather(ctx, doctor.Options{ConfigFile: *file, DefaultConfig: "/etc/keepalived/keepalived.conf", ConfigID: *id, ControlPath: *ctl, Sniff: *sniff, DRProbe: *drProbe, Peers: peers})
	rep := doctor.Report{Findings: doctor.Diagnose(in)}
	switch {
	case in.Status != nil:
		rep.Notes = append(rep.Notes, fmt.Sprintf("daemon: vigil %s, pid %d, %d instance(s)", in.Status.Version, in.Status.PID, len(in.Status.Instances)))
	case in.StatusTimeout:
		rep.Notes = append(rep.Notes, "daemon: did not answer (see VD002)")
	default:
		rep.Notes = append(rep.Notes, "daemon: none running; diagnosis from the configuration, the host and the capture only")
	}
	if in.Config != nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("config: %s, %d vrrp_instance(s)", in.ConfigFile, len(in.Config.Instances)))
	} else if in.ConfigFile == "" {
		rep.Notes = append(rep.Notes, "config: none found (pass -f); configuration checks skipped")
	}
	ifaces := slices.Sorted(maps.Keys(in.Captures))
	for _, iface := range ifaces {
		c := in.Captures[iface]
		if c.Err != "" {
			rep.Notes = append(rep.Notes, fmt.Sprintf("capture on %s failed: %s", iface, c.Err))
			continue
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("capture on %s: %d advertising source(s) in %v", iface, len(c.Wire), c.Duration))
	}
	var err error
	if *asJSON {
		err = doctor.WriteJSON(stdout, rep)
	} else {
		err = doctor.WriteText(stdout, rep)
	}
	if err != nil {
		fmt.Fprintln(stderr, "vigil doctor:", err)
		return 2
	}
	if doctor.Problems(rep.Findings) > 0 {
		return 1
	}
	return 0
}
