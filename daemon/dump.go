package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"vigil/addr"
	"vigil/vrrp"
)

// The dumps keepalived writes on SIGUSR1 (data), SIGUSR2 (stats) and its
// JSON signal, in the files and the shapes keepalived 2.2.7 uses, so that
// tools written for them (keepalived-exporter reads the JSON, or the two
// text files) work against vigil unchanged. The JSON has keepalived's
// structure: an array with one {"data": {...}, "stats": {...}} object per
// vrrp_instance, with keepalived's key names and value kinds.

// DumpKind names a dump.
type DumpKind string

const (
	DumpData  DumpKind = "data"
	DumpStats DumpKind = "stats"
	DumpJSON  DumpKind = "json"
)

// DefaultDumpDir is where keepalived writes keepalived.data, .stats and
// .json.
const DefaultDumpDir = "/tmp"

// DumpPath is the file a dump of kind is written to in dir.
func DumpPath(dir string, kind DumpKind) string {
	if dir == "" {
		dir = DefaultDumpDir
	}
	return filepath.Join(dir, "keepalived."+string(kind))
}

// dumpInstance is what a dump shows of one instance, copied on the loop.
type dumpInstance struct {
	// spec is read for the settings only the dumps print; a running
	// spec does not change (a reload replaces it).
	spec     *instanceSpec
	eng      vrrp.Config
	st       vrrp.Status
	ifname   string
	vmac     string
	vips     []addr.VIP
	excluded []addr.VIP
	since    time.Time
}

type dumpSnapshot struct {
	routerID string
	insts    []dumpInstance
}

func (d *Daemon) dumpSnapshot(ctx context.Context) (dumpSnapshot, error) {
	var s dumpSnapshot
	err := d.call(ctx, func(time.Time) { s = d.dumpCopy() })
	return s, err
}

// dumpCopy copies what a dump shows; on the loop.
func (d *Daemon) dumpCopy() dumpSnapshot {
	var s dumpSnapshot
	if d.cfg != nil {
		s.routerID = d.cfg.Global.RouterID
	}
	for _, in := range d.insts {
		// The engine's configuration with the configured preemption
		// (the connection sync's hold is not configuration).
		eng := in.e.Config()
		eng.NoPreempt = in.spec.noPreempt
		di := dumpInstance{spec: in.spec, eng: eng, st: d.instStatus(in), ifname: in.spec.ifname, vmac: in.spec.vmac(), since: in.since()}
		for v := range in.vips() {
			// As configured: the engine also excludes the VIPs of the
			// other family, which the dumps list as VIPs.
			if slices.Contains(in.spec.m().excluded, v.Prefix) {
				di.excluded = append(di.excluded, v)
			} else {
				di.vips = append(di.vips, v)
			}
		}
		byAddr := func(a, b addr.VIP) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) }
		slices.SortFunc(di.vips, byAddr)
		slices.SortFunc(di.excluded, byAddr)
		s.insts = append(s.insts, di)
	}
	return s
}

// Checking reports whether virtual servers and their health checks run
// (keepalived starts its checker child only for them). Call it on the
// loop, from Options.OnReady.
func (d *Daemon) Checking() bool { return d.bal != nil }

// WriteDump writes a dump of kind to w.
func (d *Daemon) WriteDump(ctx context.Context, kind DumpKind, w io.Writer) error {
	s, err := d.dumpSnapshot(ctx)
	if err != nil {
		return err
	}
	switch kind {
	case DumpData:
		return writeData(w, s)
	case DumpStats:
		return writeStats(w, s)
	case DumpJSON:
		return writeJSON(w, s)
	}
	return fmt.Errorf("unknown dump %q (expected data, stats or json)", kind)
}

// Dump writes a dump of kind to its keepalived file in dir (DefaultDumpDir
// when empty) and returns the path. The file is written beside and renamed
// over the old one, mode 0600 as keepalived's: /tmp is shared, so a
// symlink planted at the path is replaced, never followed (the writeFile
// edge).
func (d *Daemon) Dump(ctx context.Context, kind DumpKind, dir string) (string, error) {
	path := DumpPath(dir, kind)
	if err := d.host.writeFile(path, func(w io.Writer) error { return d.WriteDump(ctx, kind, w) }); err != nil {
		return "", err
	}
	return path, nil
}

// keepalived's state numbers (VRRP_STATE_*).
func stateNumber(s vrrp.State) int {
	switch s {
	case vrrp.StateBackup:
		return 1
	case vrrp.StateMaster:
		return 2
	case vrrp.StateFault:
		return 3
	}
	return 0
}

