package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"vigil/bgp/speaker"
	"vigil/config"
	"vigil/internal/hostenv"
	"vigil/lb"
)

// Exit codes of `vigil check`, matching keepalived -t where they overlap.
const (
	exitConfigFatal = 4 // the file could not be read at all
	exitConfigError = 5 // errors were found
	exitInterrupted = 130
)

// loadConfig is config.Load; a test replaces it with a slow one.
var loadConfig = config.Load

func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "/etc/keepalived/keepalived.conf", "configuration `file`")
	id := fs.String("i", "", "config `id` for @ID lines (default: short hostname)")
	quiet := fs.Bool("q", false, "print errors only")
	noHost := fs.Bool("no-host-checks", false, "do not check interfaces and scripts against this host (checking a config for another node)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// `vigil check FILE` checks FILE, as `vigil run FILE` runs it; never
	// the default file in its place.
	fSet := false
	fs.Visit(func(f *flag.Flag) { fSet = fSet || f.Name == "f" })
	switch {
	case fs.NArg() > 1 || (fs.NArg() == 1 && fSet && fs.Arg(0) != *file):
		fmt.Fprintf(stderr, "vigil check: unexpected argument %q (give one configuration file)\n", fs.Arg(fs.NArg()-1))
		return 2
	case fs.NArg() == 1:
		*file = fs.Arg(0)
	}
	// keepalived's ${_PWD} and relative includes are resolved from the
	// absolute path of the file.
	if abs, err := filepath.Abs(*file); err == nil {
		*file = abs
	}
	env := hostenv.New(*id)
	if *noHost {
		env.InterfaceExists = nil
		env.CheckScript = nil
		env.UserExists = nil
		env.GroupExists = nil
		env.HostResolves = nil
		env.Forwarding = nil
	}
	// Loading is bounded (config's limits), but a slow file system or a
	// huge generated configuration can still take a while: SIGINT and
	// SIGTERM (which cancel ctx) stop the check at once.
	type loaded struct {
		cfg   *config.Config
		diags config.Diagnostics
	}
	done := make(chan loaded, 1)
	go func() {
		cfg, diags := loadConfig(*file, env)
		done <- loaded{cfg, diags}
	}()
	var res loaded
	select {
	case res = <-done:
	case <-ctx.Done():
		fmt.Fprintf(stderr, "%s: check interrupted\n", *file)
		return exitInterrupted
	}
	cfg, diags := res.cfg, res.diags
	if cfg != nil {
		diags = append(diags, drSchedulerNotes(cfg)...)
		if !*noHost {
			diags = append(diags, bgpHelperNotes(cfg, speaker.HelperPath)...)
		}
	}
	for _, d := range diags {
		if *quiet && d.Severity < config.Error {
			continue
		}
		fmt.Fprintln(stderr, d.String())
	}
	errs, warns := diags.Count(config.Error)+diags.Count(config.Fatal), diags.Count(config.Warning)
	switch {
	case diags.Count(config.Fatal) > 0:
		fmt.Fprintf(stderr, "%s: cannot be used: %d errors, %d warnings\n", *file, errs, warns)
		return exitConfigFatal
	case errs > 0:
		fmt.Fprintf(stderr, "%s: %d errors, %d warnings\n", *file, errs, warns)
		return exitConfigError
	}
	if !*quiet {
		fmt.Fprintf(stdout, "%s: OK (%d warnings): %s\n", *file, warns, cfg.Summary())
	}
	return 0
}

// drSchedulerNotes warns, for each DR virtual server announced over BGP,
// where DR departs from its lb_algo (lb.DRNote): DR picks every flow by a
// Maglev table, the same on every director, so the directors behind the
// router's ECMP stay interchangeable whatever lb_algo says; lb_algo mh
// says what happens.
func drSchedulerNotes(cfg *config.Config) config.Diagnostics {
	var out config.Diagnostics
	for _, vs := range cfg.VirtualServers {
		if vs.Method != config.DR || len(vs.BGPAnnounce) == 0 {
			continue
		}
		name := cmp.Or(vs.Scheduler, lb.DefaultScheduler)
		if note := lb.DRNote(name, vs.SchedFlags, vs.PersistenceTimeout > 0); note != "" {
			out = append(out, config.Diagnostic{Pos: vs.BGPAnnounce[0].Pos, Severity: config.Warning,
				Msg: fmt.Sprintf("virtual_server %s: lb_algo %s with lb_kind DR behind BGP: %s; every director still picks the same real server for a flow (directors share no flow state), and lb_algo mh says so", vs.Key(), name, note)})
		}
	}
	return out
}

// bgpHelperNotes warns when the configuration has bgp_instance blocks and
// vigil-bgp, the BGP speaker the daemon starts for them (bgp/speaker), is
// not where the daemon looks: `vigil run` would refuse the configuration.
func bgpHelperNotes(cfg *config.Config, find func() (string, error)) config.Diagnostics {
	if len(cfg.BGPInstances) == 0 {
		return nil
	}
	if _, err := find(); err != nil {
		return config.Diagnostics{{Pos: cfg.BGPInstances[0].Pos, Severity: config.Warning,
			Msg: "bgp_instance " + cfg.BGPInstances[0].Name + ": " + err.Error() + "; vigil run cannot start BGP without it"}}
	}
	return nil
}
