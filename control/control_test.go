package control

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestServeAndCall(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.sock")
	ctx, cancel := context.WithCancel(context.Background())
	srv := &Server{Path: path, Handler: func(_ context.Context, r Request) Response {
		if r.Cmd != "status" {
			return Response{Error: "unknown command " + r.Cmd}
		}
		return Response{Status: &Status{Version: "t", Instances: []InstanceStatus{{Name: "VI_1", State: "MASTER", VRID: 51}}}}
	}}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var resp Response
	var err error
	for i := 0; i < 100; i++ {
		resp, err = Call(ctx, path, Request{Cmd: "status"})
		if err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status == nil || resp.Status.Instances[0].State != "MASTER" {
		t.Fatalf("status not delivered: %+v", resp)
	}
	if _, err := Call(ctx, path, Request{Cmd: "bogus"}); err == nil || !strings.Contains(err.Error(), "unknown command bogus") {
		t.Fatalf("error not delivered: %v", err)
	}
	// A second server on the same path must refuse rather than steal it.
	if err := (&Server{Path: path, Handler: srv.Handler}).Run(ctx); err == nil || !strings.Contains(err.Error(), "another vigil") {
		t.Fatalf("second server: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := Call(context.Background(), path, Request{Cmd: "status"}); err == nil || !strings.Contains(err.Error(), "no vigil is running") {
		t.Fatalf("call after stop: %v", err)
	}
}

func TestWriteStatus(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := Status{Version: "1", PID: 7, ConfigFile: "/etc/k.conf", Started: t0,
		LastReload: &ReloadResult{At: t0.Add(time.Minute), OK: false, Errors: []string{"k.conf:3: bad"}},
		Instances: []InstanceStatus{{Name: "VI_1", Interface: "eth0", VRID: 51, Version: 3, State: "MASTER",
			Priority: 90, BasePriority: 100, VIPs: []string{"192.0.2.100/32"}, Since: t0, Reason: "master down timer expired"}},
		Services: []ServiceStatus{{Name: "192.0.2.100:80/tcp", Kind: "NAT", Scheduler: "rr", Active: true, Quorum: true,
			RealServers: []RealStatus{{Addr: "198.51.100.1:80", Weight: 1, Up: true}, {Addr: "198.51.100.2:80", Weight: 0, Detail: "connection refused"}}}},
	}
	var b strings.Builder
	if err := WriteStatus(&b, s, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"REJECTED, running config kept: k.conf:3: bad", "90 (base 100)", "master down timer expired", "DOWN connection refused", "up 2m0s"} {
		if !strings.Contains(out, want) {
			t.Errorf("status table lacks %q:\n%s", want, out)
		}
	}
}

// TestWriteStatusBGP: the BGP tables show each session with its last
// error and each prefix with whether it is announced and why.
func TestWriteStatusBGP(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	med := uint32(10)
	s := Status{Version: "1", PID: 7, ConfigFile: "/etc/k.conf", Started: t0,
		BGPInstances: []BGPStatus{{Name: "EDGE", LocalAS: 65001, RouterID: "192.0.2.11",
			Sessions: []BGPPeerStatus{{Peer: "192.0.2.1", RemoteAS: 65000, State: "Active", Since: t0, LastError: "notification received: OPEN message error: bad peer AS", LastErrorAt: t0.Add(time.Minute)},
				{Peer: "192.0.2.2", RemoteAS: 65000, State: "Idle", Since: t0, HeldDown: "bfd_holddown after 2 flaps of BFD session R: 1.5s more"}},
			Routes: []BGPRoute{
				{Prefix: "192.0.2.100/32", Announced: true, Communities: []string{"65000:100"}, MED: &med, Reasons: []string{"virtual_server [192.0.2.100]:tcp:80: quorum, rules in place"}},
				{Prefix: "192.0.2.101/32", Reasons: []string{"virtual_server [192.0.2.101]:tcp:80: quorum lost"}},
			}}}}
	var b strings.Builder
	if err := WriteStatus(&b, s, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"EDGE (AS 65001, id 192.0.2.11)", "192.0.2.1", "Active", "bad peer AS (1m0s ago)",
		"Idle (held down: bfd_holddown after 2 flaps of BFD session R: 1.5s more)", "192.0.2.100/32  yes", "65000:100 med 10", "quorum, rules in place", "192.0.2.101/32  no", "quorum lost"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}
