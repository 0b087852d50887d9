package check

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// loop is one Run of a Runner: the scheduler's state, owned by Run's
// goroutine, and the methods that step it. Its invariants (checkInvariants)
// hold between any two steps:
//
//   - every check the Runner has taken from the heap and not yet observed
//     is counted once in inFlight: running on a worker, in tcpBatch, in a
//     batch queued or started by a TCP worker, or pending on the connWatch;
//   - inFlight never exceeds MaxInFlight, and checks wait in waiting only
//     while it is reached;
//   - every pending connect has its connect_timeout job in the heap.
type loop struct {
	r      *Runner
	ctx    context.Context // Run's: its end stops the loop
	checks context.Context // the checks': cancelled when the loop stops
	cancel context.CancelFunc

	// base is time zero of due times (nanoseconds on the monotonic clock).
	base time.Time
	h    jobHeap

	inFlight int
	waiting  []job // due, but over MaxInFlight

	// Non-TCP checks run on a pool of workers that take jobs from work and
	// put results in results (buffered for MaxInFlight: never blocks).
	// Workers outlive a check: a goroutine started per check would grow
	// its stack from scratch every time, which at 10,000 checks a second
	// costs more than the scheduling itself. The pool grows to the peak
	// concurrency (at most MaxInFlight) and ends with Run.
	work    chan job
	results chan done
	workers int
	wg      sync.WaitGroup

	// The Runner drives TCP_CHECKs itself: TCP workers start them in
	// batches (a non-blocking connect never blocks, so one hand-off per
	// batch rather than per check, and the syscalls still spread over the
	// CPUs), watch reports the connects still under way (connwatch.go),
	// and the loop finishes them or times them out. watch is also what the
	// loop waits on: its timer, and the wake-ups of the workers' results.
	watch      *connWatch
	stopWake   func() bool  // ends the wake-up at the end of ctx
	tcpBatch   []job        // due TCP checks not yet handed out, counted in inFlight
	tcpOut     []tcpOutcome // the outcomes of the batches started on the loop, reused
	tcpWork    chan []job
	tcpDone    chan []tcpOutcome // sends never block
	tcpWorkers int
	// Sockets go back to the pool after a check that connected (see
	// sockpool.go); the pool closes what it holds when Run ends, after the
	// workers have stopped using it.
	pool      *sockPool
	pending   map[uint64]pendingConn
	lastToken uint64

	armed int64 // when watch's timer fires; -1 when idle

	httpFree []*httpConn // states, with their buffers, for the next HTTP_GETs (doneHTTP)
}

type pendingConn struct {
	fd    int
	s, i  int32
	start time.Time
	h     *httpConn // an HTTP_GET's, nil for a TCP_CHECK
}

// loopStepped, when set (by tests), is called after every step of the loop
// with its state.
var loopStepped func(*loop)

func (r *Runner) newLoop(ctx context.Context) (*loop, error) {
	l := &loop{r: r, ctx: ctx, results: make(chan done, r.opt.MaxInFlight), work: make(chan job),
		tcpWork: make(chan []job, tcpQueue), tcpDone: make(chan []tcpOutcome, tcpQueue+maxTCPWorkers),
		pool: newSockPool(), pending: make(map[uint64]pendingConn), armed: -1}
	l.checks, l.cancel = context.WithCancel(ctx)
	var err error
	if l.watch, err = newConnWatch(); err != nil {
		l.cancel()
		l.pool.close()
		return nil, err
	}
	l.stopWake = context.AfterFunc(ctx, l.watch.wake)
	return l, nil
}

// close releases what the loop holds once it has stopped.
func (l *loop) close() {
	l.stopWake()
	l.pool.close()
	l.watch.close()
	l.cancel()
}

// at converts a time to the loop's due time.
func (l *loop) at(t time.Time) int64 { return int64(t.Sub(l.base)) }

func (l *loop) run() error {
	l.base = time.Now()
	for si, st := range l.r.states {
		due, ev := st.Start(l.base, l.r.opt.Rand)
		l.r.emit(ev)
		for i, d := range due {
			l.h.push(job{due: l.at(d), s: int32(si), i: int32(i)})
		}
	}
	for {
		now := l.at(time.Now())
		l.startDue(now)
		l.flushTCP()
		l.arm(now)
		if stop := l.wait(); stop {
			l.stop()
			return nil
		}
		l.refill()
		l.flushTCP()
		if loopStepped != nil {
			loopStepped(l)
		}
	}
}

