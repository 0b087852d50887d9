package vigil_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The protocol engine, its codec, the config front end and the LB model are
// pure values stepped by the daemon: they must not reach the host, or their
// tests stop being deterministic.
var purePackages = []string{"vrrp", "vrrp/wire", "config", "lb", "bfd", "bfd/wire", "internal/inet"}

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
