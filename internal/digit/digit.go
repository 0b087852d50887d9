// Package digit reads one digit of a number in any base up to 16, the one
// way the config lexer (\xHH escapes), track_file (strtol's bases) and
// UDP_CHECK (hex payloads) all need. It is pure.
package digit

// Value returns the value of c as a digit (0-9, a-f, A-F), or 16 when c is
// no digit: a caller checks v < base for any base up to 16.
func Value(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return 16
}
