// FRR, the routing suite the BGP and BFD tests peer with.

package labtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"vigil/internal/netlab"
)

// FRR is FRR's zebra and the daemons a test named, running in a lab host
// with their configuration files, sockets and pid files in a directory of
// their own.
type FRR struct {
	Host *netlab.Host
	Dir  string
}

// StartFRR writes confs (a file name such as "bgpd.conf" to its text;
// zebra.conf is empty unless given) into a new directory and runs zebra,
// then each of daemons ("bgpd", "bfdd") in h in the foreground, logging to
// its output at level debug, each once the one before has its sockets.
// They are killed when the test ends, their output logged if it failed,
// and the directory removed.
func StartFRR(t testing.TB, h *netlab.Host, confs map[string]string, daemons ...string) *FRR {
	t.Helper()
	dir, err := os.MkdirTemp("", "vigil-frr-")
	if err != nil {
		t.Fatal(err)
	}
	var cmds []*exec.Cmd
	var outs []*Buffer
	all := append([]string{"zebra"}, daemons...)
	t.Cleanup(func() {
		for i, cmd := range cmds {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("--- %s in %s ---\n%s", all[i], h.Name, outs[i].String())
			}
		}
		_ = os.RemoveAll(dir)
	})
	// The daemons drop to user frr: it must reach the directory.
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	f := &FRR{Host: h, Dir: dir}
	for _, d := range all {
		if err := os.WriteFile(f.Path(d+".conf"), []byte(confs[d+".conf"]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range all {
		out := &Buffer{}
		cmd := h.Command(context.Background(), "/usr/lib/frr/"+d, "-i", f.Path(d+".pid"), "-z", f.Path("zserv.api"),
			"--vty_socket", dir, "-f", f.Path(d+".conf"), "--log", "stdout", "--log-level", "debug")
		cmd.Stdout, cmd.Stderr = out, out
		if err := h.Start(cmd); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
		// zebra's zserv.api is where the others connect to it.
		WaitFor(t, 10*time.Second, d+"'s sockets", func() bool {
			_, err := os.Stat(f.Path(d + ".vty"))
			_, zerr := os.Stat(f.Path("zserv.api"))
			return err == nil && zerr == nil
		})
	}
	return f
}

// Path is the path of the file name in f's directory.
func (f *FRR) Path(name string) string { return filepath.Join(f.Dir, name) }

// Vtysh runs vtysh with each of cmds (-c) against f's daemons and returns
// its output.
func (f *FRR) Vtysh(cmds ...string) (string, error) {
	args := []string{"--vty_socket", f.Dir}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	return f.Host.Run("vtysh", args...)
}
