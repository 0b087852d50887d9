package config

import (
	"io/fs"
	"strings"
	"testing"
)

// fuzzLimits are the production limits scaled down so that each fuzz input
// stays fast; TestParseTreeLimits covers the production values.
var fuzzLimits = func() ppLimits {
	l := defaultLimits
	l.pieces = 200_000
	l.nodes = 100_000
	l.bytes = 16 << 20
	l.genLines = 4096
	l.substCost = 1 << 20
	l.expandLen = 64 << 10
	l.includeFiles = 64
	l.globs = 512
	return l
}()

var fuzzSeeds = []string{
	`! Configuration File for keepalived
global_defs {
   notification_email {
     ops@example.com
   }
   notification_email_from lb1@example.com
   smtp_server 192.0.2.25
   smtp_connect_timeout 30
   router_id LVS_DEVEL
   vrrp_skip_check_adv_addr
   vrrp_garp_interval 0.001
   enable_script_security
   script_user keepalived_script
}

vrrp_script chk_nginx {
    script "/usr/bin/pgrep -x nginx"
    interval 2
    weight -20
    fall 2
    rise 1
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass 1111
    }
    unicast_src_ip 192.0.2.11
    unicast_peer {
        192.0.2.12
    }
    virtual_ipaddress {
        192.0.2.100/24 dev eth0 label eth0:1
    }
    track_script {
        chk_nginx
    }
    notify_master "/etc/keepalived/notify.sh MASTER"
    notify "/etc/keepalived/notify.sh" root
}
`,
	`virtual_server 192.0.2.100 443 {
    delay_loop 6
    lb_algo wrr
    lb_kind DR
    persistence_timeout 50
    protocol TCP
    sorry_server 192.0.2.200 443

    real_server 192.0.2.21 443 {
        weight 3
        inhibit_on_failure
        SSL_GET {
            url {
              path /health
              digest 9b3a0c85a887a256d6939da88aabd8cd
            }
            connect_timeout 3
            retry 3
            delay_before_retry 3
        }
    }
    real_server 192.0.2.22 443 {
        weight 1
        MISC_CHECK {
            misc_path "/usr/local/bin/check.sh '192.0.2.22' \"x y\""
            misc_timeout 5
        }
    }
}
`,
	`@main $PRIO=150
@^main $PRIO=100
$IF=eth0
$VIPS= \
  virtual_ipaddress { \
    ~SEQ(i, 1, 3) 10.0.0.$i/24 \
  }
vrrp_instance VI_${IF} { interface $IF
  priority $PRIO
  $VIPS
}
~LST({A,B},{1,x},{2,y}) vrrp_script s_${A}_$B { script "/bin/true ${_PWD} ${_RANDOM 1 9}" }
include inc.conf
includea sub/{a,b}.conf
global_defs { include_check +brace_match -readable }
`,
	"a{b{c}}}\n{\n\"x\n$R=$R\n$R\n~SEQ(i,1,0,3) x\n${_HASH} ${_BANG}\n@^ x\r\n\tinclude *.conf\n",
}

func FuzzParseTree(f *testing.F) {
	// The seeds run in every `go test`, with those in
	// testdata/fuzz/FuzzParseTree (inputs the fuzzer found or that hurt
	// before: self-referring parameters, includes of special files).
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	for _, s := range hostileSmall {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		// Includes reach files of every kind: the FIFO, the device and
		// the executable file must be skipped without being read.
		env := statEnv(t, map[string]string{
			"/f/main.conf":  src,
			"/f/inc.conf":   "kw_inc $X\n",
			"/f/sub/a.conf": "a {\n",
			"/f/sub/b.conf": "}\ninclude ../main.conf\n",
			"/f/sub/fifo":   "",
			"/f/exec.conf":  "kw_exec\n",
			"/dev/null":     "",
		}, map[string]fs.FileMode{
			"/f/sub/fifo":  fs.ModeNamedPipe | 0o644,
			"/f/exec.conf": 0o755,
			"/dev/null":    fs.ModeDevice | fs.ModeCharDevice | 0o666,
		}, nil)
		env.Hostname = "main"
		nodes, diags := parseTree("/f/main.conf", []byte(src), env, fuzzLimits)
		for _, d := range diags {
			if d.Pos.File == "" || d.Pos.Line < 0 || d.Msg == "" {
				t.Fatalf("diagnostic without a place or message: %#v", d)
			}
		}
		count := 0
		var walk func([]*Node, int)
		walk = func(ns []*Node, depth int) {
			if depth > fuzzLimits.blockDepth+1 {
				t.Fatalf("tree deeper than the block limit")
			}
			for _, n := range ns {
				count++
				if n.Key.Text == "kw_exec" {
					t.Fatalf("the executable include was read")
				}
				for _, w := range append([]Word{n.Key}, n.Args...) {
					if w.Pos.File == "" || w.Pos.Line < 1 || w.Pos.Col < 1 {
						t.Fatalf("word %q without a place: %v", w.Text, w.Pos)
					}
					if !w.Quoted && (w.Text == "" || strings.ContainsAny(w.Text, "{} \t\n\"")) {
						t.Fatalf("bad unquoted word %q", w.Text)
					}
				}
				if !n.HasBlock && len(n.Block) > 0 {
					t.Fatalf("%s has children but no block", n.Key.Text)
				}
				walk(n.Block, depth+1)
			}
		}
		walk(nodes, 0)
		if count > fuzzLimits.pieces {
			t.Fatalf("%d nodes for a budget of %d pieces", count, fuzzLimits.pieces)
		}
		// The command splitter must not panic on any raw text either.
		for _, n := range nodes {
			_, _ = SplitCommand(n.Raw)
		}
	})
}
