package metrics

import (
	"context"
	"net/http"
	"time"

	"vigil/control"
)

// StatusFunc asks the daemon for a snapshot.
type StatusFunc func(ctx context.Context) (control.Status, error)

// snapshotTimeout bounds how long a scrape or a health probe waits for
// the daemon's loop: a loop that does not answer in that time is stuck.
const snapshotTimeout = 2 * time.Second

// Handler serves /metrics (vigil's metrics from status, with the Go
// runtime and process collectors) and /healthz (200 while alive says the
// daemon's event loop answers, 503 otherwise, for watchdogs and load
// balancer probes; it reads no counters).
// Every other path is 404, so metrics are scraped from one address only.
func Handler(status StatusFunc, alive func(ctx context.Context) error) http.Handler {
	snap := func() (control.Status, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), snapshotTimeout)
		defer cancel()
		s, err := status(ctx)
		return s, err == nil
	}
	c := New(snap)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_ = c.WriteText(w)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), snapshotTimeout)
		defer cancel()
		if err := alive(ctx); err != nil {
			http.Error(w, "vigil's event loop does not answer: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}
