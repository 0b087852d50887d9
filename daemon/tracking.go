package daemon

import (
	"context"
	"fmt"
	"sync"
	"time"

	"vigil/config"
	"vigil/notify"
	"vigil/track"
	"vigil/vrrp"
)

// tracking is the daemon's side of keepalived's track_* keywords: the
// watchers (package track) run on their own goroutines and report to the
// loop, which keeps their results and turns them into vrrp.Tracking
// events for the instances that follow them.
type tracking struct {
	results track.Results
	events  chan track.Event
	cancel  context.CancelFunc
	done    chan struct{}
}

// trackerConfig maps the vrrp_script, vrrp_track_file and
// vrrp_track_process blocks and every tracked interface onto package track.
func (d *Daemon) trackerConfig(cfg *config.Config) (track.Config, []string) {
	var tc track.Config
	var problems []string
	tc.Logger = d.log
	for _, s := range cfg.Scripts {
		if s.Script == nil || len(s.Script.Args) == 0 {
			continue
		}
		// keepalived reads a vrrp_script interval as whole seconds, and
		// a value below one second as its default of one.
		iv := s.Interval.Truncate(time.Second)
		if iv <= 0 {
			iv = time.Second
		}
		ts := track.Script{Name: s.Name, Argv: s.Script.Args, Interval: iv, Timeout: s.Timeout,
			Rise: s.Rise, Fall: s.Fall, InitFail: s.InitFail}
		if ts.Timeout <= 0 {
			ts.Timeout = iv
		}
		cred, err := d.credential(cfg, s.Script.User, s.Script.Group, s.User, s.Group)
		if err != nil {
			problems = append(problems, fmt.Sprintf("vrrp_script %s disabled: %v", s.Name, err))
			continue
		}
		if cred != nil {
			c := track.Credential(*cred)
			ts.User = &c
		}
		tc.Scripts = append(tc.Scripts, ts)
	}
	for _, f := range cfg.TrackFiles {
		tc.Files = append(tc.Files, track.File{Name: f.Name, Path: f.File, InitFile: f.InitFile, InitValue: f.InitValue, Overwrite: f.Overwrite})
	}
	for _, p := range cfg.TrackProcesses {
		tc.Processes = append(tc.Processes, track.Process{Name: p.Name, Argv: p.Process, ParamMatch: p.ParamMatch, FullCommand: p.FullCommand,
			Quorum: p.Quorum, QuorumMax: p.QuorumMax, ForkDelay: p.ForkDelay, TerminateDelay: p.TerminateDelay})
	}
	seen := map[string]bool{}
	add := func(refs []*config.TrackRef) {
		for _, r := range refs {
			if !seen[r.Name] {
				seen[r.Name] = true
				tc.Interfaces = append(tc.Interfaces, r.Name)
			}
		}
	}
	for _, in := range cfg.Instances {
		add(in.TrackInterfaces)
	}
	for _, g := range cfg.SyncGroups {
		add(g.TrackInterfaces)
	}
	return tc, problems
}

// credential resolves who a script runs as: its own user/group words,
// else the global script_user. nil means vigil's own user.
func (d *Daemon) credential(cfg *config.Config, names ...string) (*notify.Credential, error) {
	user, group := "", ""
	for i := 0; i+1 < len(names); i += 2 {
		if names[i] != "" {
			user, group = names[i], names[i+1]
			break
		}
	}
	if user == "" {
		user, group = cfg.Global.ScriptUser, cfg.Global.ScriptGroup
	}
	if user == "" {
		return nil, nil
	}
	return d.host.credential(user, group)
}

// refsFor lists the trackers instance in follows, with keepalived's rules
// for sync groups and address owners applied (track.Effective).
func refsFor(cfg *config.Config, in *config.Instance) ([]track.Ref, []string) {
	type weight struct {
		w   int
		rev bool
	}
	weights := map[track.Key]weight{}
	for _, s := range cfg.Scripts {
		weights[track.Key{Kind: track.KindScript, Name: s.Name}] = weight{s.Weight, s.Reverse}
	}
	for _, f := range cfg.TrackFiles {
		weights[track.Key{Kind: track.KindFile, Name: f.Name}] = weight{f.Weight, f.Reverse}
	}
	for _, p := range cfg.TrackProcesses {
		weights[track.Key{Kind: track.KindProcess, Name: p.Name}] = weight{p.Weight, p.Reverse}
	}
	for _, b := range cfg.BFDInstances {
		weights[track.Key{Kind: track.KindBFD, Name: b.Name}] = weight{b.Weight, b.Reverse}
	}
	conv := func(kind track.Kind, refs []*config.TrackRef, skip string) []track.Ref {
		var out []track.Ref
		for _, r := range refs {
			if kind == track.KindInterface && r.Name == skip {
				// keepalived ignores tracking the instance's own interface:
				// that one is followed through InterfaceUp/Down.
				continue
			}
			def := weights[track.Key{Kind: kind, Name: r.Name}]
			w, rev := def.w, def.rev
			if r.WeightSet {
				w, rev = r.Weight, r.Reverse
			}
			out = append(out, track.Ref{Kind: kind, Name: r.Name, Weight: w, Reverse: rev})
		}
		return out
	}
	all := func(ifs, scripts, files, procs, bfds []*config.TrackRef, own string) []track.Ref {
		var out []track.Ref
		out = append(out, conv(track.KindInterface, ifs, own)...)
		out = append(out, conv(track.KindScript, scripts, "")...)
		out = append(out, conv(track.KindFile, files, "")...)
		out = append(out, conv(track.KindProcess, procs, "")...)
		out = append(out, conv(track.KindBFD, bfdRefs(cfg, bfds), "")...)
		return out
	}
	own := all(in.TrackInterfaces, in.TrackScripts, in.TrackFiles, in.TrackProcesses, in.TrackBFD, in.Interface)
	var group []track.Ref
	inGroup, trackingWeight := false, false
	for _, g := range cfg.SyncGroups {
		if g.Name == in.SyncGroup {
			inGroup, trackingWeight = true, g.TrackingWeight
			group = all(g.TrackInterfaces, g.TrackScripts, g.TrackFiles, g.TrackProcesses, g.TrackBFD, "")
		}
	}
	return track.Effective(own, group, inGroup, trackingWeight, in.Priority == 255, in.Name)
}

