package config

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// The preprocessor follows keepalived 2.2.7 as observed with `keepalived -t`
// and its -d dump, where that differs from keepalived.conf(5) or is not in
// it (each point has a table test):
//   - a quoted word starting a line that is "{" or "}" still opens or closes
//     a block; "\#" and "\!" outside quotes are '#' and '!' in a word;
//   - a line is read in 1023-byte pieces; a final unescaped '\' with no
//     blank after it is taken off first and put back after the comment and
//     the substitutions ("kw \" is the word `kw\`);
//   - only spaces and tabs may come before @, $NAME=, ~SEQ and include;
//   - only one @ID condition per line ("@a @b x" keeps the keyword "@b");
//   - $NAME ends at a blank, ')' or ','; a multi-line parameter is replaced
//     only at the end of a line and its lines are read one by one;
//   - ~SEQ variables keep their last value; a parameter may be a whole
//     ~SEQ/~LST value; includes made by parameters or generators are read
//     after the rest of what made them, last first;
//   - include checks: "readable" is not an include_check option, includew
//     also refuses a missing plain name, match ignores brace patterns, a bare
//     option may only come first, and only bare options imply readable;
//     "{}" is an empty alternative, an unclosed '[' is literal, a wildcard
//     does not match a leading '.', and "dir/*/" matches directories.
//
// It differs on purpose where keepalived hangs, crashes or silently
// truncates: include cycles, self-referring parameters and expansions past
// keepalived's 1 KiB line buffer are diagnostics.

// ppLimits bounds the work of one ParseTree call, so that no input (a
// recursive parameter, a huge ~SEQ, an include bomb) can hang it or make it
// allocate without bound. Exceeding a limit is a diagnostic, never a panic.
type ppLimits struct {
	includeDepth  int // files open at once, the main file included
	includeFiles  int // files read in one parse
	globs         int // glob calls in one parse
	braceAlts     int // alternatives of one include brace expansion
	lineLen       int // bytes keepalived reads as one line
	expandLen     int // bytes of one line after parameter substitution
	substitutions int // parameter replacements in one line
	substCost     int // bytes copied by the replacements in one line
	nesting       int // re-processing depth (substitution and generators)
	genLines      int // lines one ~SEQ/~LST line may produce
	blockDepth    int // nested open blocks
	pieces        int // lines, braces and generated lines processed in one parse
	nodes         int // keyword lines in the tree
	bytes         int // bytes processed in one parse, expansion included
}

var defaultLimits = ppLimits{
	includeDepth:  32,
	includeFiles:  4096,
	globs:         16384,
	braceAlts:     1024,
	lineLen:       1023,
	expandLen:     1 << 20,
	substitutions: 10000,
	substCost:     4 << 20,
	nesting:       64,
	genLines:      1 << 17, // the man page's 8×32×254 example fits
	blockDepth:    256,
	pieces:        4 << 20, // the man page's 65024-instance example needs over 3M
	nodes:         2 << 20, // and 1.1M keyword lines
	bytes:         256 << 20,
}

// includeCheck is keepalived's include_check level: which include problems
// are errors rather than remarks.
type includeCheck uint8

const (
	checkReadable      includeCheck = 1 << iota // a match that cannot be read
	checkMatch                                  // a plain (wildcard-free) name that does not exist
	checkWildcardMatch                          // any pattern that matches nothing
	checkBraceMatch                             // a brace alternative that matches nothing
	checkAll           = checkReadable | checkMatch | checkWildcardMatch | checkBraceMatch
)

// includeVariants maps the include keywords to the checks they add to the
// current include_check level (keepalived.conf(5), "include").
// includew also refuses a plain name that does not exist, unlike
// "include_check wildcard_match" (observed on keepalived 2.2.7).
var includeVariants = map[string]includeCheck{
	"include":  0,
	"includer": checkReadable,
	"includem": checkReadable | checkMatch,
	"includew": checkReadable | checkMatch | checkWildcardMatch,
	"includeb": checkReadable | checkBraceMatch,
	"includea": checkAll,
}

// includeCheckNames are the options of include_check. keepalived 2.2.7
// refuses "readable" although its manual lists it; each of these implies
// the readable check.
var includeCheckNames = map[string]includeCheck{
	"match":          checkReadable | checkMatch,
	"wildcard_match": checkReadable | checkWildcardMatch,
	"brace_match":    checkReadable | checkBraceMatch,
}

