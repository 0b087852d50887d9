package config

import (
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// maxPatternLen is PATH_MAX: longer include patterns cannot name a file,
// and capping them keeps brace expansion cheap.
const maxPatternLen = 4096

// include handles "include PATTERN" and its stricter variants
// (keepalived.conf(5), "include" and include_check). The pattern is
// brace-expanded, each alternative is globbed relative to the directory of
// the including file, and every match is read in place, textually: its lines
// join the current block with their own file:line positions.
func (p *preprocessor) include(kw string, pattern span, pos Pos) {
	if pattern.s == "" {
		p.report(pos, Error, "%s needs a file name or glob pattern", kw)
		return
	}
	pos.Col = pattern.col(0)
	if len(pattern.s) > maxPatternLen {
		p.report(pos, Error, "%s pattern is %d bytes long: expected at most %d", kw, len(pattern.s), maxPatternLen)
		return
	}
	cur := p.cur()
	check := cur.check | includeVariants[kw]
	alts, ok := braceExpand(pattern.s, p.lim.braceAlts)
	if !ok {
		p.report(pos, Error, "%s %q: brace expansion gives more than %d names", kw, pattern.s, p.lim.braceAlts)
		return
	}
	dir := path.Dir(cur.name)
	var matches []string
	missing, wild := 0, false // plain brace alternatives with no file; any wildcard
	for _, a := range alts {
		if p.nGlobs++; p.nGlobs > p.lim.globs {
			p.report(pos, Fatal, "more than %d include patterns to expand: giving up (check ~SEQ, ~LST and brace expansions in include)", p.lim.globs)
			p.stopped = true
			return
		}
		full := a
		if !path.IsAbs(a) {
			full = path.Join(dir, a)
		}
		slash := strings.HasSuffix(a, "/") && full != "/"
		meta := hasGlobMeta(a)
		wild = wild || meta
		var m []string
		switch {
		case slash && meta && p.env.Glob != nil:
			m = p.globDirs(full)
		case p.env.Glob != nil:
			if slash {
				full += "/"
			}
			var err error
			m, err = p.env.Glob(full)
			if err != nil {
				// glob(3) takes a '[' that is never closed as itself;
				// Go's matcher calls the pattern bad.
				if m, err = p.env.Glob(quoteOpenBrackets(full)); err != nil {
					p.report(pos, Error, "%s %q: bad pattern %q: %v", kw, pattern.s, full, err)
					continue
				}
			}
			m = dropHidden(full, m)
		case !meta:
			m = []string{full} // without Glob, a plain name is tried as is
		}
		if len(m) == 0 && !meta {
			missing++
		}
		matches = append(matches, m...)
	}
	// What each check refuses, as keepalived 2.2.7 does it (which is not
	// quite what its manual says): match, a plain name (no wildcard, no
	// braces) that does not exist; wildcard_match, a pattern with a
	// wildcard that matches nothing; brace_match, a brace alternative
	// without wildcard that does not exist (and then nothing is included).
	braces := hasBraceGroup(pattern.s)
	switch {
	case len(matches) == 0 && wild:
		if check&checkWildcardMatch != 0 {
			p.report(pos, Error, "no file matches %q: expected at least one (%s)", pattern.s, checkName(kw, "wildcard_match"))
		}
		return
	case len(matches) == 0 && !braces:
		if check&checkMatch != 0 {
			p.report(pos, Error, "included file %q does not exist (%s)", pattern.s, checkName(kw, "match"))
		} else {
			p.report(pos, Warning, "included file %q does not exist: skipped (includem makes this an error)", pattern.s)
		}
		return
	case missing > 0:
		if check&checkBraceMatch != 0 {
			p.report(pos, Error, "files of %q do not exist: expected every brace alternative to name a file (%s); include skipped", pattern.s, checkName(kw, "brace_match"))
			return
		}
		if len(matches) == 0 {
			p.report(pos, Warning, "no file of %q exists: skipped (includeb makes this an error)", pattern.s)
			return
		}
		p.report(pos, Warning, "some files of %q do not exist", pattern.s)
	}
	for _, m := range matches {
		if p.stopped {
			return
		}
		if chain := p.cycle(m); chain != "" {
			// One report per include line and file, however often the
			// line is reached.
			key := pos.String() + "\x00" + m
			if !p.cycles[key] {
				p.cycles[key] = true
				p.report(pos, Error, "include cycle: %s", chain)
			}
			continue
		}
		if len(p.files) >= p.lim.includeDepth {
			p.report(pos, Error, "includes nest deeper than %d files: %q skipped", p.lim.includeDepth, m)
			continue
		}
		if p.nFiles >= p.lim.includeFiles {
			p.report(pos, Fatal, "more than %d files included: giving up (is a file including itself through a glob?)", p.lim.includeFiles)
			p.stopped = true
			return
		}
		p.nFiles++
		data, ok := p.readInclude(m, pos, check)
		if !ok {
			continue
		}
		// The included file starts with the includer's include_check level
		// and cannot change the includer's (keepalived.conf(5)).
		p.file(m, data, cur.check)
	}
}

// readInclude reads one matched include file. keepalived 2.2.7 skips a
// match that is not a regular, non-executable file (a directory, a FIFO,
// /dev/null or any device, a socket, a file with an execute bit): a remark
// for include, an error for includer and the stricter variants. vigil asks
// Env.Stat first, so such a file is never opened (opening a FIFO blocks
// until a writer comes), and refuses a file larger than MaxFileSize before
// reading it.
func (p *preprocessor) readInclude(m string, pos Pos, check includeCheck) ([]byte, bool) {
	fail := func(format string, args ...any) ([]byte, bool) {
		msg := fmt.Sprintf(format, args...)
		if check&checkReadable != 0 {
			p.report(pos, Error, "%s (the readable check of includer, includem, includew, includeb, includea and include_check refuses it)", msg)
		} else {
			p.report(pos, Warning, "%s; skipped, as keepalived skips it", msg)
		}
		return nil, false
	}
	if p.env.ReadFile == nil {
		p.report(pos, Error, "cannot read included file %q: no file reader", m)
		return nil, false
	}
	if p.env.Stat != nil {
		fi, err := p.env.Stat(m)
		if err != nil {
			return fail("cannot read included file %q: %v", m, err)
		}
		if what := notConfigFile(fi); what != "" {
			return fail("included file %q is %s, not a regular non-executable file", m, what)
		}
		if fi.Size() > MaxFileSize {
			p.report(pos, Error, "included file %q is %d bytes: vigil reads at most %d (MaxFileSize); skipped", m, fi.Size(), MaxFileSize)
			return nil, false
		}
	}
	data, err := p.env.ReadFile(m)
	if err != nil {
		return fail("cannot read included file %q: %v", m, err)
	}
	if len(data) > MaxFileSize {
		p.report(pos, Error, "included file %q is over %d bytes: vigil reads at most %d (MaxFileSize); skipped", m, MaxFileSize, MaxFileSize)
		return nil, false
	}
	return data, true
}

// notConfigFile says what a file is when keepalived would not read it as a
// configuration file, and is empty for a regular file without execute bits.
func notConfigFile(fi fs.FileInfo) string {
	m := fi.Mode()
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case !m.IsRegular():
		return "not a regular file"
	case m.Perm()&0o111 != 0:
		return fmt.Sprintf("executable (mode %04o)", m.Perm())
	}
	return ""
}

