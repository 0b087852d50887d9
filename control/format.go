package control

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteStatus prints a status document as the tables `vigil status` shows.
// now is passed in so the output of a test is stable.
func WriteStatus(w io.Writer, s Status, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "vigil %s  pid %d  config %s  up %s\n", s.Version, s.PID, s.ConfigFile, since(now, s.Started))
	if r := s.LastReload; r != nil {
		verdict := "applied"
		if !r.OK {
			verdict = "REJECTED, running config kept: " + strings.Join(r.Errors, "; ")
		}
		fmt.Fprintf(tw, "last reload %s ago: %s\n", since(now, r.At), verdict)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "INSTANCE\tIFACE\tVRID\tVER\tSTATE\tPRIO\tMASTER\tVIPS\tSINCE\tREASON")
	for _, in := range s.Instances {
		prio := fmt.Sprint(in.Priority)
		if in.Priority != in.BasePriority {
			prio = fmt.Sprintf("%d (base %d)", in.Priority, in.BasePriority)
		}
		master := in.MasterAddr
		if master != "" && in.MasterPriority > 0 {
			master = fmt.Sprintf("%s/%d", master, in.MasterPriority)
		}
		if master == "" {
			master = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\tv%d\t%s\t%s\t%s\t%s\t%s\t%s\n", in.Name, in.Interface, in.VRID, in.Version,
			in.State, prio, master, strings.Join(in.VIPs, ","), since(now, in.Since), in.Reason)
	}
	if len(s.Groups) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "SYNC GROUP\tSTATE\tMEMBERS")
		for _, g := range s.Groups {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", g.Name, g.State, strings.Join(g.Members, ","))
		}
	}
	if len(s.Services) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "VIRTUAL SERVER\tKIND\tSCHED\tACTIVE\tREAL SERVER\tWEIGHT\tHEALTH")
		for _, v := range s.Services {
			active := "yes"
			if !v.Active {
				active = "no (backup)"
			}
			if !v.Quorum {
				active += ", quorum lost"
			}
			if len(v.RealServers) == 0 {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t-\t-\t-\n", v.Name, v.Kind, v.Scheduler, active)
			}
			for i, r := range v.RealServers {
				health := "up"
				if !r.Up {
					health = "DOWN " + r.Detail
				}
				if i == 0 {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", v.Name, v.Kind, v.Scheduler, active, r.Addr, r.Weight, health)
				} else {
					fmt.Fprintf(tw, "\t\t\t\t%s\t%d\t%s\n", r.Addr, r.Weight, health)
				}
			}
		}
	}
	if len(s.BFD) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "BFD SESSION\tNEIGHBOR\tSTATE\tREMOTE\tDISCR (LOCAL/REMOTE)\tTX\tRX\tDETECT\tFLAPS\tSINCE\tLAST DOWN")
		for _, b := range s.BFD {
			last := b.LastDown
			if last == "" {
				last = "-"
			} else {
				last = fmt.Sprintf("%s ago: %s", since(now, b.LastDownAt), last)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\t%d\t%s\t%s\n", b.Name, b.Peer, b.State, b.RemoteState,
				b.LocalDisc, b.RemoteDisc, time.Duration(b.TxInterval), time.Duration(b.RxInterval), time.Duration(b.DetectTime),
				b.Flaps, since(now, b.Since), last)
		}
	}
	writeBGP(tw, s.BGPInstances, now)
	writeSync(tw, s.Sync, now)
	return tw.Flush()
}

func writeBGP(tw io.Writer, bs []BGPStatus, now time.Time) {
	if len(bs) == 0 {
		return
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "BGP INSTANCE\tNEIGHBOR\tAS\tSTATE\tSINCE\tFLAPS\tSENT\tLAST ERROR")
	for _, b := range bs {
		name := fmt.Sprintf("%s (AS %d, id %s)", b.Name, b.LocalAS, b.RouterID)
		if len(b.Sessions) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\n", name)
		}
		for i, n := range b.Sessions {
			if i > 0 {
				name = ""
			}
			last := "-"
			if n.LastError != "" {
				last = n.LastError + " (" + since(now, n.LastErrorAt) + " ago)"
			}
			sinceText := "-"
			if !n.Since.IsZero() {
				sinceText = since(now, n.Since)
			}
			state := n.State
			if n.HeldDown != "" {
				state += " (held down: " + n.HeldDown + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%d\t%s\n", name, n.Peer, n.RemoteAS, state, sinceText, n.Flaps, n.Advertised, last)
		}
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "BGP INSTANCE\tPREFIX\tANNOUNCED\tATTRIBUTES\tWHY")
	for _, b := range bs {
		for _, r := range b.Routes {
			ann := "no"
			if r.Announced {
				ann = "yes"
			}
			attrs := strings.Join(r.Communities, " ")
			if r.MED != nil {
				attrs = strings.TrimSpace(attrs + fmt.Sprintf(" med %d", *r.MED))
			}
			if attrs == "" {
				attrs = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", b.Name, r.Prefix, ann, attrs, strings.Join(r.Reasons, "; "))
		}
	}
}

// WriteConns prints connections like `ipvsadm -lnc`.
func WriteConns(w io.Writer, conns []Conn) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PRO\tEXPIRE\tSTATE\tSOURCE\tVIRTUAL\tLOCAL\tDESTINATION")
	for _, c := range conns {
		local := c.Local
		if local == "" {
			local = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", strings.ToUpper(c.Proto), mmss(time.Duration(c.Expires)), c.State, c.Client, c.Virtual, local, c.Real)
	}
	return tw.Flush()
}

func since(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Round(time.Second).String()
}

func mmss(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}
