package config

import (
	"path"
	"strconv"
	"strings"
)

// substitute replaces parameters in a line: $NAME when followed by a blank,
// ')', ',' or the end of the text, and ${NAME} anywhere; a multi-line value
// only at the end of the line. Undefined parameters stay as
// they are (keepalived.conf(5): existing '$' in scripts keep working).
// Replacement is recursive: scanning resumes at the start of the inserted
// value, and the value is spliced into the line before it is scanned, so
// with A=x and F=$A, "${F}_g" becomes "$A_g" (the name A_g, undefined), as in
// keepalived. ok is false when the line was dropped for a reported problem.
func (p *preprocessor) substitute(sp span, pos Pos) (out span, changed, ok bool) {
	// done is final: scanning never goes back. rem is what is left to scan;
	// a replacement puts the value in front of it.
	var done []byte
	var doneCols []int32
	rem, remCols := sp.s, sp.cols
	count, cost := 0, 0
	for {
		j := strings.IndexByte(rem, '$')
		if j < 0 {
			break
		}
		name, end, args := paramAt(rem, j)
		val, defined := "", false
		if name != "" {
			val, defined = p.param(name, args)
		}
		multi := defined && strings.IndexByte(val, '\n') >= 0
		if multi && strings.TrimLeft(rem[end:], " \t\v\f\r") != "" {
			// keepalived replaces a multi-line parameter only at the end
			// of a line: "$M x" keeps "$M".
			defined = false
		}
		if !defined {
			done, doneCols = append(done, rem[:j+1]...), append(doneCols, remCols[:j+1]...)
			rem, remCols = rem[j+1:], remCols[j+1:]
			continue
		}
		at := Pos{File: pos.File, Line: pos.Line, Col: int(remCols[j])}
		count++
		cost += len(val) + len(rem) - end
		switch {
		case count > p.lim.substitutions || cost > p.lim.substCost:
			p.report(at, Error, "parameter substitution does not end after %d replacements (is $%s defined in terms of itself?): line skipped", count-1, name)
			p.aborted = true
			return span{}, false, false
		case len(done)+j+len(val)+len(rem)-end > p.lim.expandLen:
			p.report(at, Error, "substituting $%s makes the line longer than %d bytes: line skipped", name, p.lim.expandLen)
			p.aborted = true
			return span{}, false, false
		case !p.charge(pos, len(val)+len(rem)-end):
			return span{}, false, false
		}
		done, doneCols = append(done, rem[:j]...), append(doneCols, remCols[:j]...)
		c := remCols[j]
		if multi {
			// Each line of the value is read as a line of its own, in
			// order, so definitions in it apply to the lines after them:
			// stop here and let the caller split.
			for range len(val) {
				doneCols = append(doneCols, c)
			}
			return span{s: string(done) + val, cols: doneCols, mark: sp.mark}, true, true
		}
		nc := make([]int32, 0, len(val)+len(rem)-end)
		for range len(val) {
			nc = append(nc, c)
		}
		rem, remCols = val+rem[end:], append(nc, remCols[end:]...)
		changed = true
	}
	if !changed {
		return sp, false, true
	}
	return span{s: string(done) + rem, cols: append(doneCols, remCols...), mark: sp.mark}, true, true
}

