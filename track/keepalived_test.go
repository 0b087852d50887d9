package track

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"vigil/internal/labtest"
	"vigil/internal/netlab"
	"vigil/internal/testenv"
)

// kaCase is one vrrp_instance following one tracker, in keepalived and in
// Aggregate.
type kaCase struct {
	ref     Ref
	result  Result
	block   string // the tracker's definition, for keepalived.conf
	content string // file content, for files
}

// TestAggregateMatchesKeepalived runs keepalived 2.2.7 in a lab namespace
// with one instance per case (base priority 100), each following one
// script, file or interface, reads the priorities and FAULTs it reports on
// its notify FIFO, and checks that Aggregate, given the result vigil's
// watchers would report, says the same.
func TestAggregateMatchesKeepalived(t *testing.T) {
	h, dir := kaLab(t, "trkka")
	ok := labtest.Script(t, dir, "ok.sh", "exit 0")
	bad := labtest.Script(t, dir, "bad.sh", "exit 1")
	var cases []kaCase
	script := func(pass bool, weight int, rev bool) {
		path, name := bad, "bad"
		if pass {
			path, name = ok, "ok"
		}
		n := fmt.Sprintf("s%d_%s", len(cases), name)
		cases = append(cases, kaCase{
			ref:    Ref{Kind: KindScript, Name: n, Weight: weight, Reverse: rev},
			result: Result{OK: pass},
			block:  fmt.Sprintf("vrrp_script %s {\n  script %s\n  interval 1\n}\n", n, path),
		})
	}
	for _, pass := range []bool{true, false} {
		for _, w := range []int{0, 10, -10} {
			for _, rev := range []bool{false, true} {
				script(pass, w, rev)
			}
		}
	}
	file := func(content string, weight int, rev bool) {
		n := fmt.Sprintf("f%d", len(cases))
		v, inRange := ParseValue([]byte(content))
		if !inRange {
			v = 0 // ignored: the value stays at its initial 0
		}
		cases = append(cases, kaCase{
			ref:     Ref{Kind: KindFile, Name: n, Weight: weight, Reverse: rev},
			result:  Result{OK: true, Value: v},
			block:   fmt.Sprintf("track_file %s {\n  file %s\n  weight %d\n}\n", n, filepath.Join(dir, n), weight),
			content: content,
		})
	}
	for _, c := range []string{"0\n", "3\n", "-4\n", "  7 junk\n", "2.9", "0x10", "010", "+6", "abc", "", "99999999999", "100", "-90", "-84"} {
		file(c, 3, false)
	}
	for _, c := range []string{"0", "1", "-2", "abc"} {
		file(c, 0, false)
		file(c, 0, true)
	}
	file("2", 5, true)
	file("-60", 5, true)
	file("1", -254, false)
	for _, w := range []int{0, 7, -7} {
		for _, rev := range []bool{false, true} {
			for _, ifname := range []string{"up0", "nocar"} {
				cases = append(cases, kaCase{
					ref:    Ref{Kind: KindInterface, Name: ifname, Weight: w, Reverse: rev},
					result: Result{OK: ifname == "up0"},
				})
			}
		}
	}

	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "global_defs {\n  script_user root\n  notify_fifo %s\n  vrrp_notify_priority_changes true\n}\n", fifo)
	for i, c := range cases {
		conf.WriteString(c.block)
		if c.ref.Kind == KindFile {
			if err := os.WriteFile(filepath.Join(dir, c.ref.Name), []byte(c.content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		kw := map[Kind]string{KindScript: "track_script", KindFile: "track_file", KindInterface: "track_interface"}[c.ref.Kind]
		rev := ""
		if c.ref.Reverse {
			rev = " reverse"
		}
		fmt.Fprintf(&conf, "vrrp_instance C%d {\n  interface eth0\n  virtual_router_id %d\n  priority 100\n  virtual_ipaddress {\n    192.0.2.%d/24\n  }\n  %s {\n    %s weight %d%s\n  }\n}\n",
			i, i+1, i+10, kw, c.ref.Name, c.ref.Weight, rev)
	}

	got := runKeepalived(t, h, fifo, conf.String())
	for i, c := range cases {
		delta, fault, reason := Aggregate([]Ref{c.ref}, Results{{c.ref.Kind, c.ref.Name}: c.result})
		want := kaState{fault: fault, prio: min(max(100+delta, 1), 254)}
		g, seen := got[fmt.Sprintf("C%d", i)]
		if !seen {
			t.Errorf("C%d %+v: keepalived reported nothing", i, c.ref)
			continue
		}
		if g.fault != want.fault || (!g.fault && g.prio != want.prio) {
			t.Errorf("C%d %+v %+v (file %q): keepalived fault=%v priority %d; Aggregate fault=%v priority %d (%s)",
				i, c.ref, c.result, c.content, g.fault, g.prio, want.fault, want.prio, reason)
		}
	}
}

// kaLab is a lab host for keepalived with eth0 on a LAN, up0 (up with
// carrier) and nocar (up, no carrier), and a directory for the test's
// files. Its tests run keepalived for seconds: they skip under -short, and
// run in parallel.
func kaLab(t *testing.T, prefix string) (*netlab.Host, string) {
	t.Helper()
	testenv.Short(t)
	t.Parallel()
	testenv.RequireLab(t, "keepalived")
	h := labtest.OneHost(t, prefix)
	// nocar is up without carrier: its peer stays down.
	labtest.MustRun(t, h, "ip", "link", "add", "nocar", "type", "veth", "peer", "name", "nocarp")
	// up0 is up with carrier (both ends up). Not eth0: keepalived ignores
	// a track_interface naming the instance's own interface.
	labtest.MustRun(t, h, "ip", "link", "add", "up0", "type", "veth", "peer", "name", "up0p")
	for _, ifname := range []string{"nocar", "up0", "up0p"} {
		labtest.MustRun(t, h, "ip", "link", "set", ifname, "up")
	}
	return h, t.TempDir()
}

// kaState is what keepalived reported last for an instance.
type kaState struct {
	fault bool
	prio  int
}

// runKeepalived runs keepalived with conf in h for 3 seconds (every script
// has run once by then and priorities have settled) and returns the last
// state its notify FIFO reported for each instance.
func runKeepalived(t *testing.T, h *netlab.Host, fifo, conf string) map[string]kaState {
	t.Helper()
	lines, stopLines := labtest.FIFOLines(t, fifo)
	ka := labtest.StartKeepalived(t, h, conf, "-P", "-l", "-D")
	got := map[string]kaState{}
	deadline := time.After(3 * time.Second)
read:
	for {
		select {
		case l := <-lines:
			// INSTANCE "C12" BACKUP_PRIORITY 103
			f := strings.Fields(l)
			if len(f) != 4 || f[0] != "INSTANCE" {
				continue
			}
			p, err := strconv.Atoi(f[3])
			if err != nil {
				t.Fatalf("bad FIFO line %q", l)
			}
			got[strings.Trim(f[1], `"`)] = kaState{fault: f[2] == "FAULT", prio: p}
		case <-deadline:
			break read
		}
	}
	ka.Stop()
	stopLines()
	if len(got) == 0 {
		t.Fatalf("keepalived reported nothing:\n%s", ka.Out.String())
	}
	return got
}

// TestEffectiveMatchesKeepalived checks Effective + Aggregate against
// keepalived for sync group members (with and without
// sync_group_tracking_weight), group-level trackers and an address owner,
// with failing weighted scripts, a weighted file and an interface without
// carrier.
func TestEffectiveMatchesKeepalived(t *testing.T) {
	h, dir := kaLab(t, "trkkb")
	bad := labtest.Script(t, dir, "bad.sh", "exit 1")
	file := filepath.Join(dir, "fone")
	if err := os.WriteFile(file, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	type inst struct {
		name                         string
		prio                         int
		group                        string // sync group, "" for none
		own                          []Ref
		groupRefs                    []Ref
		inGroup, trackWeight, own255 bool
	}
	badP := Ref{Kind: KindScript, Name: "bad", Weight: 10}
	badN := Ref{Kind: KindScript, Name: "badneg", Weight: -10}
	bad0 := Ref{Kind: KindScript, Name: "bad0"}
	fone := Ref{Kind: KindFile, Name: "fone", Weight: 5}
	nocar := Ref{Kind: KindInterface, Name: "nocar", Weight: -7}
	insts := []inst{
		{name: "S1", prio: 100, group: "G1", own: []Ref{badP}, inGroup: true},
		{name: "S2", prio: 100, group: "G1", own: []Ref{badN, fone}, inGroup: true},
		{name: "S3", prio: 100, group: "G2", own: []Ref{badN, fone}, inGroup: true, trackWeight: true},
		{name: "S4", prio: 100, group: "G3", own: []Ref{nocar}, groupRefs: []Ref{badN}, inGroup: true},
		{name: "S5", prio: 100, group: "G4", own: []Ref{bad0}, inGroup: true},
		{name: "O1", prio: 255, own: []Ref{badN, fone, nocar}, own255: true},
		{name: "O2", prio: 255, own: []Ref{bad0}, own255: true},
	}
	results := Results{
		{KindScript, "bad"}: {OK: false}, {KindScript, "badneg"}: {OK: false}, {KindScript, "bad0"}: {OK: false},
		{KindFile, "fone"}: {OK: true, Value: 1}, {KindInterface, "nocar"}: {OK: false},
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "global_defs {\n  script_user root\n  notify_fifo %s\n  vrrp_notify_priority_changes true\n}\n", fifo)
	for _, s := range []string{"bad", "badneg", "bad0"} {
		fmt.Fprintf(&conf, "vrrp_script %s {\n  script %s\n  interval 1\n}\n", s, bad)
	}
	fmt.Fprintf(&conf, "track_file fone {\n  file %s\n}\n", file)
	trackBlock := func(refs []Ref) string {
		var b strings.Builder
		kw := map[Kind]string{KindScript: "track_script", KindFile: "track_file", KindInterface: "track_interface"}
		for _, r := range refs {
			fmt.Fprintf(&b, "  %s {\n    %s weight %d\n  }\n", kw[r.Kind], r.Name, r.Weight)
		}
		return b.String()
	}
	groups := map[string][]inst{}
	for _, in := range insts {
		if in.group != "" {
			groups[in.group] = append(groups[in.group], in)
		}
	}
	for g, members := range groups {
		fmt.Fprintf(&conf, "vrrp_sync_group %s {\n  group {\n", g)
		for _, m := range members {
			fmt.Fprintf(&conf, "    %s\n", m.name)
		}
		conf.WriteString("  }\n")
		if members[0].trackWeight {
			conf.WriteString("  sync_group_tracking_weight\n")
		}
		conf.WriteString(trackBlock(members[0].groupRefs))
		conf.WriteString("}\n")
	}
	for i, in := range insts {
		fmt.Fprintf(&conf, "vrrp_instance %s {\n  interface eth0\n  virtual_router_id %d\n  priority %d\n  virtual_ipaddress {\n    192.0.2.%d/24\n  }\n%s}\n",
			in.name, i+1, in.prio, i+10, trackBlock(in.own))
	}
	got := runKeepalived(t, h, fifo, conf.String())
	for _, in := range insts {
		refs, ignored := Effective(in.own, in.groupRefs, in.inGroup, in.trackWeight, in.own255, in.name)
		delta, fault, reason := Aggregate(refs, results)
		prio := in.prio
		if prio != 255 {
			prio = min(max(prio+delta, 1), 254)
		}
		g, seen := got[in.name]
		if !seen {
			t.Errorf("%s: keepalived reported nothing", in.name)
			continue
		}
		if g.fault != fault || (!fault && g.prio != prio) {
			t.Errorf("%s: keepalived fault=%v priority %d; vigil fault=%v priority %d (%s; ignored %q)", in.name, g.fault, g.prio, fault, prio, reason, ignored)
		}
	}
}
