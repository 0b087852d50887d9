// Package enum is the one String rule of vigil's small integer enums: a
// table of names indexed by value, and Type(n) for a value the table does
// not name, so that a bad value prints as itself instead of as "" or as a
// valid name. Pure: no I/O.
package enum

import "strconv"

// Integer is the underlying type of an enum.
type Integer interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~uint | ~uint8 | ~uint16 | ~uint32
}

// Name returns names[v], or typ(v) when v is outside names or its entry is
// empty.
func Name[T Integer](names []string, v T, typ string) string {
	if v >= 0 && uint64(v) < uint64(len(names)) && names[v] != "" {
		return names[v]
	}
	return typ + "(" + strconv.FormatInt(int64(v), 10) + ")"
}
