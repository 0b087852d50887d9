package link

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"vigil/internal/childproc"
)

// Serve is the BFD process's main loop on conn, its end of the socketpair
// to the daemon (see Process): a Runner parked in the Go runtime's poller
// (New) steps the sessions, and Serve answers the daemon's requests
// and sends it every state change as it happens. It returns nil after a
// stop request (the peers told AdminDown: the daemon stops, an orderly
// end), or an error when the Runner failed or the daemon's end closed
// without a stop request: the daemon is gone (killed, crashed), and the
// sessions go silent at once (Runner.Abandon), with no AdminDown, so that
// their peers detect the failure after their detection time as BFD
// means them to (an AdminDown is no failure to them, RFC 5882 3.2).
// debug forwards the Runner's debug records too (a dropped packet each),
// which the daemon would otherwise discard.
//
// The caller runs it with GOMAXPROCS 1 and nothing else in the process:
// the Runner's goroutine then waits in the one thread's epoll_wait with
// every P idle, and the runtime's sysmon thread sleeps instead of
// retaking and handing off a P every few milliseconds (docs/architecture.md,
// BFD).
func Serve(conn net.Conn, debug bool) error {
	w := childproc.NewWriter(conn)
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	r := New(w.Logger(level))
	r.Subscribe("", func(ev Event) { _ = w.Send(opEvent, ev) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() {
		err := r.Run(ctx)
		runErr <- err
		if err != nil {
			// The daemon sees the socket close and starts another.
			_ = conn.Close()
		}
	}()
	dec := childproc.NewReader(conn)
	for {
		m, err := dec.Next()
		if err != nil {
			// Silent before anything else: the PDEATHSIG that ends this
			// process with the daemon may come after the EOF.
			r.Abandon()
			cancel()
			if rerr := <-runErr; rerr != nil {
				return rerr
			}
			return fmt.Errorf("the daemon's socket: %w", err)
		}
		switch m.Op {
		case opSched:
			var s Scheduling
			err := json.Unmarshal(m.Body, &s)
			if err == nil {
				err = ScheduleProcess(s)
			}
			w.Reply(m.ID, nil, err)
		case opConfigure:
			var list []Session
			if err := json.Unmarshal(m.Body, &list); err != nil {
				w.Reply(m.ID, nil, err)
				continue
			}
			err := r.Configure(list)
			rep := configureReply{Up: map[string]bool{}}
			for _, s := range list {
				if up, ok := r.Up(s.Name); ok {
					rep.Up[s.Name] = up
				}
			}
			w.Reply(m.ID, rep, err)
		case opStatus:
			var sb statusBody
			sb.Sessions, sb.Drops, sb.Late = r.Status()
			sb.SendErrors = r.SendErrors()
			sb.Ports = map[string]uint16{}
			for _, s := range sb.Sessions {
				if p, ok := r.Port(s.Name); ok {
					sb.Ports[s.Name] = p
				}
			}
			w.Reply(m.ID, sb, nil)
		case opStop:
			cancel()
			err := <-runErr
			w.Reply(m.ID, nil, err)
			return nil
		default:
			w.Reply(m.ID, nil, fmt.Errorf("unknown request %q", m.Op))
		}
	}
}

// ScheduleProcess gives every thread of this process the scheduling s
// (keepalived's bfd_rt_priority / bfd_priority / bfd_process_name, which
// keepalived applies to its BFD process). Without SCHED_RESET_ON_FORK:
// threads the Go runtime starts later inherit it from the thread that
// starts them, and the BFD process runs no programs.
func ScheduleProcess(s Scheduling) error {
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL, Nice: int32(s.Nice)}
	if s.RTPriority > 0 {
		attr.Policy, attr.Priority, attr.Nice = unix.SCHED_RR, uint32(s.RTPriority), 0
	}
	name := s.Name
	if len(name) > 15 {
		name = name[:15]
	}
	var serr, nerr error
	done := map[int]bool{}
	// Again until no thread is new: the runtime may start one (from a
	// thread not yet done) while the list is walked.
	for pass := 0; pass < 5; pass++ {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		fresh := false
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil || done[tid] {
				continue
			}
			done[tid], fresh = true, true
			if err := unix.SchedSetAttr(tid, &attr, 0); err != nil && serr == nil {
				serr = fmt.Errorf("bfd: process scheduling (rt priority %d, nice %d): %w", s.RTPriority, s.Nice, err)
			}
			if name != "" {
				if err := os.WriteFile(fmt.Sprintf("/proc/self/task/%d/comm", tid), []byte(name), 0); err != nil && nerr == nil {
					nerr = fmt.Errorf("bfd: process name: %w", err)
				}
			}
		}
		if !fresh {
			break
		}
	}
	return errors.Join(serr, nerr)
}