// srcFile is one file on the include stack.
type srcFile struct {
	name  string
	check includeCheck // saved when an include opens a file, restored when it closes
}

// deferredInclude is an include line made by a parameter or a generator.
type deferredInclude struct {
	kw      string
	pattern span
	pos     Pos
}

// openBlock is a '{' waiting for its '}'. node is nil for a brace that had
// no keyword before it: its lines go to the enclosing block so that they are
// still checked, and its '}' still pairs with it.
type openBlock struct {
	node *Node
	dst  *[]*Node
	pos  Pos
}

type preprocessor struct {
	env    Env
	lim    ppLimits
	id     string
	diags  Diagnostics
	params map[string]string
	rng    *rand.Rand

	files    []*srcFile
	deferred []deferredInclude // includes made by the current line, run after it
	cycles   map[string]bool   // include cycles reported, by include line and file
	seen     map[diagKey]int   // index in diags of each finding, for repeats
	// aborted stops the expansion of the current source line: once one
	// branch of it ran into a limit (a parameter defined in terms of
	// itself), every other branch would too, each with its own report;
	// the budget is the source line's, across all nesting levels.
	aborted bool
	nFiles  int
	nGlobs  int
	pieces  int
	nodes   int
	bytes   int
	stopped bool

	root []*Node
	open []openBlock
	last *Node // the last keyword line, which a following '{' opens
}

// ParseTree reads the file `path` through env (env.ReadFile, env.Glob), runs the
// whole keepalived preprocessor and returns the top-level nodes of the block tree.
// It never panics and never hangs on any input; every problem becomes a Diagnostic
// with file:line(:col), severity and what was expected; all problems in all files
// are reported, not only the first.
//
// Give an absolute path: ${_PWD} is the directory of the file being read as
// given, and keepalived's is always absolute.
func ParseTree(path string, env Env) ([]*Node, Diagnostics) {
	fatal := func(format string, args ...any) ([]*Node, Diagnostics) {
		return nil, Diagnostics{{Pos: Pos{File: path}, Severity: Fatal, Msg: fmt.Sprintf(format, args...)}}
	}
	if env.ReadFile == nil {
		return fatal("cannot read configuration: no file reader")
	}
	var pre Diagnostics
	if env.Stat != nil {
		fi, err := env.Stat(path)
		if err != nil {
			return fatal("cannot read configuration file: %v", err)
		}
		switch what := notConfigFile(fi); {
		case what != "" && fi.Mode().IsRegular():
			// keepalived 2.2.7 skips it and runs with nothing configured:
			// vigil reads it, but says so.
			pre = append(pre, Diagnostic{Pos: Pos{File: path}, Severity: Warning,
				Msg: fmt.Sprintf("the configuration file is %s: keepalived 2.2.7 skips such a file and runs with an empty configuration; remove the execute bits", what)})
		case what != "":
			return fatal("cannot read configuration file: it is %s, not a regular file", what)
		case fi.Size() > MaxFileSize:
			return fatal("cannot read configuration file: it is %d bytes, and vigil reads at most %d (MaxFileSize)", fi.Size(), MaxFileSize)
		}
	}
	data, err := env.ReadFile(path)
	if err != nil {
		return fatal("cannot read configuration file: %v", err)
	}
	if len(data) > MaxFileSize {
		return fatal("cannot read configuration file: it is over %d bytes, and vigil reads at most %d (MaxFileSize)", MaxFileSize, MaxFileSize)
	}
	nodes, diags := parseTree(path, data, env, defaultLimits)
	return nodes, append(pre, diags...)
}

// ParseTreeBytes is the same for in-memory text named `name` (includes still go through env).
func ParseTreeBytes(name string, data []byte, env Env) ([]*Node, Diagnostics) {
	return parseTree(name, data, env, defaultLimits)
}

func parseTree(name string, data []byte, env Env, lim ppLimits) ([]*Node, Diagnostics) {
	p := &preprocessor{
		env:    env,
		lim:    lim,
		id:     env.ID,
		params: map[string]string{},
		cycles: map[string]bool{},
		seen:   map[diagKey]int{},
		rng:    rand.New(rand.NewPCG(0, 0)),
	}
	if p.id == "" {
		p.id = env.Hostname
	}
	p.nFiles = 1
	p.file(name, data, 0)
	// Braces without a keyword were reported where they opened: one
	// summary for those, one diagnostic for each keyword's block.
	anon, anonPos := 0, Pos{}
	for _, b := range p.open {
		if b.node == nil {
			if anon++; anon == 1 {
				anonPos = b.pos
			}
			continue
		}
		p.report(b.pos, Error, "the block of %q opened here is not closed: expected '}' before the end of the configuration", b.node.Key.Text)
	}
	if anon > 0 {
		p.report(anonPos, Error, "%d '{' without a keyword (the first here) not closed: expected '}' before the end of the configuration", anon)
	}
	return p.root, p.diags
}

