package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"vigil/internal/labtest"
)

// dumpConf is VRRPv2 with a password, so that the auth fields appear.
const dumpConf = `global_defs {
  router_id dumps
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 61
  priority 150
  advert_int 1
  authentication {
    auth_type PASS
    auth_pass secret
  }
  virtual_ipaddress {
    192.0.2.61/24
  }
}
`

type dumps struct {
	json, data, stats string
}

// SIGUSR1, SIGUSR2 and keepalived's JSON signal make vigil write
// /tmp/keepalived.data, .stats and .json as keepalived 2.2.7 does; the
// JSON has keepalived's structure, key for key, and the same values for
// the same configuration and state, so tools written against keepalived's
// dumps (keepalived-exporter) read vigil's. Each daemon runs alone in its
// own lab with a private /tmp.
func TestDumpsMatchKeepalived(t *testing.T) {
	t.Parallel()
	bins := flagBinaries(t)
	testenvTool(t, "unshare")
	got := map[string]dumps{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, b := range bins {
		h := labtest.OneHost(t, "kdm"+strconv.Itoa(i))
		// The daemon sees a tmpfs at /tmp: keep its files elsewhere.
		dir, err := os.MkdirTemp("/var/tmp", "vigil-dump-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.WriteFile(filepath.Join(dir, "keepalived.conf"), []byte(dumpConf), 0o644); err != nil {
			t.Fatal(err)
		}
		if b.kind == "vigil" {
			bin := filepath.Join(dir, "vigil")
			copyFile(t, b.path, bin)
			b.path = bin
		}
		argv := append([]string{"unshare", "-m", "sh", "-c", `mount -t tmpfs none /tmp && exec "$0" "$@"`},
			b.argv(dir, "-nlG", "-P", "-f", "@CONF@", "-p", "@DIR@/k.pid", "-r", "@DIR@/v.pid")...)
		p := startFlagged(t, h, argv)
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := collectDumps(p, func() bool { return hostHas(h, flagsVIP) })
			if err != nil {
				t.Errorf("%s: %v", b.kind, err)
				return
			}
			mu.Lock()
			got[b.kind] = d
			mu.Unlock()
		}()
	}
	wg.Wait()
	k, v := got["keepalived"], got["vigil"]
	if t.Failed() {
		return
	}
	t.Logf("keepalived JSON: %s", k.json)
	t.Logf("vigil JSON:      %s", v.json)

	var kj, vj []map[string]map[string]any
	if err := json.Unmarshal([]byte(k.json), &kj); err != nil {
		t.Fatalf("keepalived's JSON: %v", err)
	}
	if err := json.Unmarshal([]byte(v.json), &vj); err != nil {
		t.Fatalf("vigil's JSON: %v", err)
	}
	if len(kj) != 1 || len(vj) != 1 {
		t.Fatalf("instances: keepalived %d, vigil %d; want 1", len(kj), len(vj))
	}
	// Values that depend on the moment or on timing: compared for kind only.
	loose := map[string]bool{"last_transition": true, "advert_sent": true, "advert_rcvd": true}
	for _, part := range []string{"data", "stats"} {
		km, vm := kj[0][part], vj[0][part]
		if km == nil || vm == nil {
			t.Fatalf("%q: keepalived %v, vigil %v", part, km, vm)
		}
		var keys []string
		for key := range km {
			keys = append(keys, key)
		}
		for key := range vm {
			if _, ok := km[key]; !ok {
				t.Errorf("%s.%s: vigil has it, keepalived does not", part, key)
			}
		}
		slices.Sort(keys)
		for _, key := range keys {
			kv, ok := vm[key]
			switch {
			case !ok:
				t.Errorf("%s.%s: missing from vigil's JSON (keepalived: %v)", part, key, km[key])
			case reflect.TypeOf(kv) != reflect.TypeOf(km[key]):
				t.Errorf("%s.%s: vigil %T %v, keepalived %T %v", part, key, kv, kv, km[key], km[key])
			case !loose[key] && !reflect.DeepEqual(kv, km[key]):
				t.Errorf("%s.%s: vigil %v, keepalived %v", part, key, kv, km[key])
			}
		}
	}
	if lt, ok := vj[0]["data"]["last_transition"].(float64); !ok || time.Since(time.Unix(int64(lt), 0)) > time.Minute {
		t.Errorf("vigil's last_transition %v is not a recent Unix time", vj[0]["data"]["last_transition"])
	}
	if n, _ := vj[0]["stats"]["advert_sent"].(float64); n < 1 {
		t.Errorf("vigil's advert_sent %v after becoming master", n)
	}

	// The stats file has keepalived's lines, numbers aside.
	num := regexp.MustCompile(`\d+`)
	if ks, vs := num.ReplaceAllString(k.stats, "N"), num.ReplaceAllString(v.stats, "N"); ks != vs {
		t.Errorf("stats files differ beyond their numbers:\nkeepalived:\n%s\nvigil:\n%s", k.stats, v.stats)
	}
	// The data file has the lines tools read from keepalived's.
	for _, line := range []string{
		"------< VRRP Topology >------", " VRRP Instance = VI_1", "   VRRP Version = 2", "   State = MASTER",
		"   Interface = eth0", "   Using src_ip = 192.0.2.1", "   Virtual Router ID = 61", "   Priority = 150",
		"   Effective priority = 150", "   Advert interval = 1 sec", "   Accept = enabled", "   Preempt = enabled",
		"   Authentication type = SIMPLE_PASSWORD", "   Virtual IP (1):", "     192.0.2.61/24 dev eth0 scope global set",
		" Router ID = dumps",
	} {
		for kind, text := range map[string]string{"keepalived": k.data, "vigil": v.data} {
			if !strings.Contains(text, line+"\n") {
				t.Errorf("%s's data file has no line %q:\n%s", kind, line, text)
			}
		}
	}
}

// collectDumps waits for the daemon to become master, then signals it for
// each dump and reads the file from its /tmp.
func collectDumps(p *flagged, master func() bool) (dumps, error) {
	deadline := time.Now().Add(15 * time.Second)
	for !master() {
		if time.Now().After(deadline) {
			return dumps{}, fmt.Errorf("no MASTER within 15 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Let the GARP bursts and a few adverts pass.
	time.Sleep(1500 * time.Millisecond)
	pid := p.cmd.Process.Pid
	var d dumps
	for _, x := range []struct {
		sig  syscall.Signal
		file string
		into *string
	}{{36, "keepalived.json", &d.json}, {syscall.SIGUSR1, "keepalived.data", &d.data}, {syscall.SIGUSR2, "keepalived.stats", &d.stats}} {
		if err := syscall.Kill(pid, x.sig); err != nil {
			return d, err
		}
		path := fmt.Sprintf("/proc/%d/root/tmp/%s", pid, x.file)
		for {
			if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
				*x.into = string(b)
				break
			}
			if time.Now().After(deadline.Add(10 * time.Second)) {
				return d, fmt.Errorf("signal %d: no %s", x.sig, path)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// keepalived writes in place: give it a moment to finish.
	time.Sleep(200 * time.Millisecond)
	for _, x := range []struct {
		file string
		into *string
	}{{"keepalived.json", &d.json}, {"keepalived.data", &d.data}, {"keepalived.stats", &d.stats}} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/tmp/%s", pid, x.file))
		if err != nil {
			return d, err
		}
		*x.into = string(b)
	}
	return d, nil
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func testenvTool(t *testing.T, tools ...string) {
	t.Helper()
	requireVRRPLab(t, tools...)
}
