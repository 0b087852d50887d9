package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// ppEnv is an in-memory Env: files by cleaned path, directories implied.
func ppEnv(files map[string]string, host string) Env {
	isDir := func(name string) bool {
		prefix := strings.TrimSuffix(path.Clean(name), "/") + "/"
		for f := range files {
			if strings.HasPrefix(f, prefix) {
				return true
			}
		}
		return false
	}
	return Env{
		Hostname: host,
		ReadFile: func(name string) ([]byte, error) {
			if s, ok := files[path.Clean(name)]; ok {
				return []byte(s), nil
			}
			if isDir(name) {
				return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
			}
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		},
		Glob: func(pattern string) ([]string, error) {
			if _, err := path.Match(pattern, ""); err != nil {
				return nil, err
			}
			seen := map[string]bool{}
			for f := range files {
				// every file and every directory above it is a candidate
				for c := f; c != "." && c != "/"; c = path.Dir(c) {
					if ok, _ := path.Match(pattern, c); ok {
						seen[c] = true
					}
				}
			}
			var out []string
			for m := range seen {
				out = append(out, m)
			}
			sort.Strings(out)
			return out, nil
		},
	}
}

// ppFormat prints a tree one node a line, blocks indented, quoted words in
// quotes, so that table tests read like the configuration they expect.
func ppFormat(nodes []*Node) string {
	var b strings.Builder
	var walk func([]*Node, string)
	word := func(w Word) string {
		if w.Quoted {
			return strconv.Quote(w.Text)
		}
		return w.Text
	}
	walk = func(ns []*Node, indent string) {
		for _, n := range ns {
			b.WriteString(indent + word(n.Key))
			for _, a := range n.Args {
				b.WriteString(" " + word(a))
			}
			if n.HasBlock {
				b.WriteString(" {\n")
				walk(n.Block, indent+"  ")
				b.WriteString(indent + "}")
			}
			b.WriteString("\n")
		}
	}
	walk(nodes, "")
	return b.String()
}

// ppDiags prints diagnostics as "pos severity" lines.
func ppDiags(ds Diagnostics) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "%s %s\n", d.Pos, d.Severity)
	}
	return b.String()
}

const ppMain = "/etc/keepalived/keepalived.conf"

// ppCase is one table case: files (the main one under the key "main"), the
// config id, the tree and diagnostics expected, and substrings the
// diagnostics' messages must contain, in order.
type ppCase struct {
	name  string
	files map[string]string
	id    string
	tree  string
	diags string
	msgs  []string
}

func ppRun(t *testing.T, tc ppCase) ([]*Node, Diagnostics) {
	t.Helper()
	files := map[string]string{}
	for k, v := range tc.files {
		if k == "main" {
			k = ppMain
		} else if !path.IsAbs(k) {
			k = path.Join("/etc/keepalived", k)
		}
		files[k] = v
	}
	env := ppEnv(files, "vm")
	env.ID = tc.id
	nodes, diags := ParseTree(ppMain, env)
	if got := ppFormat(nodes); got != tc.tree {
		t.Errorf("tree:\n%s\nwant:\n%s", got, tc.tree)
	}
	if got := ppDiags(diags); got != tc.diags {
		t.Errorf("diagnostics:\n%s\nwant:\n%s\nmessages:\n%s", got, tc.diags, diags)
	}
	for i, m := range tc.msgs {
		if i >= len(diags) || !strings.Contains(diags[i].Msg, m) {
			t.Errorf("diagnostic %d should say %q; got:\n%s", i, m, diags)
		}
	}
	return nodes, diags
}

func ppTable(t *testing.T, cases []ppCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { ppRun(t, tc) })
	}
}

const ppK = "/etc/keepalived/keepalived.conf:"

func TestParseTreeBlocks(t *testing.T) {
	ppTable(t, []ppCase{
		{name: "braces on one line", files: map[string]string{"main": "a { b }\n"},
			tree: "a {\n  b\n}\n"},
		{name: "close after value", files: map[string]string{"main": "a {\n  b c }\nd\n"},
			tree: "a {\n  b c\n}\nd\n"},
		{name: "open on next line", files: map[string]string{"main": "vrrp_instance VI\n{\n state MASTER\n}\n"},
			tree: "vrrp_instance VI {\n  state MASTER\n}\n"},
		{name: "open after blank and comment lines", files: map[string]string{"main": "a\n\n# note\n  {\nb\n}\n"},
			tree: "a {\n  b\n}\n"},
		{name: "double close", files: map[string]string{"main": "a {\n b {\n  c\n}}\nd\n"},
			tree: "a {\n  b {\n    c\n  }\n}\nd\n"},
		{name: "no blanks around braces", files: map[string]string{"main": "global_defs{\nsmtp_helo_name h}notification_email{a!x\nb#y\nc;d\n}\n"},
			tree: "global_defs {\n  smtp_helo_name h\n}\nnotification_email {\n  a\n  b\n  c;d\n}\n"},
		{name: "empty block", files: map[string]string{"main": "a {}\nb { }\n"},
			tree: "a {\n}\nb {\n}\n"},
		{name: "extra close", files: map[string]string{"main": "a {\n}\n}\nb\n"},
			tree: "a {\n}\nb\n", diags: ppK + "3:1 error\n", msgs: []string{"unexpected '}'"}},
		{name: "extra close on same line", files: map[string]string{"main": "global_defs { router_id x } }\n"},
			tree: "global_defs {\n  router_id x\n}\n", diags: ppK + "1:29 error\n"},
		{name: "unclosed blocks name their opener", files: map[string]string{"main": "a {\n b {\n  c\n"},
			tree: "a {\n  b {\n    c\n  }\n}\n", diags: ppK + "1:3 error\n" + ppK + "2:4 error\n",
			msgs: []string{`the block of "a" opened here is not closed: expected '}'`, `"b"`}},
		{name: "brace without keyword", files: map[string]string{"main": "{\nglobal_defs {\n}\n}\nz\n"},
			tree: "global_defs {\n}\nz\n", diags: ppK + "1:1 error\n", msgs: []string{"unexpected '{'"}},
		{name: "second block for one keyword", files: map[string]string{"main": "a { b }\n{ c }\n"},
			tree: "a {\n  b\n}\nc\n", diags: ppK + "2:1 error\n"},
		{name: "end position", files: map[string]string{"main": "a {\n  b\n  }\n"},
			tree: "a {\n  b\n}\n"},
	})
	nodes, _ := ppRun(t, ppCase{files: map[string]string{"main": "a {\n  b\n  }\n"}, tree: "a {\n  b\n}\n"})
	if got, want := nodes[0].End, (Pos{File: ppMain, Line: 3, Col: 3}); got != want {
		t.Errorf("End = %v, want %v", got, want)
	}
}