func seconds(d time.Duration) float64 { return d.Seconds() }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// vipLine is a VIP as keepalived lists it: "192.0.2.100/24 dev eth0 scope
// global", with " set" while it is installed.
func vipLine(v addr.VIP, ifname string, set bool) string {
	s := v.String()
	if v.Dev == "" {
		s += " dev " + ifname
	}
	if !strings.Contains(s, " scope ") {
		s += " scope global"
	}
	if set {
		s += " set"
	}
	return s
}

type jsonData struct {
	Iname                string   `json:"iname"`
	DontTrackPrimary     int      `json:"dont_track_primary"`
	SkipCheckAdvAddr     int      `json:"skip_check_adv_addr"`
	StrictMode           int      `json:"strict_mode"`
	VmacIfname           string   `json:"vmac_ifname"`
	IfpIfname            string   `json:"ifp_ifname"`
	MasterPriority       int      `json:"master_priority"`
	LastTransition       float64  `json:"last_transition"`
	GarpDelay            float64  `json:"garp_delay"`
	GarpRefresh          float64  `json:"garp_refresh"`
	GarpRep              int      `json:"garp_rep"`
	GarpRefreshRep       int      `json:"garp_refresh_rep"`
	GarpLowerPrioDelay   float64  `json:"garp_lower_prio_delay"`
	GarpLowerPrioRep     int      `json:"garp_lower_prio_rep"`
	LowerPrioNoAdvert    int      `json:"lower_prio_no_advert"`
	HigherPrioSendAdvert int      `json:"higher_prio_send_advert"`
	Vrid                 int      `json:"vrid"`
	BasePriority         int      `json:"base_priority"`
	EffectivePriority    int      `json:"effective_priority"`
	Vipset               bool     `json:"vipset"`
	PromoteSecondaries   bool     `json:"promote_secondaries"`
	AdverInt             float64  `json:"adver_int"`
	MasterAdverInt       float64  `json:"master_adver_int"`
	Accept               int      `json:"accept"`
	Nopreempt            bool     `json:"nopreempt"`
	PreemptDelay         float64  `json:"preempt_delay"`
	State                int      `json:"state"`
	Wantstate            int      `json:"wantstate"`
	Version              int      `json:"version"`
	SMTPAlert            bool     `json:"smtp_alert"`
	NotifyDeleted        bool     `json:"notify_deleted"`
	Vips                 []string `json:"vips"`
	Evips                []string `json:"evips,omitempty"`
	AuthType             *int     `json:"auth_type,omitempty"`
	AuthData             *string  `json:"auth_data,omitempty"`
}

type jsonStats struct {
	AdvertRcvd        uint64 `json:"advert_rcvd"`
	AdvertSent        uint64 `json:"advert_sent"`
	BecomeMaster      uint64 `json:"become_master"`
	ReleaseMaster     uint64 `json:"release_master"`
	PacketLenErr      uint64 `json:"packet_len_err"`
	AdvertIntervalErr uint64 `json:"advert_interval_err"`
	IPTTLErr          uint64 `json:"ip_ttl_err"`
	InvalidTypeRcvd   uint64 `json:"invalid_type_rcvd"`
	AddrListErr       uint64 `json:"addr_list_err"`
	InvalidAuthtype   uint64 `json:"invalid_authtype"`
	AuthtypeMismatch  uint64 `json:"authtype_mismatch"`
	AuthFailure       uint64 `json:"auth_failure"`
	PriZeroRcvd       uint64 `json:"pri_zero_rcvd"`
	PriZeroSent       uint64 `json:"pri_zero_sent"`
}

type jsonInstance struct {
	Data  jsonData  `json:"data"`
	Stats jsonStats `json:"stats"`
}

// keepalivedStats maps vigil's drop reasons onto keepalived's error
// counters. keepalived counts a v2 auth type that differs from ours as a
// type mismatch, and one it does not know as invalid; vigil tells only
// "differs", which covers both, so it goes to authtype_mismatch.
func keepalivedStats(c vrrp.Counters) jsonStats {
	return jsonStats{
		AdvertRcvd:        c.Received,
		AdvertSent:        c.Sent,
		BecomeMaster:      c.BecameMaster,
		ReleaseMaster:     c.ReleasedMaster,
		PacketLenErr:      c.Drops(vrrp.DropLength),
		AdvertIntervalErr: c.Drops(vrrp.DropInterval),
		IPTTLErr:          c.Drops(vrrp.DropTTL),
		InvalidTypeRcvd:   c.Drops(vrrp.DropType),
		AddrListErr:       c.Drops(vrrp.DropAddrCount) + c.Drops(vrrp.DropVIPs),
		AuthtypeMismatch:  c.Drops(vrrp.DropAuthType),
		AuthFailure:       c.Drops(vrrp.DropAuth),
		PriZeroRcvd:       c.PriorityZeroRcvd,
		PriZeroSent:       c.PriorityZeroSent,
	}
}