// startDue starts every job due by now (plus coalesce), or times out its
// connect, or queues it behind the in-flight limit.
func (l *loop) startDue(now int64) {
	for len(l.h) > 0 && l.h[0].due <= now+int64(coalesce) {
		j := l.h.pop()
		switch {
		case j.token != 0:
			l.finishTCP(j.token, true)
		case l.inFlight >= l.r.opt.MaxInFlight:
			if len(l.waiting) == 0 {
				l.r.log.Warn("health checks queue behind the in-flight limit", "limit", l.r.opt.MaxInFlight)
			}
			l.waiting = append(l.waiting, j)
		default:
			l.start(j)
		}
	}
}

// refill starts waiting jobs while the in-flight limit allows.
func (l *loop) refill() {
	for len(l.waiting) > 0 && l.inFlight < l.r.opt.MaxInFlight {
		j := l.waiting[0]
		l.waiting = l.waiting[1:]
		l.start(j)
	}
}

// start counts j in flight and hands it to the TCP batch or a worker.
func (l *loop) start(j job) {
	if l.r.tcp[j.s][j.i] != nil {
		l.inFlight++
		l.tcpBatch = append(l.tcpBatch, j)
		return
	}
	if c := l.r.http[j.s][j.i]; c != nil {
		l.inFlight++
		var h *httpConn
		if n := len(l.httpFree); n > 0 {
			h, l.httpFree = l.httpFree[n-1], l.httpFree[:n-1]
		} else {
			h = new(httpConn)
		}
		*h = httpConn{c: c, start: time.Now(), buf: h.buf[:0]}
		l.startHTTP(j.s, j.i, h)
		return
	}
	l.launch(j)
}

// startHTTP opens the connection for URL h.url of an HTTP_GET in flight,
// takes it as far as it goes at once, and watches it with its
// connect_timeout in the heap.
func (l *loop) startHTTP(s, i int32, h *httpConn) {
	urlStart := time.Now()
	fd, err := h.c.open(h)
	if err != nil {
		l.doneHTTP(s, i, h, -1, err)
		return
	}
	wait, done, err := h.advance(fd)
	if !done {
		l.lastToken++
		if err = l.watch.watchFor(fd, l.lastToken, wait); err == nil {
			l.pending[l.lastToken] = pendingConn{fd, s, i, h.start, h}
			timeout := h.c.cfg.Timeout + coalesce
			l.h.push(job{due: l.at(urlStart) + int64(timeout), s: s, i: i, token: l.lastToken})
			return
		}
	}
	l.doneHTTP(s, i, h, fd, err)
}

// stepHTTP moves the pending HTTP_GET token on: readiness from the
// connect watcher, or its connect_timeout.
func (l *loop) stepHTTP(token uint64, p pendingConn, timedOut bool) {
	var err error
	if timedOut {
		err = errTimeout
	} else {
		var wait uint32
		var done bool
		if wait, done, err = p.h.advance(p.fd); !done {
			if err = l.watch.rearmFor(p.fd, token, wait); err == nil {
				return
			}
		}
	}
	delete(l.pending, token)
	l.doneHTTP(p.s, p.i, p.h, p.fd, err)
}

// doneHTTP closes the connection (fd, or -1) of an HTTP_GET's URL that
// ended, with err or a response, and starts its next URL or delivers the
// check's result.
func (l *loop) doneHTTP(s, i int32, h *httpConn, fd int, err error) {
	if fd >= 0 {
		rawClose(fd)
	}
	res, more := h.c.conclude(h, err)
	if more {
		h.url++
		l.startHTTP(s, i, h)
		return
	}
	if cap(h.buf) <= httpBufKeep && len(l.httpFree) < httpBufsKept {
		// Nothing holds h now: its connection is closed and out of
		// pending, and res holds none of its bytes.
		l.httpFree = append(l.httpFree, h)
	}
	l.inFlight--
	l.h.push(l.r.observe(done{s, i, res, time.Now()}, l.at))
}

// The loop keeps up to httpBufsKept HTTP_GET states whose response
// buffers hold at most httpBufKeep bytes for the next HTTP_GETs: a health
// page fits one, and a check then allocates nothing, and its parsed header
// only where fastHead does not take it.
const (
	httpBufKeep  = 16 << 10
	httpBufsKept = 64
)

// arm sets the timer for the earliest job, if that is earlier than it is
// set for.
func (l *loop) arm(now int64) {
	if len(l.h) > 0 && (l.armed < 0 || l.h[0].due < l.armed) {
		l.armed = l.h[0].due
		l.watch.reset(time.Duration(l.armed - now))
	}
}

