package vigil_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"vigil/lb"
)

// The protocol engine, its codec, the config front end and the LB model are
// pure values stepped by the daemon: they must not reach the host, or their
// tests stop being deterministic.
var purePackages = []string{"vrrp", "vrrp/wire", "config", "lb", "bfd", "bfd/wire", "internal/inet", "internal/digit", "internal/enum", "bgp", "ctsync/wire", "internal/ctflow"}

var forbiddenImports = []string{
	"os", "os/exec", "os/signal", "syscall", "net", "net/http", "io/ioutil",
	"golang.org/x/sys/unix", "github.com/vishvananda/netlink", "github.com/vishvananda/netns",
	"github.com/mdlayher/packet", "sigs.k8s.io/knftables", "vigil/netio", "vigil/addr",
	"vigil/dataplane/nft", "vigil/daemon",
}

func TestPurePackagesDoNotTouchTheHost(t *testing.T) {
	checked := 0
	for _, dir := range purePackages {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			checked++
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				for _, bad := range forbiddenImports {
					if p == bad {
						t.Errorf("%s imports %s: pure packages must get host facts through their callers", f, p)
					}
				}
			}
			if strings.Contains(string(src), "time.Now(") || strings.Contains(string(src), "time.Since(") {
				t.Errorf("%s reads the clock: time must be an argument", f)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no source files found in the pure packages: run from the module root")
	}
}

// TestNoSchedulerNamesOutsideLB: scheduler semantics live in lb alone. The
// daemon and the data plane follow lb's Selection, Hash and
// NeedsConnCounts; they may pass a scheduler name through (config → lb →
// status, the value of a "Scheduler:" field) but never test it or spell
// one, so that a new scheduler touches lb and config's keyword only.
func TestNoSchedulerNamesOutsideLB(t *testing.T) {
	names := map[string]bool{}
	for _, n := range lb.Schedulers() {
		names[strconv.Quote(n)] = true
	}
	checked := 0
	for _, dir := range []string{"daemon", "dataplane/nft"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			checked++
			fset := token.NewFileSet()
			af, err := parser.ParseFile(fset, f, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			passed := map[ast.Expr]bool{}
			ast.Inspect(af, func(n ast.Node) bool {
				if kv, ok := n.(*ast.KeyValueExpr); ok {
					if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Scheduler" {
						passed[kv.Value] = true
					}
				}
				return true
			})
			ast.Inspect(af, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.SelectorExpr:
					if n.Sel.Name == "Scheduler" && !passed[n] {
						t.Errorf("%s: reads a scheduler name (%s.Scheduler): ask lb (Selection, Hash, NeedsConnCounts) instead", fset.Position(n.Pos()), types(n.X))
					}
				case *ast.BasicLit:
					if n.Kind == token.STRING && names[n.Value] {
						t.Errorf("%s: spells the scheduler %s: scheduler semantics belong to lb", fset.Position(n.Pos()), n.Value)
					}
				}
				return true
			})
		}
	}
	if checked == 0 {
		t.Fatal("no source files found: run from the module root")
	}
}

func types(e ast.Expr) string {
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return "…"
}

// TestDaemonDoesNotLinkGobgp: gobgp (and the gRPC, protobuf and viper it
// brings) is linked into vigil-bgp only. Their package initialisation made
// every vigil process 13.5 MB larger in RSS, with or without BGP
// (docs/benchmarks.md, footprint); bgp/speaker talks to vigil-bgp instead.
func TestDaemonDoesNotLinkGobgp(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to list the dependencies with")
	}
	out, err := exec.Command("go", "list", "-deps", "./cmd/vigil").Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/vigil: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		for _, bad := range []string{"github.com/osrg/gobgp", "google.golang.org/grpc", "github.com/spf13/viper", "vigil/bgp/speaker/gobgp"} {
			if strings.HasPrefix(p, bad) {
				t.Errorf("cmd/vigil links %s: the BGP engine belongs in cmd/vigil-bgp", p)
			}
		}
	}
}
