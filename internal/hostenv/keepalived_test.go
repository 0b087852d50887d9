package hostenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vigil/internal/labtest"
	"vigil/internal/testenv"
)

// TestScriptSecurityMatchesKeepalived asks the real keepalived (-t, with
// enable_script_security and script_user root, in a lab namespace that has
// the instance's interface) about every layout of securityCases and checks
// that CheckScript accepts exactly what keepalived accepts.
func TestScriptSecurityMatchesKeepalived(t *testing.T) {
	testenv.RequireLab(t, "keepalived")
	h := labtest.OneHost(t, "hostenvka")
	base := t.TempDir()
	for _, tc := range securityCases(t, base) {
		conf := filepath.Join(base, "keepalived.conf")
		text := fmt.Sprintf(`global_defs {
  enable_script_security
  script_user root
}
vrrp_script chk {
  script "%s"
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  virtual_ipaddress {
    192.0.2.100/24
  }
  track_script {
    chk
  }
}
`, tc.path)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		// Pid files of its own, so a keepalived the host runs is never
		// looked at or touched.
		out, _ := h.Command(t.Context(), "keepalived", "-t", "-l", "-f", conf, "-p", conf+".pid", "-r", conf+".vrrp.pid",
			"-c", conf+".checkers.pid", "-b", conf+".bfd.pid").CombinedOutput()
		refused := strings.Contains(string(out), "Disabling track script chk")
		err := CheckScript(tc.path, true)
		if refused != (err != nil) {
			t.Errorf("%s (%s): keepalived refuses: %v, vigil: %v\nkeepalived said:\n%s", tc.name, tc.path, refused, err, out)
		}
	}
}
