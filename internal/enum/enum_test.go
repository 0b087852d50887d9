package enum

import "testing"

type color int8

type code uint8

func TestName(t *testing.T) {
	colors := []string{1: "red", 2: "green"}
	for _, tc := range []struct {
		v    color
		want string
	}{{1, "red"}, {2, "green"}, {0, "color(0)"}, {3, "color(3)"}, {-1, "color(-1)"}} {
		if got := Name(colors, tc.v, "color"); got != tc.want {
			t.Errorf("Name(%d) = %q, want %q", tc.v, got, tc.want)
		}
	}
	if got := Name([]string{"a"}, code(255), "code"); got != "code(255)" {
		t.Errorf("unsigned out of range: %q", got)
	}
	if got := Name(nil, code(0), "code"); got != "code(0)" {
		t.Errorf("empty table: %q", got)
	}
}