// paramAt parses a parameter reference at buf[i] == '$'. It returns the
// name (empty if there is no reference here), the end of the reference, and
// for ${NAME ARGS} the arguments (only ${_RANDOM MIN MAX} takes any).
func paramAt(buf string, i int) (name string, end int, args string) {
	if i+1 < len(buf) && buf[i+1] == '{' {
		// Only as far as a name (and the numbers of ${_RANDOM MIN MAX})
		// can go, so that a line full of "${" is still read in linear time.
		n := nameLen(buf[i+2:])
		j := i + 2 + n
		if n == 0 || j >= len(buf) {
			return "", 0, ""
		}
		if buf[j] == '}' {
			return buf[i+2 : j], j + 1, ""
		}
		if buf[i+2:j] != "_RANDOM" || !isBlank(buf[j]) {
			return "", 0, ""
		}
		k := j
		for k < len(buf) && k-j < 64 && (buf[k] == ' ' || buf[k] == '\t' || '0' <= buf[k] && buf[k] <= '9') {
			k++
		}
		if k >= len(buf) || buf[k] != '}' {
			return "", 0, ""
		}
		return buf[i+2 : j], k + 1, buf[j:k]
	}
	n := nameLen(buf[i+1:])
	if n == 0 {
		return "", 0, ""
	}
	end = i + 1 + n
	if end < len(buf) && !isBlank(buf[end]) && buf[end] != ')' && buf[end] != ',' {
		// keepalived also ends a name at ')' and ',' (for ~SEQ(i, 1, $N)),
		// but not at other punctuation: "$N.x" and "$N}" stay as they are.
		return "", 0, ""
	}
	return buf[i+1 : end], end, ""
}

// param returns the value of a parameter: a predefined one (keepalived.conf(5),
// "Pre-defined definitions") or one defined with $NAME=value.
func (p *preprocessor) param(name, args string) (string, bool) {
	switch name {
	case "_PWD":
		return path.Dir(p.cur().name), true
	case "_INSTANCE":
		return p.id, true
	case "_HASH":
		return "#", true
	case "_BANG":
		return "!", true
	case "_RANDOM":
		lo, hi := uint64(0), uint64(32767)
		f := strings.Fields(args)
		if len(f) > 2 {
			return "", false
		}
		if len(f) > 0 {
			v, err := strconv.ParseUint(f[0], 10, 32)
			if err != nil {
				return "", false
			}
			lo = v
		}
		if len(f) > 1 {
			v, err := strconv.ParseUint(f[1], 10, 32)
			if err != nil {
				return "", false
			}
			hi = v
		}
		if hi < lo {
			hi = lo
		}
		return strconv.FormatUint(lo+p.rng.Uint64N(hi-lo+1), 10), true
	}
	if args != "" {
		return "", false
	}
	v, ok := p.params[name]
	return v, ok
}

// generator is one ~SEQ, ~SEQx or ~LST prefix: the variables it sets and the
// value tuples it sets them to, in order.
type generator struct {
	vars   []string
	values [][]string // nil for a ~SEQ, whose values are computed
	seq    struct {
		start, step int64
		count       uint64
		hex         bool
	}
}

func (g *generator) size() uint64 {
	if g.values != nil {
		return uint64(len(g.values))
	}
	return g.seq.count
}

// tuple returns the values of iteration k.
func (g *generator) tuple(k uint64) []string {
	if g.values != nil {
		return g.values[k]
	}
	v := g.seq.start + int64(k)*g.seq.step
	if g.seq.hex {
		return []string{strconv.FormatInt(v, 16)}
	}
	return []string{strconv.FormatInt(v, 10)}
}

// generators parses the ~SEQ/~SEQx/~LST prefixes of a line. ok is false for
// a line that only looks like one (e.g. "~SEQUENCE", left to the keyword
// parser) and for a malformed one, which is reported and dropped.
func (p *preprocessor) generators(sp span, pos Pos) (gens []*generator, rest span, ok bool) {
	total := uint64(1)
	for {
		var kind string
		switch {
		case strings.HasPrefix(sp.s, "~SEQx("):
			kind = "~SEQx"
		case strings.HasPrefix(sp.s, "~SEQ("):
			kind = "~SEQ"
		case strings.HasPrefix(sp.s, "~LST("):
			kind = "~LST"
		default:
			return gens, sp, len(gens) > 0
		}
		at := Pos{File: pos.File, Line: pos.Line, Col: sp.col(0)}
		body := sp.s[len(kind)+1:]
		var g *generator
		var n int
		var err string
		resolve := func(f string) (string, bool) { return p.genValue(f, pos) }
		if kind == "~LST" {
			g, n, err = parseLST(body, resolve)
		} else {
			g, n, err = parseSEQ(body, kind == "~SEQx", resolve)
		}
		if err != "" {
			p.report(at, Error, "invalid %s: %s; line skipped", kind, err)
			return nil, span{}, false
		}
		if g.size() > uint64(p.lim.genLines) || total*max(g.size(), 1) > uint64(p.lim.genLines) {
			p.report(at, Error, "~SEQ/~LST line expands to more than %d lines: line skipped", p.lim.genLines)
			return nil, span{}, false
		}
		total *= max(g.size(), 1)
		gens = append(gens, g)
		sp = sp.slice(len(kind)+1+n, len(sp.s)).trim()
	}
}

