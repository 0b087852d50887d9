package config

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
)

// bigConfig is a keepalived.conf with n vrrp_instances spread over
// interfaces (250 VRIDs each), every one with two VIPs, a track script,
// a tracked interface, a unicast source and two unicast peers.
func bigConfig(n int) []byte {
	var s strings.Builder
	s.WriteString("global_defs {\n router_id bench\n enable_script_security\n script_user root\n vrrp_garp_master_delay 2\n}\n")
	for k := 0; k < 8; k++ {
		fmt.Fprintf(&s, "vrrp_script chk_%d {\n script \"/ok/check.sh %d\"\n interval 2\n weight -10\n fall 2\n rise 2\n}\n", k, k)
	}
	for i := 0; i < n; i++ {
		ifn, vrid := i/250, i%250+1
		a, b := byte(i>>8), byte(i)
		fmt.Fprintf(&s, `vrrp_instance VI_%d {
    state BACKUP
    interface eth%d
    virtual_router_id %d
    priority %d
    advert_int 1
    unicast_src_ip 10.%d.%d.1
    unicast_peer {
        10.%d.%d.2
        10.%d.%d.3
    }
    track_interface {
        bond%d weight -20
    }
    track_script {
        chk_%d
    }
    virtual_ipaddress {
        172.16.%d.%d/32 dev eth%d
        172.17.%d.%d/32
    }
}
`, i, ifn, vrid, 100+i%100, a, b, a, b, a, b, ifn, i%8, a, b, ifn, a, b)
	}
	return []byte(s.String())
}

func benchEnv() Env {
	env := testEnv()
	env.InterfaceExists = func(string) bool { return true }
	return env
}

func TestBigConfigLoads(t *testing.T) {
	cfg, diags := LoadBytes("big.conf", bigConfig(1000), benchEnv())
	if diags.HasErrors() {
		t.Fatalf("%s", diags)
	}
	if len(cfg.Instances) != 1000 || len(cfg.Instances[999].UnicastPeers) != 2 || cfg.Instances[999].TrackScripts[0].Weight != -10 {
		t.Fatalf("unexpected model: %s", cfg.Summary())
	}
}

func BenchmarkLoad10000Instances(b *testing.B) {
	data := bigConfig(10000)
	env := benchEnv()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		cfg, diags := LoadBytes("big.conf", data, env)
		if diags.HasErrors() || len(cfg.Instances) != 10000 {
			b.Fatalf("%d instances\n%s", len(cfg.Instances), diags[:min(len(diags), 5)])
		}
	}
}

func TestLoadedConfigRetainsLittle(t *testing.T) {
	const n = 1000
	src := bigConfig(n)
	env := benchEnv()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	cfg, diags := LoadBytes("big.conf", src, env)
	if diags.HasErrors() {
		t.Fatalf("%s", diags)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perInstance := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	for _, in := range cfg.Instances {
		if in.kw != nil {
			t.Fatalf("vrrp_instance %s keeps its keyword positions after Build", in.Name)
		}
	}
	runtime.KeepAlive(cfg)
	t.Logf("a loaded Config keeps %d bytes per instance", perInstance)
	// 2,066 bytes per instance with the positions kept (measured), 1,581
	// without them, 1,219-1,263 with the kept words copied out of the
	// file's text (keep).
	if perInstance > 1450 {
		t.Errorf("a loaded Config keeps %d bytes per instance, want at most 1450", perInstance)
	}
}

// TestLoadedConfigDropsItsText: no string of a loaded Config is a slice of
// the file's text, which would keep all of it alive for the daemon's life
// (issue #7: 168 bytes per instance of bench/footprint.sh's file, where
// the instance names and interfaces did). testdata/model/full.conf, with
// most keywords, is padded with 4 MB of comments; the Config must keep far
// less than that (4,174,864 bytes before keep).
func TestLoadedConfigDropsItsText(t *testing.T) {
	data, err := os.ReadFile("testdata/model/full.conf")
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	src := append(bytes.Clone(data), bytes.Repeat([]byte("# "+strings.Repeat("x", 77)+"\n"), 4<<20/80)...)
	cfg, diags := LoadBytes("full.conf", src, benchEnv())
	if diags.HasErrors() {
		t.Fatalf("%s", diags)
	}
	src = nil // the test's copy; the daemon's is the reader's, dropped likewise
	runtime.GC()
	runtime.ReadMemStats(&after)
	kept := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	runtime.KeepAlive(cfg)
	t.Logf("the Config of full.conf keeps %d bytes", kept)
	if kept > 1<<20 {
		t.Errorf("the Config of full.conf keeps %d bytes with 4 MB of comments in the file, want under 1 MB: a string of the model is a slice of the text (copy it with keep)", kept)
	}
}
