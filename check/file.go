package check

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"vigil/track"
)

// FilePollInterval is how often the daemon has a FILE_CHECK read its file.
// keepalived reads a track_file when inotify says it changed; vigil reads
// it on this period (a stat and a read of a few bytes), so a change shows
// within a second.
const FilePollInterval = time.Second

// FileConfig configures a FILE_CHECK: the real server follows the number
// in a track_file (keepalived.conf(5), "FILE_CHECK" and "Track files").
type FileConfig struct {
	// Name is the track_file block's name, for messages.
	Name string
	// Path is the track_file's file.
	Path string
	// Weight is the checker's weight (default the track_file's, whose
	// default is 1); Reverse negates the product.
	Weight  int
	Reverse bool
	// Dynamic: while up, the server's weight is its configured weight plus
	// value × weight.
	Dynamic bool
	// BaseWeight is the real server's configured weight.
	BaseWeight int
}

// File is a FILE_CHECK. The value is read as keepalived reads a
// track_file (track.ParseValue); a missing or unreadable file counts as 0,
// and a number out of the 32-bit range keeps the previous value.
//
//   - weight 0: the server is down while the value is not 0;
//   - otherwise r = value × weight (negated with reverse): the server is
//     down while its configured weight + r is negative; with dynamic its
//     weight is the configured weight + r (at most lb.MaxWeight).
type File struct {
	cfg  FileConfig
	last atomic.Int64 // the last value in range, for an out-of-range read
}

// NewFile validates cfg and returns the checker; it reads nothing.
func NewFile(cfg FileConfig) (*File, error) {
	if cfg.Path == "" {
		return nil, fmt.Errorf("FILE_CHECK: track_file %s has no file", cfg.Name)
	}
	if cfg.BaseWeight < 0 {
		return nil, fmt.Errorf("FILE_CHECK: real server weight %d is negative", cfg.BaseWeight)
	}
	return &File{cfg: cfg}, nil
}

func (c *File) String() string {
	if c.cfg.Name != "" {
		return "FILE_CHECK " + c.cfg.Name
	}
	return "FILE_CHECK " + c.cfg.Path
}

// Check reads the file once and judges the value.
func (c *File) Check(ctx context.Context) Result {
	start := time.Now()
	if ctx.Err() != nil {
		return down(c.cfg.Path+": cancelled", start)
	}
	v, ok, detail := track.ReadValueFile(c.cfg.Path)
	if ok && detail != "" {
		// Out of range: keepalived ignores the read.
		v = int(c.last.Load())
	} else {
		c.last.Store(int64(v))
	}
	if detail != "" {
		detail = "; " + detail
	}
	res, err := c.judge(v)
	if err != nil {
		return down(err.Error()+detail, start)
	}
	r := up(res+detail, start)
	if c.cfg.Dynamic && c.cfg.Weight != 0 {
		r.Weight = c.weight(v)
	}
	return r
}

func (c *File) product(v int) int64 {
	r := int64(v) * int64(c.cfg.Weight)
	if c.cfg.Reverse {
		r = -r
	}
	return r
}

func (c *File) weight(v int) int {
	return int(min(int64(c.cfg.BaseWeight)+c.product(v), math.MaxInt32))
}

func (c *File) judge(v int) (string, error) {
	if c.cfg.Weight == 0 {
		if v != 0 {
			return "", fmt.Errorf("%s holds %d (weight 0: not 0 means down)", c.cfg.Path, v)
		}
		return c.cfg.Path + " holds 0", nil
	}
	if w := int64(c.cfg.BaseWeight) + c.product(v); w < 0 {
		return "", fmt.Errorf("%s holds %d: weight %d%+d is negative", c.cfg.Path, v, c.cfg.BaseWeight, c.product(v))
	}
	return fmt.Sprintf("%s holds %d", c.cfg.Path, v), nil
}