// checkName names what made a check apply, for messages.
func checkName(kw, check string) string {
	if kw != "include" && includeVariants[kw]&includeCheckNames[check] != 0 {
		return kw
	}
	return "include_check " + check
}

// cycle returns the include chain if name is already being read.
func (p *preprocessor) cycle(name string) string {
	clean := path.Clean(name)
	for i, f := range p.files {
		if path.Clean(f.name) == clean {
			var chain []string
			for _, g := range p.files[i:] {
				chain = append(chain, g.name)
			}
			return strings.Join(append(chain, name), " -> ")
		}
	}
	return ""
}

// dropHidden removes the matches that glob(3) would not give: a wildcard
// does not match a leading '.' of a name (so "conf.d/*.conf" skips an
// editor's ".#vip.conf"), while Go's path.Match, which an Env may use, does.
func dropHidden(pattern string, matches []string) []string {
	pc := strings.Split(pattern, "/")
	out := matches[:0:0]
next:
	for _, m := range matches {
		mc := strings.Split(m, "/")
		if len(mc) == len(pc) {
			for i := range pc {
				if hasGlobMeta(pc[i]) && !strings.HasPrefix(pc[i], ".") && strings.HasPrefix(mc[i], ".") {
					continue next
				}
			}
		}
		out = append(out, m)
	}
	return out
}

