package daemon

import "sync"

// slowWork runs, in order and off the loop goroutine, the slow part of
// carrying out the engines' Readies: nft transactions (no_accept, the load
// balancer's claim-before-VIPs apply), address and route changes, GARP
// bursts, notify scripts. The loop keeps sending adverts meanwhile: before
// it ran them itself, and a first nft apply on a loaded host (1.8 s seen
// in `vigil demo`) silenced a new master long enough for the backup to
// take over too.
//
// The queue is unbounded so that the loop never blocks on it; FIFO order
// keeps a master's claim before a later release of the same VIPs. A nil
// *slowWork, or one set inline (reload, shutdown: the loop waits for the
// queue and then does the work itself), runs each job at once.
type slowWork struct {
	mu     sync.Mutex
	cond   *sync.Cond
	q      []func()
	busy   bool
	closed bool
	inline bool // owned by the loop
	done   chan struct{}
}

func newSlowWork() *slowWork {
	w := &slowWork{done: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	go w.run()
	return w
}

// do runs f on the worker, or at once when w is nil or inline.
func (w *slowWork) do(f func()) {
	if w == nil || w.inline {
		f()
		return
	}
	w.mu.Lock()
	w.q = append(w.q, f)
	w.mu.Unlock()
	w.cond.Broadcast()
}

// wait returns once every job queued so far has run.
func (w *slowWork) wait() {
	if w == nil {
		return
	}
	w.mu.Lock()
	for len(w.q) > 0 || w.busy {
		w.cond.Wait()
	}
	w.mu.Unlock()
}

// setInline waits for the queue and makes do run jobs at once (on), or
// hands them to the worker again (off).
func (w *slowWork) setInline(on bool) {
	if w == nil {
		return
	}
	if on {
		w.wait()
	}
	w.inline = on
}

// close runs what is queued and stops the worker.
func (w *slowWork) close() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.cond.Broadcast()
	<-w.done
}

func (w *slowWork) run() {
	defer close(w.done)
	w.mu.Lock()
	for {
		for len(w.q) == 0 && !w.closed {
			w.cond.Wait()
		}
		if len(w.q) == 0 {
			w.mu.Unlock()
			return
		}
		f := w.q[0]
		w.q[0] = nil
		w.q = w.q[1:]
		w.busy = true
		w.mu.Unlock()
		f()
		w.mu.Lock()
		w.busy = false
		w.cond.Broadcast()
	}
}