func TestParseTreeWords(t *testing.T) {
	ppTable(t, []ppCase{
		{name: "semicolon is part of the word", files: map[string]string{"main": "virtual_router_id 51;\npriority 100;150\n"},
			tree: "virtual_router_id 51;\npriority 100;150\n"},
		{name: "comments anywhere outside quotes", files: map[string]string{"main": "a b # c\nd ! e\nf#g h\ni!j\n# whole\n! whole\n  # indented\n"},
			tree: "a b\nd\nf\ni\n"},
		{name: "comment characters inside quotes", files: map[string]string{"main": "a \"b # c\" \"d!e\"\n"},
			tree: "a \"b # c\" \"d!e\"\n"},
		{name: "a quote always starts a new word", files: map[string]string{"main": "\"a\"b\"c d\" e\nx\"y z\"w q\n\"p q\"r\n"},
			tree: "\"a\" b \"c d\" e\nx \"y z\" w q\n\"p q\" r\n"},
		{name: "empty quoted word", files: map[string]string{"main": "a \"\" b\n\"\"\n"},
			tree: "a \"\" b\n\"\"\n"},
		{name: "single quotes do not group", files: map[string]string{"main": "'x y' z\n"},
			tree: "'x y' z\n"},
		{name: "braces inside quotes", files: map[string]string{"main": "\"foo { q\" y\na \"}\"\n"},
			tree: "\"foo { q\" y\na \"}\"\n"},
		{name: "backslash is ordinary", files: map[string]string{"main": "a\\\nb\nc \\\"d\n"},
			tree: "a\\\nb\nc \\\n", diags: ppK + "3:4 error\n", msgs: []string{"unterminated double quote"}},
		{name: "unterminated quote drops the word", files: map[string]string{"main": "global_defs {\n router_id \"abc def\n notification_email_from x \"y z\n}\n"},
			tree:  "global_defs {\n  router_id\n  notification_email_from x\n}\n",
			diags: ppK + "2:12 error\n" + ppK + "3:28 error\n"},
		{name: "tabs and CRLF", files: map[string]string{"main": "global_defs {\r\n\trouter_id\tcrlf\r\n}\r\nkw a\r\n"},
			tree: "global_defs {\n  router_id crlf\n}\nkw a\n"},
		{name: "no line continuation outside definitions", files: map[string]string{"main": "a \\\nb\n"},
			tree: "a \\\nb\n"},
		{name: "blank lines only", files: map[string]string{"main": "\n \n\t\n"}},
		{name: "empty file", files: map[string]string{"main": ""}},
		{name: "no final newline", files: map[string]string{"main": "a {\n b\n}"},
			tree: "a {\n  b\n}\n"},
	})
}

func TestParseTreePositionsAndRaw(t *testing.T) {
	env := ppEnv(map[string]string{ppMain: "vrrp_script chk {\n  script \"/bin/check 'a b'\" # note\n\tweight -20\n}\n$A=kw_a\n  $A x\n"}, "vm")
	nodes, diags := ParseTree(ppMain, env)
	if len(diags) != 0 {
		t.Fatalf("diagnostics: %s", diags)
	}
	s := nodes[0].Block[0]
	checks := []struct {
		what      string
		got, want any
	}{
		{"key pos", nodes[0].Key.Pos, Pos{ppMain, 1, 1}},
		{"arg pos", nodes[0].Args[0].Pos, Pos{ppMain, 1, 13}},
		{"script key pos", s.Key.Pos, Pos{ppMain, 2, 3}},
		{"quoted arg pos", s.Args[0].Pos, Pos{ppMain, 2, 10}},
		{"script raw", s.Raw, `"/bin/check 'a b'"`},
		{"tab column", nodes[0].Block[1].Key.Pos, Pos{ppMain, 3, 2}},
		{"weight raw", nodes[0].Block[1].Raw, "-20"},
		{"block raw", nodes[0].Raw, "chk"},
		{"substituted word takes the $ column", nodes[1].Key.Pos, Pos{ppMain, 6, 3}},
		{"word after substitution", nodes[1].Args[0].Pos, Pos{ppMain, 6, 6}},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}