// wait takes what is ready (sockets, the timer, the workers' results and
// TCP batches, which wake it after they are sent) and reports whether
// Run's context ended.
func (l *loop) wait() (stop bool) {
	tokens, err := l.watch.poll()
	if err != nil {
		return true
	}
	for _, t := range tokens {
		switch t {
		case tokTimer:
			l.armed = -1
		case tokWake:
		default:
			l.finishTCP(t, false)
		}
	}
	// Take whatever has finished before looking at the clock.
	for {
		select {
		case out := <-l.tcpDone:
			l.startedTCP(out)
			continue
		case d := <-l.results:
			l.inFlight--
			l.h.push(l.r.observe(d, l.at))
			continue
		default:
		}
		break
	}
	return l.ctx.Err() != nil
}

// stop cancels the checks, waits for every one in flight, and delivers the
// servers' shutdown events.
func (l *loop) stop() {
	l.cancel()
	for _, p := range l.pending {
		resetClose(p.fd)
	}
	l.inFlight -= len(l.pending) + len(l.tcpBatch)
	for queued := true; queued; {
		select {
		case b := <-l.tcpWork: // not started, and no worker will now
			l.inFlight -= len(b)
		default:
			queued = false
		}
	}
	for l.inFlight > 0 {
		select {
		case <-l.results:
			l.inFlight--
		case out := <-l.tcpDone:
			for _, o := range out {
				if o.fd >= 0 {
					resetClose(o.fd)
				}
			}
			l.inFlight -= len(out)
		}
	}
	l.wg.Wait()
	end := time.Now()
	for _, st := range l.r.states {
		for _, ev := range st.Shutdown(end) {
			l.r.emit(ev)
		}
	}
}

// worker runs non-TCP checks until the loop stops, starting with j.
func (l *loop) worker(j job) {
	defer l.wg.Done()
	for {
		res := l.r.servers[j.s].Checks[j.i].Checker.Check(l.checks)
		at := time.Now()
		// Never blocks: the buffer holds MaxInFlight results.
		l.results <- done{j.s, j.i, res, at}
		l.watch.wake()
		select {
		case j = <-l.work:
		case <-l.checks.Done():
			return
		}
	}
}

// launch hands a non-TCP check to an idle worker, or a new one.
func (l *loop) launch(j job) {
	l.inFlight++
	select {
	case l.work <- j: // an idle worker takes it
		return
	default:
	}
	if l.workers < l.r.opt.MaxInFlight {
		l.workers++
		l.wg.Add(1)
		go l.worker(j)
		return
	}
	// Every worker exists and inFlight < MaxInFlight: one of them is
	// between its result and its next job, and takes this one soon,
	// unless the workers are leaving because Run is stopping.
	select {
	case l.work <- j:
	case <-l.checks.Done():
		l.inFlight--
	}
}

// tcpWorker starts batches of TCP checks until the loop stops.
func (l *loop) tcpWorker() {
	defer l.wg.Done()
	for {
		var batch []job
		select {
		case batch = <-l.tcpWork:
		case <-l.checks.Done():
			return
		}
		l.tcpDone <- l.startTCP(batch, nil)
		l.watch.wake()
	}
}

// startTCP starts the connects of batch, on a TCP worker or, for a small
// batch, on the loop itself, and returns their outcomes in out's array
// (nil: a new one).
func (l *loop) startTCP(batch []job, out []tcpOutcome) []tcpOutcome {
	out = slices.Grow(out[:0], len(batch))[:len(batch)]
	for k, j := range batch {
		c := l.r.tcp[j.s][j.i]
		start := time.Now()
		var (
			fd            int
			watched, over bool
			err           error
		)
		if c.pooled {
			fd, watched, over, err = c.startPooled(l.pool)
		} else {
			fd, over, err = c.start()
		}
		out[k] = tcpOutcome{j: j, fd: fd, watched: watched, start: start}
		if over {
			out[k].fd = -1
			out[k].res = c.result(err, start)
			out[k].at = time.Now()
		}
	}
	return out
}

// flushTCP queues tcpBatch for the TCP workers, never blocking, and starts
// another worker while batches wait. What does not fit the queue waits for
// the next step, when a batch has come back.
func (l *loop) flushTCP() {
	for n := len(l.tcpBatch); n > 0 && n <= inlineTCP && len(l.tcpWork) == 0; n = len(l.tcpBatch) {
		// A few connects are started here: handing them to a worker and
		// taking the outcome back costs two goroutine switches, each
		// often a thread woken, for a few non-blocking system calls. With
		// 3 TCP_CHECKs at delay_loop 1 that was 46 wake-ups a second
		// (docs/benchmarks.md); the workers are for the large batches of
		// a big director, where spreading the system calls over the CPUs
		// pays.
		// The batch's array and the outcomes' are the loop's to reuse:
		// nothing else holds them once startedTCP has taken the outcomes
		// (a batch handed to a worker below is cut with its capacity, so
		// what is appended here never reaches it).
		l.tcpOut = l.startTCP(l.tcpBatch, l.tcpOut)
		l.tcpBatch = l.tcpBatch[:0]
		l.startedTCP(l.tcpOut)
		// Connects that ended at once (refused, or an error) left room
		// under the in-flight limit: waiting checks take it now.
		l.refill()
	}
	for len(l.tcpBatch) > 0 {
		n := min(len(l.tcpBatch), maxTCPBatch)
		select {
		case l.tcpWork <- l.tcpBatch[:n:n]:
			l.tcpBatch = l.tcpBatch[n:]
		default:
			return
		}
		if len(l.tcpWork) > 0 && l.tcpWorkers < maxTCPWorkers {
			l.tcpWorkers++
			l.wg.Add(1)
			go l.tcpWorker()
		}
	}
	// tcpBatch is empty, and what is appended to it next lands past every
	// batch handed out: each was cut with its capacity.
}