// report records a diagnostic once: a repeat of the same finding (a bad
// line that a ~SEQ or a parameter repeats a million times) only counts,
// so that the diagnostics of one parse stay small whatever the input.
func (p *preprocessor) report(pos Pos, sev Severity, format string, args ...any) {
	d := Diagnostic{Pos: pos, Severity: sev, Msg: fmt.Sprintf(format, args...)}
	if i, ok := p.seen[d.key()]; ok {
		p.diags[i].Repeats++
		return
	}
	p.seen[d.key()] = len(p.diags)
	p.diags = append(p.diags, d)
}

// charge counts work against the per-parse budget and stops the parse, once,
// when it runs out.
func (p *preprocessor) charge(pos Pos, n int) bool {
	if p.stopped {
		return false
	}
	p.pieces++
	p.bytes += n
	if p.pieces > p.lim.pieces || p.bytes > p.lim.bytes {
		p.stopped = true
		p.report(pos, Fatal, "configuration expands to more than %d lines or %d MiB: giving up (check ~SEQ, ~LST and parameters)",
			p.lim.pieces, p.lim.bytes>>20)
		return false
	}
	return true
}

func (p *preprocessor) cur() *srcFile { return p.files[len(p.files)-1] }

// file preprocesses the text of one file in place, as keepalived does for
// the main file and for every include.
func (p *preprocessor) file(name string, data []byte, check includeCheck) {
	p.files = append(p.files, &srcFile{name: name, check: check})
	saved := p.deferred
	p.deferred = nil
	defer func() { p.files, p.deferred = p.files[:len(p.files)-1], saved }()

	text := string(data)
	if strings.HasPrefix(text, "\xef\xbb\xbf") {
		// Kept, as keepalived keeps it, but said: the error that follows
		// (an unknown keyword) is puzzling otherwise.
		p.report(Pos{File: name, Line: 1, Col: 1}, Warning,
			"file starts with a UTF-8 byte order mark, which keepalived reads as part of the first word: save the file without it")
	}
	lineNo := 0
	inLong := false // text continues a physical line longer than lineLen
	col := 1        // the column of the piece next returns: a long line's later pieces keep theirs
	next := func() (string, bool) {
		if text == "" {
			return "", false
		}
		i := strings.IndexByte(text, '\n')
		if i < 0 {
			i = len(text)
		}
		if !inLong {
			lineNo++
			col = 1
		} else {
			col += p.lim.lineLen
		}
		var l string
		if i > p.lim.lineLen {
			// keepalived reads lines into a 1024-byte buffer: a longer
			// line is read as several lines of 1023 bytes.
			if !inLong {
				p.report(Pos{File: name, Line: lineNo, Col: p.lim.lineLen + 1}, Warning,
					"line is %d bytes long: keepalived reads it as %d lines of at most %d bytes, and so does vigil",
					i, (i+p.lim.lineLen-1)/p.lim.lineLen, p.lim.lineLen)
			}
			l = text[:p.lim.lineLen]
			text, inLong = text[p.lim.lineLen:], true
		} else {
			l = text[:i]
			text, inLong = text[min(i+1, len(text)):], false
		}
		if z := strings.IndexByte(l, 0); z >= 0 {
			// keepalived keeps lines as C strings: a NUL byte ends the
			// line (of each 1023-byte piece of a long one).
			p.report(Pos{File: name, Line: lineNo, Col: col + z}, Warning,
				"NUL byte (\\0) in the line: keepalived ends the line there and ignores the rest, and so does vigil; a text file has no NUL bytes (is this a binary or UTF-16 file?)")
			l = l[:z]
		}
		return l, true
	}
	for !p.stopped {
		l, ok := next()
		if !ok {
			return
		}
		pos := Pos{File: name, Line: lineNo, Col: col}
		sp, cont, marked := readLine(l, col)
		if cont && isDefinition(sp.s) && p.holds(sp.s) {
			// A multi-line parameter: every line but the last ends with
			// '\'. A whole-line comment ends it, as in keepalived (the
			// lines after it are ordinary lines), and so does a blank line.
			var b strings.Builder
			b.WriteString(defText(sp, cont, marked))
			for cont {
				c, ok := next()
				if !ok {
					break
				}
				if isCommentLine(c) {
					// keepalived's parent process skips the comment and
					// goes on with the definition; its VRRP and checker
					// processes, which read a copy without the comment,
					// end it here. vigil reads it as the latter (they run
					// the configuration) and, unless the two agree because
					// a blank line or the end of the file follows, calls
					// it the error the parent then finds.
					at := Pos{File: name, Line: lineNo, Col: 1}
					for {
						nl := strings.IndexByte(text, '\n')
						if nl < 0 {
							nl = len(text)
						}
						if !isCommentLine(text[:nl]) {
							break
						}
						next()
					}
					following := text
					if nl := strings.IndexByte(following, '\n'); nl >= 0 {
						following = following[:nl]
					}
					if strings.TrimSpace(following) != "" {
						p.report(at, Error, "a comment line inside a multi-line parameter definition: keepalived's VRRP and checker processes end the definition here, its main process skips the comment and reads the next line into the definition; end the definition before the comment, or move the comment")
					}
					break
				}
				more, c2, m2 := readLine(c, col)
				cont = c2
				p.quotesClosed(more, Pos{File: name, Line: lineNo})
				b.WriteByte('\n')
				b.WriteString(defText(more, c2, m2))
				if b.Len() > p.lim.expandLen {
					p.report(pos, Error, "multi-line parameter is longer than %d bytes", p.lim.expandLen)
					break
				}
			}
			sp = newSpan(b.String(), 1)
		}
		p.aborted = false
		p.line(sp, pos, 0)
		for len(p.deferred) > 0 && !p.stopped {
			d := p.deferred[len(p.deferred)-1]
			p.deferred = p.deferred[:len(p.deferred)-1]
			p.include(d.kw, d.pattern, d.pos)
		}
	}
}

