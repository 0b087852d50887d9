package vrrp

import "time"

// SkewTime is section 6.1's Skew_Time for a router of the given priority.
// Version 3 (RFC 5798): (256−priority)×masterAdverInterval/256. Version 2
// (RFC 3768 section 6.1): (256−priority)/256 seconds, whatever the interval.
//
// The result is exact to the nanosecond rather than truncated to whole
// centiseconds; see the package documentation.
func SkewTime(version int, priority uint8, masterAdverInterval time.Duration) time.Duration {
	base := masterAdverInterval
	if version == 2 {
		base = time.Second
	}
	// Multiply before dividing: 256 × 40.95s is far from overflowing.
	return time.Duration(256-int64(priority)) * base / 256
}

// MasterDownInterval is section 6.1's Master_Down_Interval:
// 3×Master_Adver_Interval + Skew_Time.
func MasterDownInterval(version int, priority uint8, masterAdverInterval time.Duration) time.Duration {
	return 3*masterAdverInterval + SkewTime(version, priority, masterAdverInterval)
}

// EffectivePriority is base plus the tracking delta, clamped to 1..254, as
// keepalived computes it; the address owner's 255 never changes.
func EffectivePriority(base uint8, delta int) uint8 {
	if base == 255 {
		return 255
	}
	p := int(base) + delta
	switch {
	case p < 1:
		return 1
	case p > 254:
		return 254
	}
	return uint8(p)
}