// startedTCP takes a batch back: results, and connects to watch.
func (l *loop) startedTCP(out []tcpOutcome) {
	for _, o := range out {
		if o.fd < 0 {
			l.inFlight--
			l.h.push(l.r.observe(done{o.j.s, o.j.i, o.res, o.at}, l.at))
			continue
		}
		l.lastToken++
		arm := l.watch.watch
		if o.watched {
			arm = l.watch.rearm
		}
		if err := arm(o.fd, l.lastToken); err != nil {
			unix.Close(o.fd)
			l.inFlight--
			l.h.push(l.r.observe(done{o.j.s, o.j.i, l.r.tcp[o.j.s][o.j.i].result(err, o.start), time.Now()}, l.at))
			continue
		}
		l.pending[l.lastToken] = pendingConn{o.fd, o.j.s, o.j.i, o.start, nil}
		// Plus coalesce: the loop starts jobs up to that much early, and a
		// connect must get all of connect_timeout.
		timeout := l.r.tcp[o.j.s][o.j.i].cfg.Timeout + coalesce
		l.h.push(job{due: l.at(o.start) + int64(timeout), s: o.j.s, i: o.j.i, token: l.lastToken})
	}
}

// finishTCP ends the pending connect token: connected or refused (from the
// connWatch), or timed out.
func (l *loop) finishTCP(token uint64, timedOut bool) {
	p, ok := l.pending[token]
	if !ok {
		return // finished before its timeout, or a stale readiness
	}
	if p.h != nil {
		l.stepHTTP(token, p, timedOut)
		return
	}
	var err error
	if timedOut {
		err = errTimeout
		resetClose(p.fd) // it may have connected just now: no FIN
	} else {
		var still bool
		if still, err = finish(p.fd); still {
			if err = l.watch.rearm(p.fd, token); err == nil {
				return // a spurious wake-up: keep waiting
			}
		}
		switch c := l.r.tcp[p.s][p.i]; {
		case err != nil:
			unix.Close(p.fd)
		case c.pooled:
			l.pool.release(c.key, pooledSock{p.fd, true})
		default:
			resetClose(p.fd)
		}
	}
	delete(l.pending, token)
	l.inFlight--
	c := l.r.tcp[p.s][p.i]
	l.h.push(l.r.observe(done{p.s, p.i, c.result(err, p.start), time.Now()}, l.at))
}

// checkInvariants reports the first broken invariant of the loop's state
// (see loop), for tests.
func (l *loop) checkInvariants() error {
	max := l.r.opt.MaxInFlight
	switch {
	case l.inFlight < 0 || l.inFlight > max:
		return fmt.Errorf("inFlight %d outside 0..%d", l.inFlight, max)
	case len(l.waiting) > 0 && l.inFlight < max:
		return fmt.Errorf("%d checks wait with only %d of %d in flight", len(l.waiting), l.inFlight, max)
	case l.inFlight < len(l.pending)+len(l.tcpBatch):
		return fmt.Errorf("inFlight %d, but %d connects pending and %d in the TCP batch", l.inFlight, len(l.pending), len(l.tcpBatch))
	}
	timeouts := map[uint64]bool{}
	for _, j := range l.h {
		if j.token != 0 {
			timeouts[j.token] = true
		}
	}
	for t := range l.pending {
		if !timeouts[t] {
			return fmt.Errorf("pending connect %d has no timeout in the heap", t)
		}
	}
	// Every check is either in the heap, waiting or in flight, once.
	scheduled := 0
	for _, j := range l.h {
		if j.token == 0 {
			scheduled++
		}
	}
	total := 0
	for _, s := range l.r.servers {
		total += len(s.Checks)
	}
	if got := scheduled + len(l.waiting) + l.inFlight; got != total {
		return fmt.Errorf("%d checks scheduled, %d waiting, %d in flight: %d, want every one of %d once", scheduled, len(l.waiting), l.inFlight, got, total)
	}
	return nil
}