// globDirs is glob(3) for a wildcard pattern ending in '/', which matches
// directories only (to be skipped as such); Go's Glob matches nothing.
func (p *preprocessor) globDirs(full string) []string {
	m, err := p.env.Glob(full)
	if err != nil {
		return nil
	}
	var dirs []string
	for _, d := range m {
		if is, _ := p.env.Glob(d + "/"); len(is) > 0 {
			dirs = append(dirs, d+"/")
		}
	}
	return dirs
}

// hasBraceGroup reports whether a pattern has a brace group to expand,
// which exempts it from the match check (keepalived 2.2.7 applies that
// check to plain names only).
func hasBraceGroup(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '{':
			if end, _ := matchBrace(s, i); end >= 0 {
				return true
			}
		}
	}
	return false
}

// quoteOpenBrackets escapes each '[' that no ']' closes in its path
// component, and a final lone backslash.
func quoteOpenBrackets(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			b.WriteString(s[i : i+2])
			i++
			continue
		case c == '\\':
			b.WriteString(`\\`)
			continue
		case c == '[':
			end := strings.IndexAny(s[i+1:], "]/")
			if end < 0 || s[i+1+end] == '/' {
				b.WriteString(`\[`)
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// hasGlobMeta reports whether a name has glob wildcards, which decides
// between a "no match" and a "missing file".
func hasGlobMeta(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '*', '?', '[':
			return true
		}
	}
	return false
}

// braceExpand expands csh-style braces as glob(3) with GLOB_BRACE does:
// "{a,b}c" gives "ac" and "bc", braces nest, "{}" is one empty alternative,
// an unmatched brace stays as it is, and a backslash quotes the next
// character. The result keeps
// the alternatives' order. ok is false when it would exceed limit names.
func braceExpand(s string, limit int) ([]string, bool) {
	out := []string{""}
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			out = appendAll(out, s[i:i+2])
			i += 2
			continue
		case c == '{':
			close, commas := matchBrace(s, i)
			if close < 0 {
				break
			}
			var alts []string
			prev := i + 1
			for _, c := range append(commas, close) {
				sub, ok := braceExpand(s[prev:c], limit)
				if !ok {
					return nil, false
				}
				alts = append(alts, sub...)
				prev = c + 1
			}
			if len(out)*len(alts) > limit {
				return nil, false
			}
			next := make([]string, 0, len(out)*len(alts))
			for _, o := range out {
				for _, a := range alts {
					next = append(next, o+a)
				}
			}
			out = next
			i = close + 1
			continue
		}
		out = appendAll(out, s[i:i+1])
		i++
	}
	return out, true
}

func appendAll(out []string, s string) []string {
	for i := range out {
		out[i] += s
	}
	return out
}

// matchBrace finds the '}' matching the '{' at s[open] and the top-level
// commas between them; close is -1 when there is none.
func matchBrace(s string, open int) (close int, commas []int) {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i, commas
			}
		case ',':
			if depth == 1 {
				commas = append(commas, i)
			}
		}
	}
	return -1, nil
}