// startTracking starts the watchers of cfg; results survive a restart so
// that a reload does not flap priorities.
func (d *Daemon) startTracking(ctx context.Context, cfg *config.Config) {
	if d.tracking.results == nil {
		d.tracking.results = track.Results{}
		d.tracking.events = make(chan track.Event, 256)
	}
	if d.opts.NoVRRP {
		return // trackers only move VRRP priorities
	}
	tc, problems := d.trackerConfig(cfg)
	for _, p := range problems {
		d.log.Warn("tracking", "problem", p)
	}
	if len(tc.Scripts)+len(tc.Files)+len(tc.Processes)+len(tc.Interfaces) == 0 {
		return
	}
	events := d.tracking.events
	t, err := d.host.newTrackers(tc, func(e track.Event) {
		select {
		case events <- e:
		case <-ctx.Done():
		}
	})
	if err != nil {
		d.log.Error("tracking not started", "err", err)
		return
	}
	tctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	d.tracking.cancel, d.tracking.done = cancel, done
	go func() {
		defer close(done)
		if err := t.Run(tctx); err != nil {
			d.log.Error("tracking", "err", err)
		}
	}()
}

func (d *Daemon) stopTracking() {
	if d.tracking.cancel != nil {
		d.tracking.cancel()
		<-d.tracking.done
		d.tracking.cancel, d.tracking.done = nil, nil
	}
}

// tracked records a watcher's result and re-evaluates every instance.
func (d *Daemon) tracked(now time.Time, e track.Event) {
	d.tracking.results.Apply(e)
	d.log.Info("tracker changed", "tracker", e.Key().String(), "ok", e.OK, "value", e.Value, "detail", e.Detail)
	for _, in := range d.insts {
		d.retrack(now, in)
	}
}

// retrack steps in with its current tracking result if it changed.
func (d *Daemon) retrack(now time.Time, in *instance) {
	t := in.tracks()
	delta, fault, reason := track.Aggregate(t.refs, d.tracking.results)
	tr := vrrp.Tracking{Delta: delta, Fault: fault, Reason: reason}
	if tr == t.last {
		return
	}
	in.ownTracking().last = tr
	_ = in.e.Step(now, tr)
}

// notifyScripts maps a Notify block onto package notify.
func (d *Daemon) notifyScripts(n config.Notify) notify.Scripts {
	conv := func(c *config.Command) *notify.Command {
		if c == nil || len(c.Args) == 0 {
			return nil
		}
		nc := &notify.Command{Argv: c.Args}
		if cred, err := d.credential(d.cfg, c.User, c.Group); err == nil && cred != nil {
			nc.User = cred
		} else if err != nil {
			d.log.Warn("notify script runs as vigil's own user", "script", c.Raw, "err", err)
		}
		return nc
	}
	return notify.Scripts{Master: conv(n.Master), Backup: conv(n.Backup), Fault: conv(n.Fault), Stop: conv(n.Stop),
		Deleted: conv(n.Deleted), Any: conv(n.Any), MasterRxLowerPri: conv(n.MasterRxLowerPri)}
}

// notifyState is the state word notify scripts and FIFOs get: keepalived
// calls leaving for INIT at shutdown STOP.
func notifyState(s vrrp.State) string {
	if s == vrrp.StateInit {
		return notify.StateStop
	}
	return s.String()
}

// startNotifier runs notify scripts and opens the notify FIFOs of the
// global configuration (notify_fifo, vrrp_notify_fifo), through the
// notifier edge.
func (d *Daemon) startNotifier(ctx context.Context, bg *sync.WaitGroup) {
	var fifos []notify.FifoConfig
	for _, fc := range []*config.Fifo{d.cfg.Global.NotifyFifo, d.cfg.Global.VRRPNotifyFifo} {
		if fc == nil || fc.Path == "" {
			continue
		}
		nc := notify.FifoConfig{Path: fc.Path}
		if fc.User != "" {
			if cred, err := d.host.credential(fc.User, fc.Group); err == nil {
				nc.Owner = cred
			} else {
				d.log.Warn("notify FIFO owner", "fifo", fc.Path, "err", err)
			}
		}
		if fc.Script != nil && len(fc.Script.Args) > 0 {
			nc.Script = &notify.Command{Argv: fc.Script.Args}
		}
		fifos = append(fifos, nc)
	}
	d.notifier = d.host.newNotifier(fifos, d.log, func(r notify.Result) {
		if !r.OK() {
			d.log.Warn("notify script failed", "event", r.Event.String(), "argv", fmt.Sprint(r.Argv), "code", r.Code,
				"timed_out", r.TimedOut, "detail", r.Detail)
		}
	})
	bg.Add(1)
	go func() {
		defer bg.Done()
		if err := d.notifier.Run(ctx); err != nil {
			d.log.Error("notify", "err", err)
		}
	}()
}