// isCommentLine reports whether a physical line is only a comment.
func isCommentLine(l string) bool {
	t := strings.TrimLeft(l, " \t\v\f\r")
	return t != "" && (t[0] == '#' || t[0] == '!')
}

// readLine reads a physical line as keepalived does before anything else:
// a final unescaped '\' (an odd number of them) is taken off first and the
// blanks before it with it, then the comment is stripped. cont says the line
// asks for a continuation: it had that '\', or it ends with '\' once the
// comment is gone (so "$A=x\\#c" continues). marked says a '\' was taken
// off, which an ordinary line gets back as text: "kw \" is the word `kw\`.
func readLine(l string, col int) (sp span, cont, marked bool) {
	t := strings.TrimSuffix(l, "\r") // a blank after the '\' makes it text
	if n := len(t) - len(strings.TrimRight(t, `\`)); n%2 == 1 {
		sp = stripComment(newSpan(t[:len(t)-1], col)).trim()
		sp.mark = true
		return sp, true, true
	}
	sp = stripComment(newSpan(l, col))
	return sp, strings.HasSuffix(strings.TrimRight(sp.s, " \t\v\f\r"), `\`), false
}

// defText is the part of a definition line that goes into the value: the
// line without the '\' that continues it.
func defText(sp span, cont, marked bool) string {
	if cont && !marked {
		r := strings.TrimRight(sp.s, " \t\v\f\r")
		return r[:len(r)-1]
	}
	return sp.s
}

func isNameStart(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isNameByte(c byte) bool { return isNameStart(c) || '0' <= c && c <= '9' }

// nameLen returns the length of the parameter name at the start of s.
func nameLen(s string) int {
	if s == "" || !isNameStart(s[0]) {
		return 0
	}
	n := 1
	for n < len(s) && isNameByte(s[n]) {
		n++
	}
	return n
}

// isDefinition reports whether a (comment-stripped) line defines a
// parameter, possibly behind an @ID condition: [@ID] $NAME=...
func isDefinition(s string) bool {
	s = strings.TrimLeft(s, " \t")
	if strings.HasPrefix(s, "@") {
		i := strings.IndexAny(s, " \t\v\f\r")
		if i < 0 {
			return false
		}
		s = strings.TrimLeft(s[i:], " \t\v\f\r")
	}
	if !strings.HasPrefix(s, "$") {
		return false
	}
	n := nameLen(s[1:])
	return n > 0 && len(s) > 1+n && s[1+n] == '='
}

// line runs the preprocessor over one logical line: comment, @ID condition,
// $NAME=value definition, ~SEQ/~LST generators, parameter substitution,
// include, and finally splitting at braces into keyword lines. The text
// after a brace goes round again, as keepalived reads it as a new line.
func (p *preprocessor) line(sp span, pos Pos, depth int) {
	if depth > 0 && p.aborted {
		return
	}
	if depth > p.lim.nesting {
		p.report(pos, Error, "parameters and ~SEQ/~LST nest deeper than %d levels (is a parameter defined in terms of itself?): the expansion of this line stops here", p.lim.nesting)
		p.aborted = true
		return
	}
	// The text after a brace has no comment left and was substituted with
	// the rest of the line: only fresh text is stripped and substituted,
	// which keeps a line with many braces linear.
	condDone, fresh := false, true
	for !p.stopped {
		if fresh {
			sp = stripComment(sp)
		}
		sp = sp.trim()
		if sp.s == "" {
			if sp.mark {
				p.words(sp, pos) // the line was only a comment and a '\'
			}
			return
		}
		// Every piece counts, fresh text by its bytes too (a remainder's
		// bytes were counted with its line).
		n := 0
		if fresh {
			n = len(sp.s)
		}
		if !p.charge(pos, n) {
			return
		}
		at := func(i int) Pos { return Pos{File: pos.File, Line: pos.Line, Col: sp.col(i)} }

		if sp.s[0] == '@' && !condDone {
			keep, rest := p.condition(sp)
			if !keep || strings.TrimLeft(rest.s, " \t") == "" {
				return // a kept condition with nothing after it drops a final '\' too
			}
			// One condition per line: "@a @b x" keeps the keyword "@b".
			sp, condDone = rest, true
			continue
		}
		if sp.s[0] == '$' {
			if n := nameLen(sp.s[1:]); n > 0 && len(sp.s) > 1+n && sp.s[1+n] == '=' {
				first := sp
				if i := strings.IndexByte(sp.s, '\n'); i >= 0 {
					first = sp.slice(0, i) // file checked the other lines where they are
				}
				p.quotesClosed(first, pos)
				p.params[sp.s[1:1+n]] = strings.TrimFunc(sp.s[2+n:], func(r rune) bool { return r < 0x80 && isBlank(byte(r)) })
				return
			}
		}
		if strings.HasPrefix(sp.s, "~SEQ") || strings.HasPrefix(sp.s, "~LST") {
			if gens, rest, ok := p.generators(sp, pos); ok {
				p.expand(gens, rest, pos, depth)
				return
			}
			if strings.HasPrefix(sp.s, "~SEQ(") || strings.HasPrefix(sp.s, "~SEQx(") || strings.HasPrefix(sp.s, "~LST(") {
				return // reported by generators
			}
		}
		if fresh && strings.IndexByte(sp.s, '$') >= 0 {
			out, changed, ok := p.substitute(sp, pos)
			if !ok {
				return
			}
			if changed {
				// keepalived checks the quotes of the line as written as
				// well as of the result.
				p.quotesClosed(sp, pos)
				p.lines(out, pos, depth+1)
				return
			}
		}
		if kw, rest, ok := includeLine(sp); ok {
			if depth > 0 {
				// keepalived reads an include made by a parameter or a
				// generator only after the rest of what they made, and
				// several of them last first.
				p.deferred = append(p.deferred, deferredInclude{kw, rest, at(0)})
				return
			}
			p.include(kw, rest, at(0))
			return
		}
		b := findBrace(sp.s)
		if b < 0 {
			p.words(sp, pos)
			return
		}
		if b > 0 {
			p.words(sp.slice(0, b), pos)
		}
		if sp.s[b] == '{' {
			p.openBrace(at(b))
		} else {
			p.closeBrace(at(b))
		}
		sp, condDone, fresh = sp.slice(b+1, len(sp.s)), false, false
	}
}

// lines processes substituted text, which may hold several lines when a
// multi-line parameter was used.
func (p *preprocessor) lines(sp span, pos Pos, depth int) {
	for !p.stopped {
		l := sp
		i := strings.IndexByte(sp.s, '\n')
		if i >= 0 {
			l = sp.slice(0, i)
		}
		if t := strings.TrimSuffix(l.s, "\r"); (len(t)-len(strings.TrimRight(t, `\`)))%2 == 1 {
			// Each line of a substitution is read as a line: a final '\'
			// is a mark again.
			l = l.cut(len(t) - 1)
			l.mark = true
		}
		if len(l.s) > p.lim.lineLen {
			p.report(pos, Warning, "after substitution the line is %d bytes long: keepalived 2.2.7 substitutes only within %d bytes, so it reads this line differently",
				len(l.s), p.lim.lineLen)
		}
		p.line(l, pos, depth)
		if i < 0 {
			return
		}
		sp = sp.slice(i+1, len(sp.s))
	}
}

// condition handles "@ID rest" (kept when the config id is ID) and
// "@^ID rest" (kept when it is not). The id runs to the first blank.
func (p *preprocessor) condition(sp span) (bool, span) {
	s := sp.s[1:]
	neg := strings.HasPrefix(s, "^")
	if neg {
		s = s[1:]
	}
	n := 0
	for n < len(s) && !isBlank(s[n]) {
		n++
	}
	match := p.id != "" && s[:n] == p.id // an empty id names no host
	if match == neg {
		return false, span{}
	}
	return true, sp.slice(len(sp.s)-len(s)+n, len(sp.s))
}

// quotesClosed reports a double quote left open on a line of text that is
// not split into words itself (a definition, or a line before substitution).
func (p *preprocessor) quotesClosed(sp span, pos Pos) {
	open := -1
	for i := 0; i < len(sp.s); i++ {
		switch sp.s[i] {
		case '"':
			if open < 0 {
				open = i
			} else {
				open = -1
			}
		case '\n':
			if open >= 0 {
				p.report(Pos{File: pos.File, Line: pos.Line, Col: sp.col(open)}, Error, "unterminated double quote: expected a closing '\"' before the end of the line")
			}
			open = -1
		}
	}
	if open >= 0 {
		p.report(Pos{File: pos.File, Line: pos.Line, Col: sp.col(open)}, Error, "unterminated double quote: expected a closing '\"' before the end of the line")
	}
}

// holds reports whether the @ID condition of a line, if any, keeps it: a
// multi-line definition whose condition fails takes no continuation lines.
func (p *preprocessor) holds(s string) bool {
	s = strings.TrimLeft(s, " \t")
	if !strings.HasPrefix(s, "@") {
		return true
	}
	keep, _ := p.condition(newSpan(s, 1))
	return keep
}

// includeLine recognises an include keyword at the start of a line. The
// pattern is the rest of the line as it is, blanks, quotes and braces
// included, exactly as keepalived takes it.
func includeLine(sp span) (kw string, rest span, ok bool) {
	s := sp.s
	if !strings.HasPrefix(s, "include") {
		return "", span{}, false
	}
	n := 0
	for n < len(s) && !isBlank(s[n]) {
		n++
	}
	if _, known := includeVariants[s[:n]]; !known {
		return "", span{}, false
	}
	return s[:n], sp.slice(n, len(s)).trim(), true
}

// words turns a brace-free piece into a keyword line of the tree.
func (p *preprocessor) words(sp span, pos Pos) {
	if sp.mark {
		c := int32(sp.col(len(sp.s)))
		if c == 0 {
			c = 1
		}
		sp = span{s: sp.s + `\`, cols: append(sp.cols[:len(sp.s):len(sp.s)], c)}
	}
	if !p.inGlobalDefs() {
		if i := escapedComment(sp.s); i >= 0 {
			// keepalived's parent process turns "\#" into '#' and its VRRP
			// and checker processes read that text again, where an
			// unquoted '#' starts a comment: outside global_defs (read by
			// the parent) the rest of the line is a comment.
			p.report(Pos{File: pos.File, Line: pos.Line, Col: sp.col(i)}, Warning,
				"%q outside double quotes starts a comment here, as keepalived reads it outside global_defs: the text from it on is ignored; quote the word to keep the %q",
				sp.s[i:i+2], sp.s[i+1:i+2])
			sp = sp.cut(i)
		}
	}
	ws, raw, probs := splitWords(sp, pos.File, pos.Line)
	for _, pr := range probs {
		p.report(Pos{File: pos.File, Line: pos.Line, Col: pr.col}, Error, "%s", pr.msg)
	}
	if len(probs) == 0 {
		if i := escapedQuoteOpen(sp.s); i >= 0 {
			p.report(Pos{File: pos.File, Line: pos.Line, Col: sp.col(i)}, Error,
				"unterminated double quote: keepalived reads \\\" as an escaped quote when it checks quotes, so the quote opened here is not closed: expected a closing '\"'")
		}
	}
	if len(ws) == 0 {
		return
	}
	if k := ws[0]; k.Quoted && (k.Text == "{" || k.Text == "}") {
		// keepalived tells braces by the word, so a quoted brace that
		// starts a line still opens or closes a block; the rest of the
		// line is ignored.
		if len(ws) > 1 {
			p.report(ws[1].Pos, Warning, "text after a quoted %q is ignored", k.Text)
		}
		if k.Text == "{" {
			p.openBrace(k.Pos)
		} else {
			p.closeBrace(k.Pos)
		}
		return
	}
	if p.nodes++; p.nodes > p.lim.nodes {
		p.stopped = true
		p.report(pos, Fatal, "configuration has more than %d keyword lines: giving up (check ~SEQ, ~LST and parameters)", p.lim.nodes)
		return
	}
	n := &Node{Key: ws[0], Raw: raw}
	if len(ws) > 1 {
		n.Args = ws[1:]
	}
	dst := &p.root
	if len(p.open) > 0 {
		dst = p.open[len(p.open)-1].dst
	}
	*dst = append(*dst, n)
	p.last = n
	p.globalHook(n)
}

// inGlobalDefs reports whether the lines being read are inside global_defs.
func (p *preprocessor) inGlobalDefs() bool {
	return len(p.open) > 0 && p.open[0].node != nil && p.open[0].node.Key.Text == "global_defs"
}

// globalHook applies the two global_defs keywords that change how the rest
// of the configuration is read while it is being read: include_check and
// random_seed (for ${_RANDOM}).
func (p *preprocessor) globalHook(n *Node) {
	if len(p.open) != 1 || p.open[0].node == nil || p.open[0].node.Key.Text != "global_defs" {
		return
	}
	switch n.Key.Text {
	case "include_check":
		f := p.cur()
		if len(n.Args) == 0 {
			f.check = checkAll
			return
		}
		for i, a := range n.Args {
			name, op := a.Text, byte(0)
			if name != "" && (name[0] == '+' || name[0] == '-') {
				op, name = name[0], name[1:]
			}
			c, ok := includeCheckNames[name]
			switch {
			case !ok:
				p.report(a.Pos, Error, "unknown include_check %q: expected match, wildcard_match or brace_match, optionally with + or -", a.Text)
			case op == 0 && i > 0:
				// keepalived 2.2.7 takes a bare option only first.
				p.report(a.Pos, Error, "include_check %q after another option: expected +%s or -%s; ignored", a.Text, name, name)
			case op == 0:
				f.check = c
			case op == '-':
				f.check &^= c &^ checkReadable
			default:
				// Only the bare form brings the readable check along.
				f.check |= c &^ checkReadable
			}
		}
	case "random_seed":
		if len(n.Args) > 0 {
			if v, err := strconv.ParseUint(n.Args[0].Text, 10, 64); err == nil {
				p.rng = rand.New(rand.NewPCG(v, 0))
			}
		}
	}
}

func (p *preprocessor) openBrace(pos Pos) {
	parent := &p.root
	if len(p.open) > 0 {
		parent = p.open[len(p.open)-1].dst
	}
	b := openBlock{dst: parent, pos: pos}
	switch {
	case len(p.open) >= p.lim.blockDepth:
		if len(p.open) == p.lim.blockDepth {
			p.report(pos, Error, "blocks nest deeper than %d levels: the deeper braces are ignored", p.lim.blockDepth)
		}
	case p.last != nil && !p.last.HasBlock:
		p.last.HasBlock = true
		b.node, b.dst = p.last, &p.last.Block
	default:
		p.report(pos, Error, "unexpected '{': expected a keyword before it")
	}
	p.open = append(p.open, b)
	p.last = nil
}

func (p *preprocessor) closeBrace(pos Pos) {
	p.last = nil
	if len(p.open) == 0 {
		p.report(pos, Error, "unexpected '}': no block is open")
		return
	}
	b := p.open[len(p.open)-1]
	p.open = p.open[:len(p.open)-1]
	if b.node != nil {
		b.node.End = pos
	}
}