func jsonFor(in dumpInstance) jsonInstance {
	g := in.eng.GARP
	st := in.st
	set := st.OwnsVIPs
	j := jsonData{
		Iname:                st.Name,
		DontTrackPrimary:     b2i(in.spec.dontTrackPrimary),
		SkipCheckAdvAddr:     b2i(in.eng.SkipCheckAdvAddr),
		StrictMode:           b2i(in.spec.strict),
		VmacIfname:           in.vmac,
		IfpIfname:            in.spec.iface(),
		MasterPriority:       int(st.MasterPriority),
		GarpDelay:            seconds(g.MasterDelay),
		GarpRefresh:          seconds(g.MasterRefresh),
		GarpRep:              g.MasterRepeat,
		GarpRefreshRep:       g.MasterRefreshRepeat,
		GarpLowerPrioDelay:   seconds(g.LowerPrioDelay),
		GarpLowerPrioRep:     g.LowerPrioRepeat,
		LowerPrioNoAdvert:    b2i(in.eng.LowerPrioNoAdvert),
		HigherPrioSendAdvert: b2i(in.eng.HigherPrioSendAdvert),
		Vrid:                 int(st.VRID),
		BasePriority:         int(st.BasePriority),
		EffectivePriority:    int(st.Priority),
		Vipset:               set,
		PromoteSecondaries:   in.spec.promoteSecondaries,
		AdverInt:             seconds(st.AdvertInterval),
		MasterAdverInt:       seconds(st.MasterAdverInterval),
		Accept:               b2i(!in.eng.NoAccept),
		Nopreempt:            in.eng.NoPreempt,
		PreemptDelay:         seconds(in.eng.PreemptDelay),
		State:                stateNumber(st.State),
		Wantstate:            stateNumber(st.State),
		Version:              st.Version,
		SMTPAlert:            in.spec.smtpAlert,
		Vips:                 []string{},
	}
	if !in.since.IsZero() {
		// Microseconds, as keepalived prints them.
		j.LastTransition = math.Round(float64(in.since.UnixMicro())) / 1e6
	}
	if st.State == vrrp.StateMaster {
		// keepalived's master_priority is the priority of the master this
		// node last heard, which a master has not.
		j.MasterPriority = 0
	}
	if j.MasterAdverInt == 0 {
		j.MasterAdverInt = j.AdverInt
	}
	for _, v := range in.vips {
		j.Vips = append(j.Vips, vipLine(v, in.ifname, set))
	}
	for _, v := range in.excluded {
		j.Evips = append(j.Evips, vipLine(v, in.ifname, set))
	}
	if st.Version == 2 {
		t := int(in.eng.AuthType)
		j.AuthType = &t
		if t != 0 {
			p := in.eng.AuthPass
			j.AuthData = &p
		}
	}
	return jsonInstance{Data: j, Stats: keepalivedStats(st.Counters)}
}