// genValue resolves a parameter used as a whole ~SEQ/~LST value, as in
// "~SEQ(i, 1, $N)"; a '$' anywhere else in a value makes it invalid, as in
// keepalived.
func (p *preprocessor) genValue(f string, pos Pos) (string, bool) {
	if !strings.Contains(f, "$") {
		return f, true
	}
	name, end, args := paramAt(f, 0)
	if name == "" || end != len(f) {
		return "", false
	}
	v, ok := p.param(name, args)
	if !ok {
		return f, true
	}
	out, _, ok := p.substitute(flatSpan(v, int32(pos.Col)), pos)
	return strings.TrimSpace(out.s), ok
}

// expand runs the rest of a generator line once per combination of values,
// the first generator outermost. The generator variables are ordinary
// parameters: afterwards they keep their last values, as in keepalived
// (whose manual says not to rely on it).
func (p *preprocessor) expand(gens []*generator, rest span, pos Pos, depth int) {
	var run func(int)
	run = func(level int) {
		if level == len(gens) {
			p.line(rest, pos, depth+1)
			return
		}
		g := gens[level]
		for k := uint64(0); k < g.size() && !p.stopped; k++ {
			t := g.tuple(k)
			for i, v := range g.vars {
				if i < len(t) {
					p.params[v] = t[i]
				} else {
					p.params[v] = ""
				}
			}
			run(level + 1)
		}
	}
	run(0)
}

// parenBody returns the text up to the ')' closing a generator, and how many
// bytes it used including the ')'.
func parenBody(s string) (string, int, string) {
	i := strings.IndexByte(s, ')')
	if i < 0 {
		return "", 0, "missing ')'"
	}
	return s[:i], i + 1, ""
}

