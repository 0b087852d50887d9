package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitWords(t *testing.T) {
	cases := []struct {
		in    string
		words string // words joined by |, quoted ones in <>
		raw   string
		probs int
	}{
		{"a b  c", "a|b|c", "b  c", 0},
		{"  key   value  ", "key|value", "value", 0},
		{`"a"b"c d" e`, "<a>|b|<c d>|e", `b"c d" e`, 0},
		{`a"b c"d`, "a|<b c>|d", `"b c"d`, 0},
		{`"" x`, "<>|x", "x", 0},
		{`k "x`, "k", `"x`, 1},
		{`"x`, "", "", 1},
		{"a\tb\rc\vd\fe", "a|b|c|d|e", "b\rc\vd\fe", 0},
		{`a;b 'c d'`, "a;b|'c|d'", `'c d'`, 0},
		{``, "", "", 0},
	}
	for _, c := range cases {
		ws, raw, probs := splitWords(newSpan(c.in, 1), "f", 1)
		var got []string
		for _, w := range ws {
			if w.Quoted {
				got = append(got, "<"+w.Text+">")
			} else {
				got = append(got, w.Text)
			}
		}
		if strings.Join(got, "|") != c.words || raw != c.raw || len(probs) != c.probs {
			t.Errorf("splitWords(%q) = %q, raw %q, %d problems; want %q, %q, %d", c.in, strings.Join(got, "|"), raw, len(probs), c.words, c.raw, c.probs)
		}
	}
	ws, _, probs := splitWords(newSpan(`ab "c d" e "f`, 5), "f", 3)
	cols := []int{ws[0].Pos.Col, ws[1].Pos.Col, ws[2].Pos.Col, probs[0].col}
	if !reflect.DeepEqual(cols, []int{5, 8, 14, 16}) {
		t.Errorf("columns %v", cols)
	}
}

func TestStripCommentAndBraces(t *testing.T) {
	cases := []struct{ in, stripped string }{
		{"a # b", "a "},
		{"a ! b", "a "},
		{`a "#" # b`, `a "#" `},
		{`a "b # c`, `a "b # c`},
		{"a\"\n#\" b", "a\"\n"},
		{"#", ""},
	}
	for _, c := range cases {
		if got := stripComment(newSpan(c.in, 1)).s; got != c.stripped {
			t.Errorf("stripComment(%q) = %q, want %q", c.in, got, c.stripped)
		}
	}
	for in, want := range map[string]int{"a { b": 2, `"{" }`: 4, "abc": -1, `"}`: -1, "}": 0} {
		if got := findBrace(in); got != want {
			t.Errorf("findBrace(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestBraceExpand(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"a", []string{"a"}},
		{"{a,b}c", []string{"ac", "bc"}},
		{"{foo/{,cat,dog},bar}", []string{"foo/", "foo/cat", "foo/dog", "bar"}},
		{"x{}y", []string{"xy"}},
		{"x{a}y", []string{"xay"}},
		{"x{a,b", []string{"x{a,b"}},
		{`x\{a,b}`, []string{`x\{a,b}`}},
		{"{a,b}{1,2}", []string{"a1", "a2", "b1", "b2"}},
		{"{,}", []string{"", ""}},
	}
	for _, c := range cases {
		got, ok := braceExpand(c.in, 1024)
		if !ok || !reflect.DeepEqual(got, c.want) {
			t.Errorf("braceExpand(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
	if _, ok := braceExpand(strings.Repeat("{a,b}", 11), 1024); ok {
		t.Error("2048 names allowed")
	}
	if _, ok := braceExpand("{"+strings.Repeat("a,", 2000)+"}", 1024); ok {
		t.Error("2001 names allowed")
	}
	for in, want := range map[string]bool{"a*": true, "a?": true, "[ab]": true, `a\*`: false, "a": false} {
		if hasGlobMeta(in) != want {
			t.Errorf("hasGlobMeta(%q) = %v", in, !want)
		}
	}
}

func TestDefinitionSyntax(t *testing.T) {
	for in, want := range map[string]bool{
		"$A=1": true, "  $A=": true, "@id $A_1=x": true, "@^id\t$B=": true,
		"$A =1": false, "$1A=1": false, "$=1": false, "@id": false, "x $A=1": false, "$A": false,
	} {
		if isDefinition(in) != want {
			t.Errorf("isDefinition(%q) = %v", in, !want)
		}
	}
	for in, want := range map[string]int64{"10": 10, "-2": -2, "0x10": 16, "010": 8, " 7 ": 7, "+3": 3} {
		if got, ok := genNumber(in); !ok || got != want {
			t.Errorf("genNumber(%q) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "1.5", "a", "0x", "--1", "1_000", "99999999999999999999", "9007199254740993"} {
		if _, ok := genNumber(in); ok {
			t.Errorf("genNumber(%q) accepted", in)
		}
	}
}
