package daemon

import (
	"errors"
	"log/slog"
	"time"

	"vigil/vrrp"
)

// dropLogInterval is how often at most one line per drop reason is
// written during a storm of bad adverts.
const dropLogInterval = 10 * time.Second

// dropLog turns dropped adverts into log lines an operator sees without
// flooding the log: the first drop of a reason is logged at once, later
// ones are counted and written as one line per reason per interval, with
// the count, while they keep coming. The engines' counters (status,
// metrics) count every drop as before. Owned by the loop.
type dropLog struct {
	log     *slog.Logger
	reasons [numLoggedReasons]dropWindow
	nextAt  time.Time // earliest end of an open window with drops to report
}

const numLoggedReasons = 32

type dropWindow struct {
	until    time.Time // the open window's end; zero when none is open
	count    uint64    // drops since the window opened, not yet logged
	instance string    // the latest drop's
	detail   string
}

// note records err if it is a drop worth reporting: a valid advert
// dropped because the instance is in INIT or FAULT, or our own looped
// back, is not.
func (l *dropLog) note(now time.Time, instance string, err error) {
	var de *vrrp.DropError
	if !errors.As(err, &de) || de.Reason == vrrp.DropInactive || de.Reason == vrrp.DropOwn ||
		de.Reason < 0 || int(de.Reason) >= numLoggedReasons {
		return
	}
	w := &l.reasons[de.Reason]
	if w.until.IsZero() || !now.Before(w.until) {
		if w.count > 0 {
			l.write(de.Reason, w) // an overdue window: report it first
		}
		l.log.Warn("VRRP advert dropped", "reason", de.Reason.String(), "instance", instance, "from", de.Src.String(), "detail", de.Detail,
			"note", "further drops for this reason are counted and logged every "+dropLogInterval.String())
		w.until = now.Add(dropLogInterval)
		w.count = 0
		l.reschedule()
		return
	}
	w.count++
	w.instance = instance
	w.detail = de.Src.String() + ": " + de.Detail
	l.reschedule()
}

// next is when flush must run; zero when nothing is waiting.
func (l *dropLog) next() time.Time { return l.nextAt }

// flush writes the windows that ended by now and closes the quiet ones; a
// window with drops starts a new one, so a storm gives a line per
// interval.
func (l *dropLog) flush(now time.Time) {
	for r := range l.reasons {
		w := &l.reasons[r]
		if w.until.IsZero() || now.Before(w.until) {
			continue
		}
		if w.count == 0 {
			w.until = time.Time{}
			continue
		}
		l.write(vrrp.DropReason(r), w)
		w.until = now.Add(dropLogInterval)
	}
	l.reschedule()
}

func (l *dropLog) write(r vrrp.DropReason, w *dropWindow) {
	l.log.Warn("VRRP adverts dropped", "reason", r.String(), "count", w.count, "interval", dropLogInterval.String(),
		"last_instance", w.instance, "last", w.detail)
	w.count = 0
}

// reschedule sets nextAt to the earliest end of a window with drops to
// report; quiet windows need no wake-up (note closes them lazily).
func (l *dropLog) reschedule() {
	l.nextAt = time.Time{}
	for r := range l.reasons {
		w := &l.reasons[r]
		if w.count > 0 && (l.nextAt.IsZero() || w.until.Before(l.nextAt)) {
			l.nextAt = w.until
		}
	}
}
