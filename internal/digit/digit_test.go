package digit

import "testing"

func TestValue(t *testing.T) {
	for c, want := range map[byte]int{'0': 0, '9': 9, 'a': 10, 'f': 15, 'A': 10, 'F': 15, 'g': 16, 'x': 16, ' ': 16, '/': 16, ':': 16, '@': 16, 'G': 16} {
		if got := Value(c); got != want {
			t.Errorf("Value(%q) = %d, want %d", c, got, want)
		}
	}
}
