package config

import "strings"

// span is a piece of a logical line together with the source column of each
// of its bytes, so that words keep their place through comment stripping,
// brace splitting and parameter substitution. Text inserted by a
// substitution takes the column of the `$` it replaced.
type span struct {
	s    string
	cols []int32 // len(cols) == len(s); 1-based columns
	// mark is a '\' that ended the physical line: keepalived takes it off
	// before anything else and puts it back after the comment and the
	// substitutions, so it belongs to the end of the text whatever happens
	// to the text before it.
	mark bool
}

// newSpan makes a span of s whose first byte is at column col.
func newSpan(s string, col int) span {
	cols := make([]int32, len(s))
	for i := range cols {
		cols[i] = int32(col + i)
	}
	return span{s: s, cols: cols}
}

// flatSpan makes a span whose bytes all sit at column col (substituted text).
func flatSpan(s string, col int32) span {
	cols := make([]int32, len(s))
	for i := range cols {
		cols[i] = col
	}
	return span{s: s, cols: cols}
}

func (sp span) slice(i, j int) span {
	return span{s: sp.s[i:j], cols: sp.cols[i:j], mark: sp.mark && j == len(sp.s)}
}

// cut is slice(0, j) keeping the end mark, for text removed from the end.
func (sp span) cut(j int) span {
	r := sp.slice(0, j)
	r.mark = sp.mark
	return r
}

// col returns the column of byte i; past the end it is one more than the
// last byte's column, which is where "expected ..." diagnostics point.
func (sp span) col(i int) int {
	switch {
	case len(sp.cols) == 0:
		return 0
	case i < len(sp.cols):
		return int(sp.cols[i])
	default:
		return int(sp.cols[len(sp.cols)-1]) + 1
	}
}

// isBlank is C isspace: keepalived separates words with any of these, which
// is also why a CRLF file reads like an LF one.
func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// trim drops blanks at the end, and spaces and tabs at the start: keepalived
// looks for @, $, ~ and include after those only, so "\r@id x" keeps the
// keyword "@id" (the word splitter skips the '\r' as any blank).
func (sp span) trim() span {
	i, j := 0, len(sp.s)
	for i < j && (sp.s[i] == ' ' || sp.s[i] == '\t') {
		i++
	}
	for j > i && isBlank(sp.s[j-1]) {
		j--
	}
	return sp.slice(i, len(sp.s)).cut(j - i)
}

// stripComment cuts the text at the first '#' or '!' outside double quotes
// and not escaped with a backslash ("\#" is a '#' in a word; "\\#" is two
// backslashes and a comment, as in keepalived). A newline resets the quote
// state because multi-line parameter values are stripped line by line.
func stripComment(sp span) span {
	inQuote := false
	for i := 0; i < len(sp.s); i++ {
		switch sp.s[i] {
		case '"':
			inQuote = !inQuote
		case '\n':
			inQuote = false
		case '\\':
			if !inQuote && i+1 < len(sp.s) && strings.IndexByte("\\#!", sp.s[i+1]) >= 0 {
				i++
			}
		case '#', '!':
			if !inQuote {
				return sp.cut(i)
			}
		}
	}
	return sp
}

// unescapeWord removes the backslash of "\#" and "\!" in an unquoted word;
// "\\" stays as it is.
func unescapeWord(w string) string {
	if !strings.Contains(w, `\`) {
		return w
	}
	var b strings.Builder
	for i := 0; i < len(w); i++ {
		if w[i] == '\\' && i+1 < len(w) {
			switch w[i+1] {
			case '#', '!':
				i++
			case '\\':
				b.WriteByte('\\')
				i++
			}
		}
		b.WriteByte(w[i])
	}
	return b.String()
}

// unescapeQuoted reads "\#" and "\!" in a quoted word as '#' and '!', as
// keepalived does (auth_pass "ab\#cd" is the password ab#cd).
func unescapeQuoted(w string) string {
	if !strings.Contains(w, `\#`) && !strings.Contains(w, `\!`) {
		return w
	}
	return strings.NewReplacer(`\\`, `\\`, `\#`, "#", `\!`, "!").Replace(w)
}

// escapedComment returns the index of the first "\#" or "\!" outside double
// quotes ("\\" is a backslash, so "\\#" was already a comment), or -1.
func escapedComment(s string) int {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			inQuote = !inQuote
		case '\\':
			switch {
			case inQuote || i+1 == len(s):
			case s[i+1] == '#' || s[i+1] == '!':
				return i
			case s[i+1] == '\\':
				i++
			}
		}
	}
	return -1
}

// escapedQuoteOpen checks quotes the way keepalived does besides splitting
// words: there a backslash escapes the next character, so "\"" neither
// opens nor closes a quoted string ("x\" y" is open, though its words are
// `x\` and `y`). It returns where a quote is left open, or -1.
func escapedQuoteOpen(s string) int {
	open := -1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			if open < 0 {
				open = i
			} else {
				open = -1
			}
		}
	}
	return open
}

// findBrace returns the index of the first '{' or '}' outside double quotes,
// or -1.
func findBrace(s string) int {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			inQuote = !inQuote
		case '{', '}':
			if !inQuote {
				return i
			}
		}
	}
	return -1
}

// lexProblem is a problem found while splitting words, at column col.
type lexProblem struct {
	col int
	msg string
}

// splitWords splits one brace-free piece of a line into words as keepalived
// does: blanks separate words, and a double quote always starts a new word
// that runs to the next double quote, blanks, '#', '!' and braces included
// (so `a"b c"d` is the three words a, "b c" and d). Single quotes and
// backslashes are ordinary characters here; script keywords re-split their
// raw text with SplitCommand. An unterminated quoted word is dropped and
// reported. raw is the text after the first word, for Node.Raw.
func splitWords(sp span, file string, line int) (words []Word, raw string, probs []lexProblem) {
	s := sp.s
	firstEnd := -1
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case isBlank(c):
			i++
		case c == '"':
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				probs = append(probs, lexProblem{col: sp.col(i),
					msg: "unterminated double quote: expected a closing '\"' before the end of the line"})
				i = len(s)
				break
			}
			words = append(words, Word{Text: unescapeQuoted(s[i+1 : i+1+j]), Pos: Pos{File: file, Line: line, Col: sp.col(i)}, Quoted: true})
			i += j + 2
		default:
			j := i
			for j < len(s) && !isBlank(s[j]) && s[j] != '"' {
				j++
			}
			words = append(words, Word{Text: unescapeWord(s[i:j]), Pos: Pos{File: file, Line: line, Col: sp.col(i)}})
			i = j
		}
		if firstEnd < 0 && len(words) == 1 {
			firstEnd = i
		}
	}
	if firstEnd >= 0 {
		raw = strings.TrimFunc(s[firstEnd:], func(r rune) bool { return r < 0x80 && isBlank(byte(r)) })
	}
	return words, raw, probs
}
