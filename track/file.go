package track

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
	"unsafe"
	"vigil/internal/digit"

	"golang.org/x/sys/unix"
)

// File is a track_file (vrrp_track_file). Weights belong to the instances
// that follow it (Ref).
type File struct {
	Name string
	Path string
	// InitFile writes InitValue to the file at start if it does not exist,
	// or always with Overwrite (init_file [VALUE] [overwrite]).
	InitFile  bool
	InitValue int
	Overwrite bool
}

// DefaultResync is how often FileWatcher re-reads every file whatever
// inotify says.
const DefaultResync = 5 * time.Second

// maxFileRead bounds what is read of a file: a number is short.
const maxFileRead = 4096

// FileWatcher reads track_files when they change.
//
// It watches each file's directory with inotify rather than the file, so
// that a file created after start, replaced by rename (how editors and
// atomic writers update files) or deleted is seen at once. A file is read
// once it has been quiet for 20 ms after it was written, moved into or out
// of place, or deleted (a missing file counts as 0, as in keepalived):
// reading at once could catch a writer between truncating the file and
// writing the number, and flash a 0 that puts a weight-0 tracker's
// instances in FAULT. Every Resync it also re-reads every file and retries
// watching directories that did not exist, which covers what inotify
// cannot see (a directory created later, a symbolic link's target changing,
// network file systems).
type FileWatcher struct {
	files  []File
	report func(Event)
	log    *slog.Logger
	// Resync is the period of full re-reads; zero means DefaultResync.
	Resync time.Duration
}

