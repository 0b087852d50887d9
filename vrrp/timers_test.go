package vrrp_test

import (
	"errors"
	"testing"
	"time"

	"vigil/vrrp"
)

func TestSkewTimeAndMasterDownInterval(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		version  int
		prio     uint8
		interval time.Duration
		skew     time.Duration
		down     time.Duration
	}{
		// Version 2: (256−prio)/256 s whatever the interval (RFC 3768).
		{2, 1, time.Second, 996093750, 3*time.Second + 996093750},
		{2, 100, time.Second, 609375 * time.Microsecond, 3609375 * time.Microsecond},
		{2, 101, time.Second, 605468750, 3605468750},
		{2, 254, time.Second, 7812500, 3007812500},
		{2, 255, time.Second, 3906250, 3003906250},
		{2, 100, 3 * time.Second, 609375 * time.Microsecond, 9609375 * time.Microsecond},
		{2, 100, 255 * time.Second, 609375 * time.Microsecond, 765*time.Second + 609375*time.Microsecond},
		// Version 3: (256−prio)×interval/256, exact, not truncated to cs.
		{3, 100, time.Second, 609375 * time.Microsecond, 3609375 * time.Microsecond},
		{3, 101, time.Second, 605468750, 3605468750},
		{3, 100, 3 * time.Second, 1828125 * time.Microsecond, 10828125 * time.Microsecond},
		{3, 1, 10 * ms, 9960937, 39960937},
		{3, 254, 10 * ms, 78125, 30078125},
		{3, 255, 10 * ms, 39062, 30039062},
		{3, 1, 40950 * ms, 40790039062, 163640039062},
		{3, 254, 40950 * ms, 319921875, 123169921875},
		{3, 255, 40950 * ms, 159960937, 123009960937},
		{3, 128, 500 * ms, 250 * ms, 1750 * ms},
	} {
		skew := vrrp.SkewTime(tc.version, tc.prio, tc.interval)
		down := vrrp.MasterDownInterval(tc.version, tc.prio, tc.interval)
		if skew != tc.skew || down != tc.down {
			t.Errorf("v%d prio %d interval %v: skew %v (%d), down %v (%d); want %v, %v",
				tc.version, tc.prio, tc.interval, skew, int64(skew), down, int64(down), tc.skew, tc.down)
		}
	}
}

// Higher priorities must always have strictly shorter down intervals, so
// that the best backup takes over first (RFC 5798 section 6.1, Skew_Time).
func TestMasterDownIntervalOrdersPriorities(t *testing.T) {
	for _, v := range []int{2, 3} {
		for _, ival := range []time.Duration{10 * time.Millisecond, time.Second, 40950 * time.Millisecond} {
			if v == 2 && ival < time.Second {
				continue
			}
			for p := 1; p < 255; p++ {
				lo := vrrp.MasterDownInterval(v, uint8(p), ival)
				hi := vrrp.MasterDownInterval(v, uint8(p+1), ival)
				if hi >= lo {
					t.Fatalf("v%d interval %v: priority %d down %v, priority %d down %v", v, ival, p+1, hi, p, lo)
				}
			}
		}
	}
}

func TestEffectivePriority(t *testing.T) {
	for _, tc := range []struct {
		base  uint8
		delta int
		want  uint8
	}{
		{100, 0, 100}, {100, -99, 1}, {100, -100, 1}, {100, -1000, 1},
		{100, 154, 254}, {100, 155, 254}, {100, 1 << 30, 254},
		{254, 1, 254}, {1, 0, 1}, {1, -1, 1},
		{255, -254, 255}, {255, 10, 255}, {255, -1 << 30, 255},
	} {
		if got := vrrp.EffectivePriority(tc.base, tc.delta); got != tc.want {
			t.Errorf("EffectivePriority(%d, %d) = %d, want %d", tc.base, tc.delta, got, tc.want)
		}
	}
}

func TestAdvertIntervalLimits(t *testing.T) {
	for _, tc := range []struct {
		version  int
		interval time.Duration
		ok       bool
	}{
		{2, time.Second, true}, {2, 255 * time.Second, true}, {2, 256 * time.Second, false},
		{2, 1500 * time.Millisecond, false}, {2, 500 * time.Millisecond, false},
		{3, 10 * time.Millisecond, true}, {3, 40950 * time.Millisecond, true},
		{3, 40960 * time.Millisecond, false}, {3, 5 * time.Millisecond, false},
		{3, 15 * time.Millisecond, false}, {3, -time.Second, false},
	} {
		c := v3(100)
		c.Version, c.AdvertInterval = tc.version, tc.interval
		_, err := vrrp.New(c, t0)
		if (err == nil) != tc.ok {
			t.Errorf("v%d interval %v: err %v, want ok=%v", tc.version, tc.interval, err, tc.ok)
		}
		if err != nil && !errors.Is(err, vrrp.ErrConfig) {
			t.Errorf("error %v does not wrap ErrConfig", err)
		}
	}
}

// The Master_Down_Timer of a real instance follows the table: a backup that
// never hears a master takes over exactly at Master_Down_Interval.
func TestBackupTakesOverAtMasterDownInterval(t *testing.T) {
	for _, tc := range []struct {
		version  int
		prio     uint8
		interval time.Duration
	}{{2, 1, time.Second}, {2, 254, 3 * time.Second}, {3, 1, 10 * time.Millisecond}, {3, 254, 40950 * time.Millisecond}, {3, 100, time.Second}} {
		c := v3(tc.prio)
		c.Version, c.AdvertInterval = tc.version, tc.interval
		if tc.version == 2 {
			c.AuthType = 0
		}
		in := start(t, c, t0)
		down := vrrp.MasterDownInterval(tc.version, tc.prio, tc.interval)
		in.Advance(t0.Add(down - time.Nanosecond))
		if in.State() != vrrp.StateBackup {
			t.Errorf("v%d prio %d: %v before the down interval", tc.version, tc.prio, in.State())
		}
		in.Advance(t0.Add(down))
		if in.State() != vrrp.StateMaster {
			t.Errorf("v%d prio %d: %v at the down interval %v", tc.version, tc.prio, in.State(), down)
		}
	}
}
