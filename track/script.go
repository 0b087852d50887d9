package track

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"vigil/internal/proc"
)

// Script is a vrrp_script. Weights belong to the instances that follow it
// (Ref), not here.
type Script struct {
	Name string
	// Argv is the script line split into words by the caller.
	Argv []string
	// Interval between the starts of two runs; default 1s.
	Interval time.Duration
	// Timeout after which a run is killed and counts as a failure; default
	// Interval, as in keepalived.
	Timeout time.Duration
	// Rise and Fall: consecutive successes (failures) needed to change the
	// verdict; default 1.
	Rise, Fall int
	// InitFail: the script counts as failed until it first succeeds.
	InitFail bool
	// User, when set, is the uid/gid to run as.
	User *Credential
	// Env is the environment; nil inherits vigil's.
	Env []string
}

func (s *Script) withDefaults() {
	if s.Interval <= 0 {
		s.Interval = time.Second
	}
	if s.Timeout <= 0 {
		s.Timeout = s.Interval
	}
	s.Rise = max(s.Rise, 1)
	s.Fall = max(s.Fall, 1)
}

// ScriptState is a vrrp_script's verdict under rise and fall, as keepalived
// 2.2.7 keeps it: before the first result the verdict is unknown (or failed,
// with init_fail), and the first result decides it either way whatever rise
// and fall say (keepalived starts its counter at the threshold); after that
// it takes Fall consecutive failures to turn OK into failed and Rise
// consecutive successes to turn failed into OK (checked with a script
// that succeeded and failed in a set pattern). The zero value is not
// usable: use NewScriptState.
type ScriptState struct {
	rise, fall int
	known, ok  bool
	decided    bool // a run has completed since start
	streak     int  // consecutive results contrary to the verdict
}

// NewScriptState returns the state before the first run.
func NewScriptState(rise, fall int, initFail bool) ScriptState {
	return ScriptState{rise: max(rise, 1), fall: max(fall, 1), known: initFail}
}

// Known reports whether there is a verdict (after the first run, or from
// the start with init_fail).
func (s *ScriptState) Known() bool { return s.known }

// OK is the verdict; false while unknown.
func (s *ScriptState) OK() bool { return s.ok }

// Observe records one run and reports whether the verdict changed (an
// unknown verdict becoming known counts as a change).
func (s *ScriptState) Observe(success bool) (changed bool) {
	if !s.decided {
		s.decided = true
		changed = !s.known || s.ok != success
		s.known, s.ok, s.streak = true, success, 0
		return changed
	}
	if success == s.ok {
		s.streak = 0
		return false
	}
	s.streak++
	need := s.fall
	if success {
		need = s.rise
	}
	if s.streak < need {
		return false
	}
	s.ok, s.streak = success, 0
	return true
}

// ScriptRunner runs vrrp_scripts: one goroutine per script, which runs it,
// waits for it, and sleeps until the next interval; runs of one script never
// overlap (a run longer than the interval delays the next).
type ScriptRunner struct {
	scripts []Script
	report  func(Event)
	log     *slog.Logger
}

// NewScriptRunner validates the scripts and returns a runner; it starts
// nothing. report receives every change of verdict, from the script's
// goroutine: it must not block for long (hand the event to the daemon's
// loop); it may be called concurrently for different scripts.
func NewScriptRunner(scripts []Script, report func(Event), log *slog.Logger) (*ScriptRunner, error) {
	if report == nil {
		return nil, errors.New("track: script runner needs a report function")
	}
	err := checkTrackers("vrrp_script", scripts, func(s Script) string { return s.Name }, func(s Script) error {
		if len(s.Argv) == 0 || s.Argv[0] == "" {
			return fmt.Errorf("track: vrrp_script %s has no script", s.Name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]Script, 0, len(scripts))
	for _, s := range scripts {
		s.Argv = append([]string(nil), s.Argv...)
		s.withDefaults()
		out = append(out, s)
	}
	return &ScriptRunner{scripts: out, report: report, log: orDiscard(log)}, nil
}

// Run runs every script until ctx ends, then kills the runs in progress,
// waits for all of them and returns nil.
func (r *ScriptRunner) Run(ctx context.Context) error {
	if len(r.scripts) == 0 {
		return idle(ctx)
	}
	var wg sync.WaitGroup
	for i := range r.scripts {
		s := &r.scripts[i]
		wg.Go(func() { r.loop(ctx, s) })
	}
	wg.Wait()
	return nil
}

func (r *ScriptRunner) loop(ctx context.Context, s *Script) {
	st := NewScriptState(s.Rise, s.Fall, s.InitFail)
	log := r.log.With("script", s.Name)
	if s.InitFail {
		r.report(Event{Kind: KindScript, Name: s.Name, OK: false, Value: -1, Detail: "init_fail: failed until it first succeeds"})
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		res := proc.Run(ctx, s.Argv, s.Timeout, s.User, s.Env)
		if ctx.Err() != nil {
			// A run cut short by shutdown says nothing about the service.
			return
		}
		ok := res.Code == 0
		if !ok {
			log.Debug("vrrp_script run failed", "detail", res.Detail)
		}
		if st.Observe(ok) {
			verdict := "failed"
			if st.OK() {
				verdict = "succeeded"
			}
			detail := fmt.Sprintf("%s (%s)", verdict, res.Detail)
			log.Info("vrrp_script "+verdict, "detail", res.Detail, "command", strings.Join(s.Argv, " "))
			r.report(Event{Kind: KindScript, Name: s.Name, OK: st.OK(), Value: res.Code, Detail: detail})
		}
		timer.Reset(max(0, s.Interval-time.Since(start)))
	}
}