// NewFileWatcher validates the files and returns a watcher; it starts
// nothing. report receives the first value of every file and every change,
// from the watcher's goroutine; it must not block for long.
func NewFileWatcher(files []File, report func(Event), log *slog.Logger) (*FileWatcher, error) {
	if report == nil {
		return nil, errors.New("track: file watcher needs a report function")
	}
	err := checkTrackers("track_file", files, func(f File) string { return f.Name }, func(f File) error {
		if f.Path == "" {
			return fmt.Errorf("track: track_file %s has no file", f.Name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &FileWatcher{files: append([]File(nil), files...), report: report, log: orDiscard(log)}, nil
}

// fileState is what was last reported for a file.
type fileState struct {
	reported bool
	ok       bool
	value    int
}

// Run initialises the files (init_file), reports their values, and follows
// them until ctx ends. Without inotify (the per-user instance limit
// reached) it polls every second instead. It returns an error only if
// reading inotify fails.
func (w *FileWatcher) Run(ctx context.Context) error {
	if len(w.files) == 0 {
		return idle(ctx)
	}
	resync := period(w.Resync, DefaultResync)
	for _, f := range w.files {
		w.initFile(f)
	}
	states := make([]fileState, len(w.files))
	readAll := func() {
		for i := range w.files {
			w.read(i, &states[i])
		}
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		// Out of inotify instances (fs.inotify.max_user_instances): poll.
		poll := min(resync, time.Second)
		w.log.Warn("track_file: inotify unavailable, polling", "err", err, "every", poll)
		return w.poll(ctx, poll, readAll)
	}
	// A non-blocking descriptor wrapped in os.File uses the runtime's poller,
	// so a read deadline can wake the loop and Close can interrupt it.
	in := os.NewFile(uintptr(fd), "inotify")
	defer in.Close()
	// Cancellation sets a deadline in the past; the mutex keeps the loop
	// from replacing it with a later one.
	var mu sync.Mutex
	cancelled := false
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		cancelled = true
		_ = in.SetReadDeadline(time.Unix(1, 0))
	})
	defer stop()
	setDeadline := func(t time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if !cancelled {
			_ = in.SetReadDeadline(t)
		}
	}

	byDir := map[string][]int{} // directory → indices of files in it
	for i, f := range w.files {
		d := filepath.Dir(filepath.Clean(f.Path))
		byDir[d] = append(byDir[d], i)
	}
	wds := map[int32]string{}    // watch descriptor → directory
	watched := map[string]bool{} // directories with a watch
	warned := map[string]bool{}  // directories we failed to watch, logged once
	const mask = unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_DELETE | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
	addWatches := func() {
		for d := range byDir {
			if watched[d] {
				continue
			}
			wd, err := unix.InotifyAddWatch(fd, d, mask)
			if err != nil {
				if !warned[d] {
					w.log.Warn("track_file: cannot watch directory, re-reading periodically", "dir", d, "err", err, "every", resync)
					warned[d] = true
				}
				continue
			}
			wds[int32(wd)] = d
			watched[d] = true
			delete(warned, d)
		}
	}
	addWatches()
	readAll()
	next := time.Now().Add(resync)
	buf := make([]byte, 64*1024)
	dirty := map[int]bool{} // files to read once writes have settled
	var settleAt time.Time
	for {
		deadline := next
		if len(dirty) > 0 && settleAt.Before(deadline) {
			deadline = settleAt
		}
		setDeadline(deadline)
		n, err := in.Read(buf)
		if ctx.Err() != nil {
			return nil
		}
		now := time.Now()
		if !now.Before(next) {
			addWatches()
			readAll()
			clear(dirty)
			next = now.Add(resync)
		}
		if len(dirty) > 0 && !now.Before(settleAt) {
			for i := range w.files {
				if dirty[i] {
					w.read(i, &states[i])
				}
			}
			clear(dirty)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			return fmt.Errorf("track: read inotify: %w", err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameBytes := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				for i := range w.files {
					dirty[i] = true
				}
				continue
			}
			d, ok := wds[ev.Wd]
			if !ok {
				continue
			}
			if ev.Mask&(unix.IN_IGNORED|unix.IN_MOVE_SELF) != 0 {
				// The directory went away or moved (its watch would follow
				// it elsewhere): files read as missing now, and the path
				// is watched again at the next resync.
				if ev.Mask&unix.IN_MOVE_SELF != 0 {
					_, _ = unix.InotifyRmWatch(fd, uint32(ev.Wd))
				}
				delete(wds, ev.Wd)
				delete(watched, d)
				for _, i := range byDir[d] {
					dirty[i] = true
				}
				continue
			}
			name := string(bytes.TrimRight(nameBytes, "\x00"))
			for _, i := range byDir[d] {
				if name == "" || filepath.Base(w.files[i].Path) == name {
					dirty[i] = true
				}
			}
		}
		if len(dirty) > 0 && n > 0 {
			// Every event about a file postpones its read: a writer that
			// truncates and rewrites is read once it has finished.
			settleAt = now.Add(fileSettle)
		}
	}
}

// fileSettle is how long a file must be quiet before it is read.
const fileSettle = 20 * time.Millisecond

// poll reads every file every period until ctx ends.
func (w *FileWatcher) poll(ctx context.Context, period time.Duration, readAll func()) error {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		readAll()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// read reads file i and reports it if its result changed.
func (w *FileWatcher) read(i int, st *fileState) {
	f := w.files[i]
	value, ok, detail := ReadValueFile(f.Path)
	if ok && detail != "" && st.reported {
		// Unreadable as a number in range: keep the last value.
		w.log.Warn("track_file value ignored", "track_file", f.Name, "detail", detail)
		return
	}
	if st.reported && st.ok == ok && st.value == value {
		return
	}
	*st = fileState{reported: true, ok: ok, value: value}
	if detail == "" {
		detail = fmt.Sprintf("%s reads %d", f.Path, value)
	}
	w.log.Info("track_file changed", "track_file", f.Name, "value", value, "detail", detail)
	w.report(Event{Kind: KindFile, Name: f.Name, OK: ok, Value: value, Detail: detail})
}

// ReadValueFile reads a track_file as keepalived 2.2.7 does: a missing or
// unreadable file is 0 (ok false, detail says why); otherwise the number
// at the start of the file as ParseValue reads it (ok true). A number out
// of range is returned as 0 with ok true and a detail: the caller keeps
// the previous value, as keepalived does.
func ReadValueFile(path string) (value int, ok bool, detail string) {
	fh, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, false, path + " does not exist: counts as 0"
		}
		return 0, false, fmt.Sprintf("cannot read %s: %v: counts as 0", path, err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxFileRead))
	if err != nil {
		return 0, false, fmt.Sprintf("cannot read %s: %v: counts as 0", path, err)
	}
	v, inRange := ParseValue(b)
	if !inRange {
		return 0, true, fmt.Sprintf("%s holds a number out of range (%q)", path, firstLine(b))
	}
	return v, true, ""
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 40 {
		b = b[:40]
	}
	return string(b)
}

// ParseValue reads the number a track_file holds the way keepalived 2.2.7
// does (C's strtol with base 0), found by writing values to a tracked file
// and watching the priority: leading white space and a sign are allowed;
// "0x" starts a hexadecimal number and a leading 0 an octal one ("0x10" is
// 16, "010" is 8); reading stops at the first character that is not a
// digit ("2.9" is 2, "7 junk" is 7); no digits at all is 0 ("abc"). A value
// outside the 32-bit int range returns inRange false (keepalived then
// ignores the read).
func ParseValue(b []byte) (v int, inRange bool) {
	i := 0
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	base := int64(10)
	if i+1 < len(b) && b[i] == '0' && (b[i+1] == 'x' || b[i+1] == 'X') && i+2 < len(b) && digit.Value(b[i+2]) < 16 {
		base = 16
		i += 2
	} else if i < len(b) && b[i] == '0' {
		base = 8
	}
	var n int64
	for ; i < len(b); i++ {
		d := int64(digit.Value(b[i]))
		if d >= base {
			break
		}
		n = n*base + d
		if n > math.MaxInt32+1 {
			return 0, false
		}
	}
	if neg {
		n = -n
	}
	if n > math.MaxInt32 || n < math.MinInt32 {
		return 0, false
	}
	return int(n), true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// initFile applies init_file: write the value if the file is missing, or
// always with overwrite. The write goes through a temporary file and a
// rename, so a reader never sees it half written.
func (w *FileWatcher) initFile(f File) {
	if !f.InitFile {
		return
	}
	if !f.Overwrite {
		if _, err := os.Lstat(f.Path); err == nil {
			return
		}
	}
	tmp := f.Path + ".vigil-tmp"
	data := []byte(strconv.Itoa(f.InitValue) + "\n")
	err := os.WriteFile(tmp, data, 0o644)
	if err == nil {
		err = os.Rename(tmp, f.Path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		w.log.Warn("track_file: init_file failed", "track_file", f.Name, "path", f.Path, "err", err)
	}
}
