package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"vigil/control"
)

// cmdReload asks the running daemon to reload its configuration and waits
// for the outcome: exit 0 when the new configuration runs, 1 with every
// diagnostic when it was rejected (the running one is kept) or when no
// daemon answers. It is the unit's ExecReload and what configuration
// management calls, so a bad push fails visibly instead of silently.
//
// It takes the same options as `vigil run` (ExecReload passes $DAEMON_ARGS
// along) and uses only --control from them.
func cmdReload(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseRunArgs(args)
	if err != nil {
		fmt.Fprintln(stderr, "vigil reload:", err)
		return 2
	}
	ctl := control.DefaultPath
	if o.ctlSet {
		ctl = o.control
	}
	if ctl == "" {
		fmt.Fprintln(stderr, "vigil reload: no control socket (--control is empty): send SIGHUP to the daemon instead")
		return 2
	}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	resp, err := control.Call(cctx, ctl, control.Request{Cmd: "reload"})
	if err != nil {
		fmt.Fprintln(stderr, "vigil reload:", err)
		return 1
	}
	r := resp.Reload
	if r == nil {
		fmt.Fprintln(stderr, "vigil reload: the daemon sent no reload result")
		return 1
	}
	for _, c := range r.Changes {
		fmt.Fprintln(stdout, c)
	}
	if !r.OK {
		for _, e := range r.Errors {
			fmt.Fprintln(stderr, e)
		}
		if len(r.Changes) > 0 {
			fmt.Fprintf(stderr, "vigil reload: reloaded with %d errors\n", len(r.Errors))
		} else {
			fmt.Fprintf(stderr, "vigil reload: rejected (%d errors); the running configuration is kept\n", len(r.Errors))
		}
		return 1
	}
	if len(r.Changes) == 0 {
		fmt.Fprintln(stdout, "reloaded: no changes")
	}
	return 0
}
