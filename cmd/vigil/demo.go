package main

import (
	"context"
	"fmt"
	"io"
)

// cmdDemo will build the namespace lab described in its plan. Until the VRRP
// daemon lands it prints the plan and fails, so that nobody mistakes the plan
// for a result.
func cmdDemo(_ context.Context, _ []string, stdout, stderr io.Writer) int {
	fmt.Fprint(stdout, `vigil demo builds a throwaway lab of network namespaces and shows failover:
  1. two vigil nodes (priority 150 and 100) and a client on one LAN segment, 192.0.2.0/24
  2. the election: the higher priority node takes the virtual IP 192.0.2.100
  3. a client dials the VIP every 5 ms while the master's link is cut
  4. the measured client-visible outage, against Master_Down_Interval
  5. the link heals and the higher priority node preempts back
  6. every namespace is removed
`)
	fmt.Fprintln(stderr, "vigil demo: the VRRP daemon is not built yet (issue #3); the steps above are the plan")
	return 3
}