func writeJSON(w io.Writer, s dumpSnapshot) error {
	out := []jsonInstance{}
	for _, in := range s.insts {
		out = append(out, jsonFor(in))
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// writeStats writes keepalived's SIGUSR2 file: per instance, the advert
// counters and the error counters under the same headings.
func writeStats(w io.Writer, s dumpSnapshot) error {
	var b strings.Builder
	for _, in := range s.insts {
		c := keepalivedStats(in.st.Counters)
		fmt.Fprintf(&b, "VRRP Instance: %s\n", in.st.Name)
		fmt.Fprintf(&b, "  Advertisements:\n    Received: %d\n    Sent: %d\n", c.AdvertRcvd, c.AdvertSent)
		fmt.Fprintf(&b, "  Became master: %d\n  Released master: %d\n", c.BecomeMaster, c.ReleaseMaster)
		fmt.Fprintf(&b, "  Packet Errors:\n    Length: %d\n    TTL: %d\n    Invalid Type: %d\n    Advertisement Interval: %d\n    Address List: %d\n",
			c.PacketLenErr, c.IPTTLErr, c.InvalidTypeRcvd, c.AdvertIntervalErr, c.AddrListErr)
		fmt.Fprintf(&b, "  Authentication Errors:\n    Invalid Type: %d\n    Type Mismatch: %d\n    Failure: %d\n",
			c.InvalidAuthtype, c.AuthtypeMismatch, c.AuthFailure)
		fmt.Fprintf(&b, "  Priority Zero:\n    Received: %d\n    Sent: %d\n", c.PriZeroRcvd, c.PriZeroSent)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func onOff(b bool) string {
	if b {
		return "enabled"
	}
	return "disabled"
}

// writeData writes keepalived's SIGUSR1 file: the configuration and state
// of each instance under the headings and "Name = value" lines keepalived
// uses (the ones tools read: instance, state, interface, VRID, priorities,
// VIPs), vigil's own facts after them.
func writeData(w io.Writer, s dumpSnapshot) error {
	var b strings.Builder
	b.WriteString("------< Global definitions >------\n")
	fmt.Fprintf(&b, " Router ID = %s\n", s.routerID)
	b.WriteString("------< VRRP Topology >------\n")
	for _, in := range s.insts {
		st, e := in.st, in.eng
		fmt.Fprintf(&b, " VRRP Instance = %s\n", st.Name)
		fmt.Fprintf(&b, "   VRRP Version = %d\n", st.Version)
		fmt.Fprintf(&b, "   State = %s\n", st.State)
		fmt.Fprintf(&b, "   Wantstate = %s\n", st.State)
		if len(st.Faults) > 0 {
			fmt.Fprintf(&b, "   Faults = %s\n", strings.Join(st.Faults, "; "))
		}
		if !in.since.IsZero() {
			fmt.Fprintf(&b, "   Last transition = %.6f (%s)\n", float64(in.since.UnixMicro())/1e6, in.since.Format("Mon Jan _2 15:04:05.000000 2006"))
		}
		if st.Reason != "" {
			fmt.Fprintf(&b, "   Last transition reason = %s\n", st.Reason)
		}
		fmt.Fprintf(&b, "   Interface = %s\n", in.spec.iface())
		if in.vmac != "" {
			fmt.Fprintf(&b, "   VMAC interface = %s\n", in.vmac)
		}
		fmt.Fprintf(&b, "   Using src_ip = %s\n", e.SrcAddr)
		if len(e.Peers) > 0 {
			b.WriteString("   Unicast Peer:\n")
			for _, p := range e.Peers {
				fmt.Fprintf(&b, "     %s\n", p)
			}
		} else if g := in.spec.mcastDst(e.Family); g.IsValid() {
			fmt.Fprintf(&b, "   Multicast address %s\n", g)
		}
		fmt.Fprintf(&b, "   Gratuitous ARP delay = %g\n", e.GARP.MasterDelay.Seconds())
		fmt.Fprintf(&b, "   Gratuitous ARP repeat = %d\n", e.GARP.MasterRepeat)
		fmt.Fprintf(&b, "   Gratuitous ARP refresh = %g\n", e.GARP.MasterRefresh.Seconds())
		fmt.Fprintf(&b, "   Gratuitous ARP refresh repeat = %d\n", e.GARP.MasterRefreshRepeat)
		fmt.Fprintf(&b, "   Virtual Router ID = %d\n", st.VRID)
		fmt.Fprintf(&b, "   Priority = %d\n", st.BasePriority)
		fmt.Fprintf(&b, "   Effective priority = %d\n", st.Priority)
		if st.MasterAddr.IsValid() {
			fmt.Fprintf(&b, "   Master router = %s\n", st.MasterAddr)
			fmt.Fprintf(&b, "   Master priority = %d\n", st.MasterPriority)
		}
		fmt.Fprintf(&b, "   Advert interval = %g sec\n", st.AdvertInterval.Seconds())
		fmt.Fprintf(&b, "   Master down interval = %g sec\n", st.MasterDownInterval.Seconds())
		fmt.Fprintf(&b, "   Accept = %s\n", onOff(!e.NoAccept))
		fmt.Fprintf(&b, "   Preempt = %s\n", onOff(!e.NoPreempt))
		if e.PreemptDelay > 0 {
			fmt.Fprintf(&b, "   Preempt delay = %g secs\n", e.PreemptDelay.Seconds())
		}
		fmt.Fprintf(&b, "   Promote_secondaries = %s\n", onOff(in.spec.promoteSecondaries))
		if st.Version == 2 {
			switch e.AuthType {
			case 1:
				b.WriteString("   Authentication type = SIMPLE_PASSWORD\n")
			default:
				b.WriteString("   Authentication type = none\n")
			}
		}
		if g := in.spec.m().syncGroup; g != "" {
			fmt.Fprintf(&b, "   Sync group = %s\n", g)
		}
		fmt.Fprintf(&b, "   Virtual IP (%d):\n", len(in.vips))
		for _, v := range in.vips {
			fmt.Fprintf(&b, "     %s\n", vipLine(v, in.ifname, st.OwnsVIPs))
		}
		if len(in.excluded) > 0 {
			fmt.Fprintf(&b, "   Virtual IP Excluded (%d):\n", len(in.excluded))
			for _, v := range in.excluded {
				fmt.Fprintf(&b, "     %s\n", vipLine(v, in.ifname, st.OwnsVIPs))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