// genNumber parses a ~SEQ bound like strtol with base 0: decimal, 0x hex or
// 0 octal, with an optional sign.
func genNumber(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg, s = s[0] == '-', s[1:]
	}
	base := 10
	switch {
	case strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X"):
		base, s = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, s = 8, s[1:]
	}
	if s == "" || s[0] == '+' || s[0] == '-' || strings.IndexByte(s, '_') >= 0 {
		return 0, false
	}
	v, err := strconv.ParseInt(s, base, 64)
	if err != nil || v > 1<<53 {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

// parseSEQ parses "var, [start,] [step,] end)" (keepalived.conf(5),
// "Sequence blocks"): start defaults to 1 (-1 when end is negative) and step
// to 1 or -1 towards end; a step of 0 or one pointing away from end is an error.
func parseSEQ(s string, hex bool, resolve func(string) (string, bool)) (*generator, int, string) {
	body, n, err := parenBody(s)
	if err != "" {
		return nil, 0, err + ": expected ~SEQ(var, [start,] [step,] end)"
	}
	f := strings.Split(body, ",")
	name := strings.TrimSpace(f[0])
	if nameLen(name) != len(name) || name == "" {
		return nil, 0, "the variable must be a name (letters, digits and '_', not starting with a digit)"
	}
	if len(f) < 2 || len(f) > 4 {
		return nil, 0, "expected ~SEQ(var, [start,] [step,] end)"
	}
	nums := make([]int64, 0, 3)
	for _, x := range f[1:] {
		x, ok := resolve(strings.TrimSpace(x))
		if !ok {
			return nil, 0, "a parameter must be a whole value"
		}
		v, ok := genNumber(x)
		if !ok {
			return nil, 0, strconv.Quote(strings.TrimSpace(x)) + " is not an integer"
		}
		nums = append(nums, v)
	}
	var start, step, end int64
	switch len(nums) {
	case 1:
		end, start = nums[0], 1
		if end < 0 {
			start = -1
		}
	case 2:
		start, end = nums[0], nums[1]
	case 3:
		start, step, end = nums[0], nums[1], nums[2]
	}
	if len(nums) < 3 {
		step = 1
		if end < start {
			step = -1
		}
	}
	if step == 0 || step > 0 && end < start || step < 0 && end > start {
		return nil, 0, "the step must be non-zero and go from start towards end"
	}
	dist, st := uint64(end-start), uint64(step)
	if step < 0 {
		dist, st = uint64(start-end), uint64(-step)
	}
	g := &generator{vars: []string{name}}
	g.seq.start, g.seq.step, g.seq.count, g.seq.hex = start, step, dist/st+1, hex
	return g, n, ""
}

// parseLST parses "var, v1, v2, ...)" or "{var1, var2}, {v1, v2}, ...)"
// (keepalived.conf(5), "List blocks"). A tuple with fewer values than
// variables leaves the others empty, as keepalived does.
func parseLST(s string, resolve func(string) (string, bool)) (*generator, int, string) {
	const want = "expected ~LST(var, value, ...) or ~LST({var, ...}, {value, ...}, ...)"
	// Split the top-level comma list, keeping {...} groups together.
	var items []string
	depth, startI := 0, 0
	end := -1
scan:
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
			if depth > 1 {
				return nil, 0, "nested '{' in a list: " + want
			}
		case '}':
			depth--
			if depth < 0 {
				return nil, 0, "unbalanced '}': " + want
			}
		case ',':
			if depth == 0 {
				items = append(items, s[startI:i])
				startI = i + 1
			}
		case ')':
			if depth == 0 {
				items = append(items, s[startI:i])
				end = i + 1
				break scan
			}
		}
	}
	if end < 0 {
		return nil, 0, "missing ')': " + want
	}
	if len(items) < 2 {
		return nil, 0, "no values: " + want
	}
	group := func(x string) ([]string, bool) {
		x = strings.TrimSpace(x)
		if strings.HasPrefix(x, "{") {
			if !strings.HasSuffix(x, "}") {
				return nil, false
			}
			x = x[1 : len(x)-1]
		}
		f := strings.Split(x, ",")
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
			if strings.IndexFunc(f[i], func(r rune) bool { return r < 0x80 && isBlank(byte(r)) }) >= 0 {
				return nil, false
			}
		}
		return f, true
	}
	vars, ok := group(items[0])
	if !ok {
		return nil, 0, "bad variable list: " + want
	}
	for _, v := range vars {
		if v == "" || nameLen(v) != len(v) {
			return nil, 0, "the variable " + strconv.Quote(v) + " must be a name (letters, digits and '_', not starting with a digit)"
		}
	}
	g := &generator{vars: vars}
	for _, it := range items[1:] {
		t, ok := group(it)
		if !ok {
			return nil, 0, "value " + strconv.Quote(strings.TrimSpace(it)) + " contains blanks: " + want
		}
		for i := range t {
			if t[i], ok = resolve(t[i]); !ok {
				return nil, 0, "value " + strconv.Quote(strings.TrimSpace(it)) + ": a parameter must be a whole value"
			}
		}
		g.values = append(g.values, t)
	}
	return g, end, ""
}
