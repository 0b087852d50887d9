package config

import (
	"errors"
	"reflect"
	"testing"
)

// The cases are what keepalived 2.2.7 runs for `script RAW` (its -d dump
// of each vrrp_script's command), observed on the installed daemon.
func TestSplitCommand(t *testing.T) {
	cases := []struct {
		raw  string
		want []string
	}{
		{`"/bin/echo a b"`, []string{"/bin/echo", "a", "b"}},
		{`"/bin/echo 'a b' c"`, []string{"/bin/echo", "a b", "c"}},
		{`"/bin/echo d\"e f\" g"`, []string{"/bin/echo", "de f", "g"}},
		{`"/bin/echo f\\g"`, []string{"/bin/echo", "fg"}},
		{`/bin/echo`, []string{"/bin/echo"}},
		// Further fields are the user and group, not arguments.
		{`"/bin/echo" a b`, []string{"/bin/echo"}},
		{`'/bin/echo a' b`, []string{"/bin/echo", "a"}},
		{`/bin/echo x  'y z' "w  v" a\ b`, []string{"/bin/echo"}},
		{`/bin/echo\ a b`, []string{"/bin/echo", "a"}},
		{`"/bin/echo a\ b"`, []string{"/bin/echo", "a", "b"}},
		{`"/bin/echo \x41"`, []string{"/bin/echo", "A"}},
		{`"/bin/echo a"b c"d"`, []string{"/bin/echo", "ab"}},
		{`"/bin/echo \"a b\""`, []string{"/bin/echo", "a b"}},
		{`"/bin/echo '\"a b\"'"`, []string{"/bin/echo", `"a b"`}},
		{`"/bin/echo 'a\tb' \"c\td\""`, []string{"/bin/echo", "a\tb", "c\td"}},
		{`"/bin/echo   a   "`, []string{"/bin/echo", "a"}},
		{`"/bin/echo ''"`, []string{"/bin/echo", ""}},
		{`"/bin/echo a 'b c' d\"e f\\g"`, []string{"/bin/echo", "a", "b c", "de fg"}},
		{`"/bin/echo \x41\101\t\cA 'q\tr' \\ \z"`, []string{"/bin/echo", "AA", "\x01", "q\tr", " z"}},
		{`"/bin/echo 'it''s' ab'cd'ef '' x"`, []string{"/bin/echo", "its", "abcdef", "", "x"}},
		{`"/bin/echo \"quoted\" 'a\"b' "`, []string{"/bin/echo", "quoted", `a"b`}},
		{`"/bin/echo \x4142 \1234 \E \cz \c"`, []string{"/bin/echo", "B", "S4", "\x1b", "\x1a", "\x02"}},
		{`"/bin/echo a\nb a\vb a\rb"`, []string{"/bin/echo", "a", "b", "a", "b", "a", "b"}},
		{`"/bin/echo \" 'a b' \" c"`, []string{"/bin/echo", " 'a b' ", "c"}},
		{`"/bin/echo a\"b c\"d"`, []string{"/bin/echo", "ab cd"}},
		{`"/bin/echo a\\\ b"`, []string{"/bin/echo", "a b"}},
		{`"/bin/echo \'a b\'"`, []string{"/bin/echo", "a b"}},
		{`"/bin/echo \x20a"`, []string{"/bin/echo"}}, // \x20a is 0x0a: every hex digit counts
		{`"/bin/echo \x4g"`, []string{"/bin/echo", "\x04g"}},
		{`"/bin/echo \40a"`, []string{"/bin/echo", "a"}},
		{`"/bin/echo \\x41"`, []string{"/bin/echo", "A"}},
		// A quote left open is accepted when the text ends right after
		// it or right after an escape.
		{`"/bin/echo d\"e f\\g"`, []string{"/bin/echo", "de fg"}},
		{`'/bin/echo d"e f\\g'`, []string{"/bin/echo", "de fg"}},
		{`"/bin/echo a\"`, []string{"/bin/echo", "a"}},
		{`'/bin/echo x "'`, []string{"/bin/echo", "x", ""}},
		{`'/bin/echo x \\"'`, []string{"/bin/echo", "x", `"`}},
		{`"/bin/echo \xg"`, []string{"/bin/echo", "xg"}},
		{"\"/usr/local/bin/notify.sh\" root root", []string{"/usr/local/bin/notify.sh"}},
		{`"/bin/sh -c 'exit 0'"`, []string{"/bin/sh", "-c", "exit 0"}},
		{`/bin/x\`, []string{`/bin/x\`}},
	}
	for _, c := range cases {
		got, err := SplitCommand(c.raw)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("SplitCommand(%s) = %q, %v; want %q", c.raw, got, err, c.want)
		}
	}
}

func TestSplitCommandErrors(t *testing.T) {
	cases := []struct {
		raw  string
		want error
	}{
		{`"/bin/echo \"a b"`, ErrUnterminatedQuote},
		{`"/bin/echo 'a b"`, ErrUnterminatedQuote},
		{`'/bin/echo a\'b'`, ErrUnterminatedQuote},
		{`"/bin/echo 'a\'b' c"`, ErrUnterminatedQuote},
		{`"/bin/echo d\"e fg"`, ErrUnterminatedQuote},
		{`"/bin/echo a 'b c' d'e fg"`, ErrUnterminatedQuote},
		{`"/bin/echo b 'd"`, ErrUnterminatedQuote},
		{`"/bin/echo a\"b"`, ErrUnterminatedQuote},
		{`'/bin/echo a" '`, ErrUnterminatedQuote},
		{`'/bin/echo x a"\\b c'`, ErrUnterminatedQuote},
		{`'/bin/echo x a"b\\ c'`, ErrUnterminatedQuote},
		{`"/bin/x`, ErrUnterminatedQuote},
		{``, ErrEmptyCommand},
		{`   `, ErrEmptyCommand},
		{`""`, ErrEmptyCommand},
		{`"  " root`, ErrEmptyCommand},
	}
	for _, c := range cases {
		got, err := SplitCommand(c.raw)
		if !errors.Is(err, c.want) {
			t.Errorf("SplitCommand(%s) = %q, %v; want %v", c.raw, got, err, c.want)
		}
	}
}

func TestScriptFields(t *testing.T) {
	got, err := ScriptFields(`"/usr/bin/notify 'a b'" keepalived_script "wheel"`)
	want := []string{"/usr/bin/notify 'a b'", "keepalived_script", "wheel"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ScriptFields = %q, %v; want %q", got, err, want)
	}
}

// The raw text a keyword line carries re-splits to what keepalived runs.
func TestSplitCommandFromTree(t *testing.T) {
	env := ppEnv(map[string]string{ppMain: "vrrp_script s {\n  script \"/bin/check '${_PWD} x' \\\"y\\\"\" # comment\n}\n"}, "vm")
	nodes, diags := ParseTree(ppMain, env)
	if len(diags) != 0 {
		t.Fatal(diags)
	}
	got, err := SplitCommand(nodes[0].Block[0].Raw)
	want := []string{"/bin/check", "/etc/keepalived x", "y"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
}

func FuzzSplitCommand(f *testing.F) {
	for _, s := range []string{`"/bin/echo 'a b' c\"d\""`, `/bin/x\`, `"\x4142 \1234 \c"`, `'a"\`, `""`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		argv, err := SplitCommand(raw)
		if err == nil && len(argv) == 0 {
			t.Fatalf("SplitCommand(%q): no program and no error", raw)
		}
		if err != nil && !errors.Is(err, ErrUnterminatedQuote) && !errors.Is(err, ErrEmptyCommand) {
			t.Fatalf("SplitCommand(%q): unexpected error %v", raw, err)
		}
	})
}
