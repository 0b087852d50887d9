package config

import (
	"errors"
	"fmt"
	"strings"
	"vigil/internal/digit"
)

// ErrUnterminatedQuote is returned (wrapped) by SplitCommand and ScriptFields
// for a quote that is never closed.
var ErrUnterminatedQuote = errors.New("unterminated quote")

// ErrEmptyCommand is returned (wrapped) by SplitCommand when there is no command.
var ErrEmptyCommand = errors.New("empty command")

// SplitCommand tokenises a script-valued keyword's Raw text shell-like (single quotes,
// double quotes, backslash escapes), as keepalived does for script, notify*, misc_path.
//
// keepalived reads such a value in two passes, and so does SplitCommand: the
// value is first split into fields (see ScriptFields: the command, then the
// optional user and group), and the first field is split again into the
// program and its arguments with the same rules. So
//
//	script "/bin/check 'a b' c\"d e\""
//
// runs /bin/check with the arguments "a b" and `cd e`, and an escape such as
// \t that yields a blank in the first pass separates arguments in the second.
func SplitCommand(raw string) ([]string, error) {
	f, err := ScriptFields(raw)
	if err != nil {
		return nil, err
	}
	if len(f) == 0 {
		return nil, fmt.Errorf("%w: expected a program to run", ErrEmptyCommand)
	}
	argv, err := shellFields(f[0])
	if err != nil {
		return nil, fmt.Errorf("command %q: %w", f[0], err)
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("%w: expected a program to run", ErrEmptyCommand)
	}
	return argv, nil
}

// ScriptFields splits the Raw text of a script keyword into its fields: the
// command line (one field, usually double-quoted), then the optional user
// and group the script runs as. Blanks separate fields; ' and " quote (and
// are removed, so `a"b c"d` is one field "ab cd"); a backslash escapes as
// described in keepalived.conf(5), "Quoted strings": \a \b \E \f \n \r \t \v,
// \nnn (up to three octal digits), \xXX (any number of hex digits, the
// value taken modulo 256), \cC (control-C), and \C for any other C is C.
// Escapes work inside both kinds of quotes.
func ScriptFields(raw string) ([]string, error) { return shellFields(raw) }

func shellFields(s string) ([]string, error) {
	var (
		out   []string
		cur   strings.Builder
		inArg bool
	)
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case isBlank(c):
			if inArg {
				out = append(out, cur.String())
				cur.Reset()
				inArg = false
			}
			i++
		case c == '\'' || c == '"':
			inArg = true
			j := i + 1
			lastEscape := false
			for j < len(s) && s[j] != c {
				if s[j] == '\\' {
					b, n := unescape(s[j+1:])
					cur.WriteString(b)
					j += 1 + n
					lastEscape = true
					continue
				}
				cur.WriteByte(s[j])
				j++
				lastEscape = false
			}
			if j >= len(s) {
				// keepalived 2.2.7 accepts a quote left open when the text
				// ends right after the quote or right after an escape
				// (`a"` and `a"b\c`), and refuses it otherwise (`a"bc`).
				if j > i+1 && !lastEscape {
					return nil, fmt.Errorf("%w: missing closing %c in %q", ErrUnterminatedQuote, c, s)
				}
				i = j
				break
			}
			i = j + 1
		case c == '\\':
			inArg = true
			b, n := unescape(s[i+1:])
			cur.WriteString(b)
			i += 1 + n
		default:
			inArg = true
			cur.WriteByte(c)
			i++
		}
	}
	if inArg {
		out = append(out, cur.String())
	}
	return out, nil
}

// unescape decodes the escape after a backslash; s starts after the
// backslash. It returns the bytes it stands for and how many bytes of s it
// used. A backslash at the very end stands for itself.
func unescape(s string) (string, int) {
	if s == "" {
		return `\`, 0
	}
	switch c := s[0]; c {
	case 'a':
		return "\a", 1
	case 'b':
		return "\b", 1
	case 'E':
		return "\x1b", 1
	case 'f':
		return "\f", 1
	case 'n':
		return "\n", 1
	case 'r':
		return "\r", 1
	case 't':
		return "\t", 1
	case 'v':
		return "\v", 1
	case 'x':
		v, n := 0, 1
		for n < len(s) && digit.Value(s[n]) < 16 {
			v = (v<<4 | digit.Value(s[n])) & 0xff
			n++
		}
		if n == 1 {
			return "x", 1
		}
		return string([]byte{byte(v)}), n
	case 'c':
		if len(s) < 2 {
			return "c", 1
		}
		return string([]byte{s[1] & 0x1f}), 2
	default:
		if '0' <= c && c <= '7' {
			v, n := 0, 0
			for n < len(s) && n < 3 && '0' <= s[n] && s[n] <= '7' {
				v = v<<3 | int(s[n]-'0')
				n++
			}
			return string([]byte{byte(v)}), n
		}
		return s[:1], 1
	}
}
