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
			// Like filepath.Glob: "d/" names a directory d.
			dirOnly := strings.HasSuffix(pattern, "/")
			pattern = strings.TrimSuffix(pattern, "/")
			seen := map[string]bool{}
			for f := range files {
				// every file and every directory above it is a candidate
				for c := f; c != "." && c != "/"; c = path.Dir(c) {
					if ok, _ := path.Match(pattern, c); ok && (!dirOnly || c != f) {
						seen[c] = true
					}
				}
			}
			var out []string
			for m := range seen {
				if dirOnly {
					m += "/"
				}
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
		// global_defs is read by keepalived's parent, where "\#" is '#'.
		{name: "escaped comment characters in global_defs", files: map[string]string{"main": "global_defs {\nkw1\\#x\nkw2\\!x y\\#z\nkw3\\\\#x\n\\# kw4\n\"kw6\\#x\"\nkw9\\#x\\#y\nkw10\\q\n}\n"},
			tree: "global_defs {\n  kw1#x\n  kw2!x y#z\n  kw3\\\\\n  # kw4\n  \"kw6#x\"\n  kw9#x#y\n  kw10\\q\n}\n"},
		// Elsewhere keepalived's VRRP and checker processes read a copy
		// where it has become '#': a comment outside quotes.
		{name: "escaped comment characters elsewhere", files: map[string]string{"main": "kw1\\#x\nkw2 a\\!x y\\#z\nkw3\\\\#x\n\"kw6\\#x\" \"\\!\"\nkw10\\q\n"},
			tree: "kw1\nkw2 a\nkw3\\\\\n\"kw6#x\" \"!\"\nkw10\\q\n", diags: ppK + "1:4 warning\n" + ppK + "2:6 warning\n", msgs: []string{"starts a comment"}},
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
		{name: "no line continuation outside definitions", files: map[string]string{"main": "a \\\nb\nkw3\\\nkw4 x \\ \n!cw4!c$B\\\nkw5 # c \\\n" +
			"k1 \\ \nk2 \\\r\nk3 \\\t\nk5 \\  \n~SEQ(i,1,2) $C ${_HASH} w2 \\\n"},
			tree: "a\\\nb\nkw3\\\nkw4 x \\\n\\\nkw5\\\nk1 \\\nk2\\\nk3 \\\nk5 \\\n$C\\\n$C\\\n"},
		{name: "a final backslash in a multi-line value", files: map[string]string{"main": "$A=w2;\\\\!c\n@vm w3 @foo\nw4 ${_BANG} ${A}\n"},
			tree: "w4\\\nw3 @foo\n"},
		{name: "a condition alone with a final backslash", files: map[string]string{"main": "@vm \\\n@vm x \\\n"},
			tree: "x\\\n"},
		{name: "a quoted brace starting a line is a brace", files: map[string]string{"main": "a\n\"{\" w4 w5\nb\n\"}\"\nkw8 \"{\"\nkw10 \"}\"\n"},
			tree: "a {\n  b\n}\nkw8 \"{\"\nkw10 \"}\"\n", diags: ppK + "2:5 warning\n"},
		{name: "byte order mark", files: map[string]string{"main": "\xef\xbb\xbfglobal_defs {\n}\n"},
			tree: "\xef\xbb\xbfglobal_defs {\n}\n", diags: ppK + "1:1 warning\n", msgs: []string{"byte order mark"}},
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

func TestParseTreeConditions(t *testing.T) {
	src := "@vm kw_at_vm\n@vm\n@foo kw_at_foo\n@^foo kw_not_foo\n@^vm kw_not_vm\n@ vm kw_space\n@VM kw_caps\n" +
		"$IF=@vm\n$IF kw_via_param\n@vm$Z=zz\n$Z\n@vm{\nkw_x\n}\n@vm $P=from_vm\n@foo $P=from_foo\n$P\n"
	ppTable(t, []ppCase{
		{name: "hostname is the default id", files: map[string]string{"main": src},
			tree: "kw_at_vm\nkw_not_foo\nkw_via_param\n$Z\nkw_x\nfrom_vm\n", diags: ppK + "14:1 error\n"},
		{name: "ID overrides the hostname", id: "foo", files: map[string]string{"main": src},
			tree: "kw_at_foo\nkw_not_vm\n$Z\nkw_x\nfrom_foo\n", diags: ppK + "14:1 error\n"},
		{name: "the text after a brace is a new line", files: map[string]string{"main": "global_defs { @foo foo_unknown }\nbar\n"},
			tree: "global_defs {\n  bar\n}\n", diags: ppK + "1:13 error\n"},
		{name: "kept after a brace", files: map[string]string{"main": "global_defs { @^foo router_id x }\n"},
			tree: "global_defs {\n  router_id x\n}\n"},
		{name: "one condition per line", files: map[string]string{"main": "@vm @^vm kw5\n@vm @foo kw6\n"},
			tree: "@^vm kw5\n@foo kw6\n"},
		{name: "only spaces and tabs may come before a condition", files: map[string]string{"main": "\r@foo x1\n\r~SEQ(i,1) y$i\n \r @foo x2\n\t@foo x3\n\v@foo x4\n \t @vm x5\n"},
			tree: "@foo x1\n~SEQ(i,1) y$i\n@foo x2\n@foo x4\nx5\n"},
		{name: "an empty config id matches nothing", files: map[string]string{"main": "@ kw1\n@^ kw2\n"},
			tree: "kw2\n"},
		{name: "conditional block", files: map[string]string{"main": "@vm a {\n@vm b\n@foo c\n}\n"},
			tree: "a {\n  b\n}\n"},
	})
}

func TestParseTreeParameters(t *testing.T) {
	ppTable(t, []ppCase{
		{name: "uses", files: map[string]string{"main": "$A=kw_a\n$A\n$A.x\n${A}.y\nk1 $A\n$Ax\n$ A\nk2 ${A}${A}$A\n"},
			tree: "kw_a\n$A.x\nkw_a.y\nk1 kw_a\n$Ax\n$ A\nk2 kw_akw_akw_a\n"},
		{name: "a use must end at a blank, ')' or ','", files: map[string]string{"main": "$A=v\nk $A}\n$N=7\n$N)\n$N,\n$N(\n$N\"x\"\n$N'\n$N:\n$N/\n$N-\n$N;\n$N]\n"},
			tree: "k $A\n7)\n7,\n$N(\n$N \"x\"\n$N'\n$N:\n$N/\n$N-\n$N;\n$N]\n", diags: ppK + "2:5 error\n"},
		{name: "undefined stays", files: map[string]string{"main": "notify \"/bin/n $1 ${2}\"\n$UNDEF\n${UNDEF}x\n"},
			tree: "notify \"/bin/n $1 ${2}\"\n$UNDEF\n$ {\n  UNDEF\n}\nx\n"},
		{name: "not definitions", files: map[string]string{"main": "$B = v\n$B\n$1X=q\n$1X\n"},
			tree: "$B = v\n$B\n$1X=q\n$1X\n"},
		{name: "values", files: map[string]string{"main": "$C= spaced  value  \nk $C\n$D=\n$D k_d\n  $E=e_val # comment\n$E\n$H=\"q u\"\n$H\n"},
			tree: "k spaced value\nk_d\ne_val\n\"q u\"\n"},
		{name: "quotes are checked before and after substitution", files: map[string]string{"main": "$Q=\"q\n$Q r\nk2\n$P=\"q r\n$P s\"\n"},
			tree: "k2\n\"q r s\"\n", diags: ppK + "1:4 error\n" + ppK + "2:1 error\n" + ppK + "4:4 error\n" + ppK + "5:5 error\n"},
		{name: "quotes of a multi-line definition are checked where they are", files: map[string]string{"main": "$M= \\\n  a \\\n  \"b \\\n  c\n"},
			diags: ppK + "3:3 error\n"},
		{name: "substituted at use, recursively", files: map[string]string{"main": "$ADDRESS_BASE=10.2.${ADDRESS_BASE_SUB}\n$ADDRESS_BASE_SUB=0\n${ADDRESS_BASE}.100/32\n$ADDRESS_BASE_SUB=10\n${ADDRESS_BASE}.100/32\n"},
			tree: "10.2.0.100/32\n10.2.10.100/32\n"},
		{name: "a value is spliced before it is scanned", files: map[string]string{"main": "$A=kw_a\n$F=$A\n$G=${F}_g\n$G\n$F\n"},
			tree: "$A_g\nkw_a\n"},
		{name: "definitions inside blocks", files: map[string]string{"main": "a {\n $P=1\n p $P\n}\nq $P\n"},
			tree: "a {\n  p 1\n}\nq 1\n"},
		{name: "a definition after a brace takes the rest of the line", files: map[string]string{"main": "a { $X=1 }\n$X\n"},
			tree: "a {\n  1\n}\n"},
		{name: "include through a parameter", files: map[string]string{"main": "$X=sub/c.conf\ninclude $X\n$I=include sub/c.conf\n$I\n", "sub/c.conf": "kw_c\n"},
			tree: "kw_c\nkw_c\n"},
		{name: "a parameter that refers to itself", files: map[string]string{"main": "$R=$R\nk_before\n$R\nk_after\n"},
			tree: "k_before\nk_after\n", diags: ppK + "3:1 error\n", msgs: []string{"does not end"}},
		{name: "a parameter that grows", files: map[string]string{"main": "$S=x $S\n$S\nk_after\n"},
			tree: "k_after\n", diags: ppK + "2:1 error\n"},
		{name: "mutual recursion", files: map[string]string{"main": "$A=${B}\n$B=${A}\nk ${A}\n"},
			tree: "", diags: ppK + "3:3 error\n"},
		{name: "predefined", files: map[string]string{"main": "$_PWD\nk ${_PWD} ${_INSTANCE}\n${_HASH}hash\nx${_HASH}y\n\"${_HASH}\" \"${_BANG}\"\n${_BANG}bang\ninclude sub/p.conf\n", "sub/p.conf": "${_PWD}\n"},
			tree: "/etc/keepalived\nk /etc/keepalived vm\nx\n\"#\" \"!\"\n/etc/keepalived/sub\n"},
		{name: "random", files: map[string]string{"main": "global_defs {\n random_seed 7\n}\nr ${_RANDOM 5 5} ${_RANDOM 3 2}\n"},
			tree: "global_defs {\n  random_seed 7\n}\nr 5 3\n"},
		{name: "brace forms that are not references", files: map[string]string{"main": "$A=v\n${ A }\n${A\n"},
			tree: "$ {\n  A\n}\n$ {\n  A\n}\n", diags: ppK + "3:2 error\n"},
	})
}

func TestParseTreeRandomIsDeterministic(t *testing.T) {
	env := ppEnv(map[string]string{ppMain: "r ${_RANDOM} $_RANDOM ${_RANDOM 10 20}\n"}, "vm")
	a, _ := ParseTree(ppMain, env)
	b, _ := ParseTree(ppMain, env)
	if ppFormat(a) != ppFormat(b) {
		t.Errorf("two parses differ:\n%s%s", ppFormat(a), ppFormat(b))
	}
	for _, w := range a[0].Args {
		n, err := strconv.Atoi(w.Text)
		if err != nil || n < 0 || n > 32767 {
			t.Errorf("_RANDOM gave %q", w.Text)
		}
	}
	if n, _ := strconv.Atoi(a[0].Args[2].Text); n < 10 || n > 20 {
		t.Errorf("_RANDOM 10 20 gave %d", n)
	}
}

func TestParseTreeMultiLineParameters(t *testing.T) {
	ppTable(t, []ppCase{
		{name: "man page instance", files: map[string]string{"main": `$INSTANCE= \
vrrp_instance VI_${NUM} { \
    interface eth0.${NUM} \
    @vm priority 130 \
    @low priority 120 \
    virtual_ipaddress { \
        10.0.${NUM}.254/24 \
    } \
}

$NUM=0
$INSTANCE

$NUM=1
$INSTANCE
`},
			tree: "vrrp_instance VI_0 {\n  interface eth0.0\n  priority 130\n  virtual_ipaddress {\n    10.0.0.254/24\n  }\n}\n" +
				"vrrp_instance VI_1 {\n  interface eth0.1\n  priority 130\n  virtual_ipaddress {\n    10.0.1.254/24\n  }\n}\n"},
		{name: "nested definitions", files: map[string]string{"main": `$RS= \
real_server 192.168.${VS_NUM}.${RS_NUM} 80 { \
    weight 1 \
}
$VS= \
virtual_server 10.0.${VS_NUM}.4 80 { \
    $RS_NUM=1 \
    $RS \
    $RS_NUM=2 \
    $RS \
}
$VS_NUM=0
$VS
$VS_NUM=1
$VS
`},
			tree: "virtual_server 10.0.0.4 80 {\n  real_server 192.168.0.1 80 {\n    weight 1\n  }\n  real_server 192.168.0.2 80 {\n    weight 1\n  }\n}\n" +
				"virtual_server 10.0.1.4 80 {\n  real_server 192.168.1.1 80 {\n    weight 1\n  }\n  real_server 192.168.1.2 80 {\n    weight 1\n  }\n}\n"},
		{name: "a comment line ends it, as a blank line does", files: map[string]string{"main": "$E= \\\n e1 \\\n# comment\n e2\n$E\n$F= \\\n f1 # c \\\n f2\n$F\n$G= \\\n g1 \\\n\n g2\n$G\n$H=h1\\\n h2\n$H\n$I=i1 \\\n  ! comment \\\ni2\n$I\n"},
			tree: "e2\ne1\nf1\nf2\ng2\ng1\nh1\nh2\ni2\ni1\n", diags: ppK + "3:1 error\n" + ppK + "19:1 error\n", msgs: []string{"main process skips the comment"}},
		// keepalived's processes agree when a blank line follows the comment.
		{name: "a comment line before a blank line", files: map[string]string{"main": "$J=j1 \\\n# c\n ! c2\n\n$J\n$K=k1 \\\n# c\n"},
			tree: "j1\n"},
		{name: "replaced only at the end of a line", files: map[string]string{"main": "$M=m1 \\\nm2\n$S=s1\nx5 $M $S\n$M $S\n${M}x6\nx7${M}\nx8 ${M}  \nx9 $M # comment\n$M2=$M\n$M2 x10\nx11 $M2\n"},
			tree: "x5 $M s1\n$M s1\n$ {\n  M\n}\nx6\nx7m1\nm2\nx8 m1\nm2\nx9 m1\nm2\n$M x10\nx11 m1\nm2\n"},
		{name: "each line of the value is read in turn", files: map[string]string{"main": "$RS= \\\nrs ${N} \\\n$N=2 \\\nrs ${N}\n$N=1\n$RS\n$RS\n"},
			tree: "rs 1\nrs 2\nrs 2\nrs 2\n"},
		{name: "conditional definition", files: map[string]string{"main": "@foo $M= \\\n m1 \\\n m2\nafter\n$M\n@vm $V= \\\n v1\n$V\n"},
			tree: "m1\\\nm2\nafter\n$M\nv1\n"},
	})
	nodes, _ := ParseTree(ppMain, ppEnv(map[string]string{ppMain: "$M= \\\n a \\\n b\n\n  $M\n"}, "vm"))
	for _, n := range nodes {
		if n.Key.Pos != (Pos{ppMain, 5, 3}) {
			t.Errorf("%s at %v, want the place of the use", n.Key.Text, n.Key.Pos)
		}
	}
}

func TestParseTreeGenerators(t *testing.T) {
	ppTable(t, []ppCase{
		{name: "sequences", files: map[string]string{"main": "~SEQ(a,1,3) s1_$a\n~SEQ(b,3) s2_${b}\n~SEQ(c,-2) s3_${c}\n~SEQ(d,5,2) s4_${d}\n" +
			"~SEQx(e,10,3,12) s5_${e}\n~SEQ( f , 1 , 2 , 3 ) s6_${f}\n~SEQ(g,3,-1,1) s7_${g}\n~SEQ(h,0) s8_${h}\n  ~SEQ(i,1,1) s9_${i}\n" +
			"~SEQ(j,1,1)s10_${j}\n~SEQ(k,1,2,1) s11_${k}\n~SEQ(m,0x10,0x11) s13_${m}\n~SEQ(o,010,011) s_oct_${o}\n"},
			tree: "s1_1\ns1_2\ns1_3\ns2_1\ns2_2\ns2_3\ns3_-1\ns3_-2\ns4_5\ns4_4\ns4_3\ns4_2\ns5_a\ns6_1\ns6_3\ns7_3\ns7_2\ns7_1\ns8_1\ns8_0\ns9_1\n" +
				"s10_1\ns11_1\ns13_16\ns13_17\ns_oct_8\ns_oct_9\n"},
		{name: "man page hex", files: map[string]string{"main": "~SEQx(SUBNET, 0x90, 0x10, 0xc0) ip_address fe80::20:${SUBNET}:1\n"},
			tree: "ip_address fe80::20:90:1\nip_address fe80::20:a0:1\nip_address fe80::20:b0:1\nip_address fe80::20:c0:1\n"},
		{name: "lists", files: map[string]string{"main": "~LST(r,u,v) s16_${r}\n~LST({s,t},{1,2},{3,4}) s17_${s}_${t}\n~LST( u , w1 , w2 ) s18_${u}x\n" +
			"~LST({a1,a2},{1},{2,3}) s23_${a1}_${a2}\n~LST(m,,) kwlst_${m}_\n"},
			tree: "s16_u\ns16_v\ns17_1_2\ns17_3_4\ns18_w1x\ns18_w2x\ns23_1_\ns23_2_3\nkwlst__\nkwlst__\n"},
		{name: "nested and combined", files: map[string]string{"main": "~SEQ(n,1,1,2) ~SEQ(o,1,1,2) s14_${n}_${o}\n~LST({IP, IP1}, {10,1},{20,4}) ~SEQ(IP2,168,2,170) 192.${IP2}.${IP}.${IP1}\n"},
			tree: "s14_1_1\ns14_1_2\ns14_2_1\ns14_2_2\n192.168.10.1\n192.170.10.1\n192.168.20.4\n192.170.20.4\n"},
		{name: "inside a block, with a multi-line parameter", files: map[string]string{"main": "$B= \\\nb_$i { \\\n x \\\n}\nvirtual_ipaddress {\n  ~SEQ(i,1,2) 10.0.0.$i\n}\n~SEQ(i,1,2) $B\n"},
			tree: "virtual_ipaddress {\n  10.0.0.1\n  10.0.0.2\n}\nb_1 {\n  x\n}\nb_2 {\n  x\n}\n"},
		{name: "the variable keeps its last value", files: map[string]string{"main": "$i=before\n~SEQ(i,1,2) k $i\nafter $i\n~SEQ(z,1,1) k $z\nafter $z\n~SEQ(y,1,2)\nempty $y\n"},
			tree: "k 1\nk 2\nafter 2\nk 1\nafter 1\nempty 2\n"},
		{name: "nothing to repeat", files: map[string]string{"main": "~SEQ(j,1,2) ~SEQ(k,1,2)\n~SEQ(j,1,2)\n"}},
		{name: "parameters as whole values", files: map[string]string{"main": "$N=2\n$M=$N\n~LST(v,$N,b) kw_lst_$v\n~SEQ(q,1,$M) kw_seqm_$q\n~SEQ(r,1,${N}) kw_seqb_$r\n" +
			"~SEQ(s,1,x$N) bad\n~LST(w,${N}x,$N.y) bad\nk_end\n"},
			tree:  "kw_lst_2\nkw_lst_b\nkw_seqm_1\nkw_seqm_2\nkw_seqb_1\nkw_seqb_2\nk_end\n",
			diags: ppK + "6:1 error\n" + ppK + "7:1 error\n", msgs: []string{"whole value", "whole value"}},
		{name: "conditions after a generator", files: map[string]string{"main": "@vm ~SEQ(i,1) k$i\n@foo ~SEQ(i,1) no$i\n~SEQ(i,2) @foo no\n~SEQ(i,1) @vm k\n~SEQ(i,1) @^foo @foo w1\n"},
			tree: "k1\nk\n@foo w1\n"},
		{name: "not generators", files: map[string]string{"main": "~FOO(a,1) s25\n~SEQUENCE x\n"},
			tree: "~FOO(a,1) s25\n~SEQUENCE x\n"},
		{name: "invalid", files: map[string]string{"main": "~SEQ(l,1,-1,3) s12\n~SEQ(a5,1,0,3) s27\n~SEQ(y,1.5,2) s20\n~SEQ(z) s21\n~LST(z2) s22\n" +
			"~SEQ(a3,a,b) s24\n~SEQ(a4,1,3\ns26\n~LST(v,\"a b\",c) s19\n~SEQ(1a,1) s28\n  ~SEQ(ok,1,1) ~LST(q) s29\n"},
			tree: "s26\n",
			diags: ppK + "1:1 error\n" + ppK + "2:1 error\n" + ppK + "3:1 error\n" + ppK + "4:1 error\n" + ppK + "5:1 error\n" +
				ppK + "6:1 error\n" + ppK + "7:1 error\n" + ppK + "9:1 error\n" + ppK + "10:1 error\n" + ppK + "11:16 error\n",
			msgs: []string{"step must be non-zero", "step must be non-zero", `"1.5" is not an integer`, "expected ~SEQ(var", "no values", `"a" is not an integer`, "missing ')'", "contains blanks", "must be a name"}},
		{name: "too many lines", files: map[string]string{"main": "~SEQ(a,1,1000000000) x\n~SEQ(a,1,1000) ~SEQ(b,1,1000) x\n~SEQ(a,-9007199254740992,9007199254740992) x\n~SEQ(a,1,99999999999999999999) x\n" +
			"~SEQ(a,1,100000) ~SEQ(b,1,9007199254740992) x\n~SEQ(a,1,131072) ~SEQ(b,1,2) x\nok\n"},
			tree: "ok\n", diags: ppK + "1:1 error\n" + ppK + "2:16 error\n" + ppK + "3:1 error\n" + ppK + "4:1 error\n" + ppK + "5:18 error\n" + ppK + "6:18 error\n",
			msgs: []string{"more than 131072 lines", "more than 131072 lines", "more than", "not an integer", "more than", "more than"}},
	})
}

func TestParseTreeInclude(t *testing.T) {
	sub := map[string]string{
		"sub/a.conf":  "router_id fromA\ninclude b.conf\n",
		"sub/b.conf":  "kw_b x\n",
		"sub/c.conf":  "kw_c\n",
		"sub/ok.conf": "# nothing\n",
		"open.conf":   "global_defs {\n foo_open\n",
	}
	with := func(main string) map[string]string {
		m := map[string]string{"main": main}
		for k, v := range sub {
			m[k] = v
		}
		return m
	}
	const oc = "/etc/keepalived/open.conf:"
	ppTable(t, []ppCase{
		{name: "textual inside a block, relative to the including file", files: with("global_defs {\n include sub/a.conf\n}\n"),
			tree: "global_defs {\n  router_id fromA\n  kw_b x\n}\n"},
		{name: "a block opened in an included file", files: with("include open.conf\n}\nafter\n"),
			tree: "global_defs {\n  foo_open\n}\nafter\n"},
		{name: "a block left open by an included file", files: with("include open.conf\n"),
			tree: "global_defs {\n  foo_open\n}\n", diags: oc + "1:13 error\n"},
		{name: "brace expansion keeps the order", files: with("include sub/{c,a}.conf\ninclude sub/{x/{,y},c}.conf\n"),
			tree: "kw_c\nrouter_id fromA\nkw_b x\nkw_c\n", diags: ppK + "2:9 warning\n", msgs: []string{"some files"}},
		{name: "globs are sorted", files: with("include sub/*.conf\n"),
			tree: "router_id fromA\nkw_b x\nkw_b x\nkw_c\n"},
		{name: "wildcards do not match hidden files", files: func() map[string]string {
			m := with("include sub/*.conf\ninclude sub/.*.conf\ninclude */ok.conf\n")
			m["sub/.#a.conf"], m[".git/ok.conf"] = "hidden\n", "hidden_dir\n"
			return m
		}(), tree: "router_id fromA\nkw_b x\nkw_b x\nkw_c\nhidden\n"},
		{name: "a missing file is a warning", files: with("include missing.conf\nk\n"),
			tree: "k\n", diags: ppK + "1:9 warning\n", msgs: []string{`included file "missing.conf" does not exist`}},
		{name: "a glob matching nothing is silent", files: with("include sub/*.nomatch\n")},
		{name: "the pattern is the rest of the line", files: with("include sub/c.conf sub/c.conf\ninclude \"sub/c.conf\"\ninclude sub/c.conf}\ninclude sub/c.conf # comment\n"),
			tree: "kw_c\n", diags: ppK + "1:9 warning\n" + ppK + "2:9 warning\n" + ppK + "3:9 warning\n"},
		{name: "include after a brace takes the closing brace too", files: with("global_defs { include sub/b.conf }\n"),
			tree: "global_defs {\n}\n", diags: ppK + "1:23 warning\n" + ppK + "1:13 error\n"},
		{name: "conditional include", files: with("@foo include sub/b.conf\n@^foo include sub/c.conf\n"),
			tree: "kw_c\n"},
		{name: "a directory", files: with("include sub\nincluder sub\n"),
			diags: ppK + "1:9 warning\n" + ppK + "2:10 error\n", msgs: []string{"is a directory", "is a directory"}},
		{name: "includer", files: with("includer missing.conf\n"), diags: ppK + "1:10 warning\n"},
		{name: "includem", files: with("includem missing.conf\nincludem sub/*.nomatch\nincludem {x,sub/ok}.conf\n"),
			diags: ppK + "1:10 error\n" + ppK + "3:10 warning\n"},
		{name: "includew", files: with("includew sub/*.nomatch\nincludew missing.conf\n"),
			diags: ppK + "1:10 error\n" + ppK + "2:10 error\n", msgs: []string{"no file matches"}},
		{name: "includeb skips the whole include", files: with("includeb {x,sub/c}.conf\nincludeb {x,y}.conf\n"),
			diags: ppK + "1:10 error\n" + ppK + "2:10 error\n", msgs: []string{"(includeb); include skipped"}},
		{name: "includea", files: with("includea sub/c.conf\nincludea missing.conf\n"),
			tree: "kw_c\n", diags: ppK + "2:10 error\n"},
		{name: "include_check in global_defs", files: with("global_defs {\ninclude_check match\n}\ninclude missing.conf\ninclude {x,sub/ok}.conf\n"),
			tree: "global_defs {\n  include_check match\n}\n", diags: ppK + "4:9 error\n" + ppK + "5:9 warning\n"},
		{name: "include_check with no option is all", files: with("global_defs {\ninclude_check\n}\ninclude {x,sub/ok}.conf\n"),
			tree: "global_defs {\n  include_check\n}\n", diags: ppK + "4:9 error\n"},
		{name: "include_check adds and removes", files: with("global_defs {\ninclude_check -match +wildcard_match\n}\ninclude missing.conf\ninclude sub/*.nomatch\n"),
			tree: "global_defs {\n  include_check -match +wildcard_match\n}\n", diags: ppK + "4:9 warning\n" + ppK + "5:9 error\n"},
		{name: "include_check unknown option", files: with("global_defs {\ninclude_check bogus readable\n}\n"),
			tree: "global_defs {\n  include_check bogus readable\n}\n", diags: ppK + "2:15 error\n" + ppK + "2:21 error\n",
			msgs: []string{`unknown include_check "bogus"`, `unknown include_check "readable"`}},
		{name: "include_check only counts in global_defs", files: with("include_check\ninclude missing.conf\n"),
			tree: "include_check\n", diags: ppK + "2:9 warning\n"},
		{name: "include_check does not leak out of an included file", files: func() map[string]string {
			m := with("include inc.conf\ninclude missing.conf\n")
			m["inc.conf"] = "global_defs {\ninclude_check\n}\ninclude missing.conf\n"
			return m
		}(), tree: "global_defs {\n  include_check\n}\n", diags: "/etc/keepalived/inc.conf:4:9 error\n" + ppK + "2:9 warning\n"},
		{name: "include with no pattern", files: with("include\nincludea   \n"),
			diags: ppK + "1:1 error\n" + ppK + "2:1 error\n"},
		{name: "includes made by a generator or a parameter come after the rest, last first", files: func() map[string]string {
			m := with("~LST(j,1,2,3) include s${j}.conf\nafter\n$M= \\\ninclude s1.conf \\\nkw_mid \\\ninclude s2.conf \\\nkw_end\n$M\n~SEQ(i,1,2) include s$i.conf\n")
			m["s1.conf"], m["s2.conf"], m["s3.conf"], m["s$i.conf"] = "kw_s1\n", "kw_s2\n", "kw_s3\n", "kw_si\n"
			return m
		}(), tree: "kw_s3\nkw_s2\nkw_s1\nafter\nkw_mid\nkw_end\nkw_s2\nkw_s1\nkw_si\nkw_si\n"},
		{name: "brace forms", files: func() map[string]string {
			m := with("include inc/{s}.conf\ninclude inc/{}.conf\ninclude inc/{s,b.conf\n")
			m["inc/s.conf"], m["inc/.conf"], m["inc/{}.conf"], m["inc/{s,b.conf"] = "kw_single\n", "kw_dot\n", "kw_braces\n", "kw_unmatched\n"
			return m
		}(), tree: "kw_single\nkw_dot\nkw_unmatched\n"},
		{name: "a wildcard ending in a slash matches directories", files: func() map[string]string {
			m := with("include sub/*/\nincluder */\ninclude sub/a.conf/\n")
			m["sub/deep/x.conf"] = "x\n"
			return m
		}(), diags: ppK + "1:9 warning\n" + ppK + "2:10 error\n" + ppK + "3:9 warning\n",
			msgs: []string{`"/etc/keepalived/sub/deep/": read /etc/keepalived/sub/deep/: is a directory`, `"/etc/keepalived/sub/"`, "does not exist"}},
		{name: "an open bracket is itself", files: func() map[string]string {
			m := with("include inc/[.conf\nincludew inc/[x*.conf\n")
			m["inc/[.conf"] = "bracket\n"
			return m
		}(), tree: "bracket\n", diags: ppK + "2:10 error\n", msgs: []string{"no file matches"}},
		{name: "unknown variant is a keyword", files: with("includet missing.conf\n"),
			tree: "includet missing.conf\n"},
	})
}

func TestParseTreeIncludeCyclesAndDepth(t *testing.T) {
	ppTable(t, []ppCase{
		{name: "self", files: map[string]string{"main": "a\ninclude keepalived.conf\nb\n"},
			tree: "a\nb\n", diags: ppK + "2:9 error\n",
			msgs: []string{"include cycle: /etc/keepalived/keepalived.conf -> /etc/keepalived/keepalived.conf"}},
		{name: "through two files", files: map[string]string{"main": "include x.conf\n", "x.conf": "x\ninclude sub/../y.conf\n", "y.conf": "y\ninclude x.conf\n"},
			tree: "x\ny\n", diags: "/etc/keepalived/y.conf:2:9 error\n",
			msgs: []string{"include cycle: /etc/keepalived/x.conf -> /etc/keepalived/y.conf -> /etc/keepalived/x.conf"}},
		{name: "a file included twice is no cycle", files: map[string]string{"main": "include x.conf\ninclude x.conf\n", "x.conf": "x\n"},
			tree: "x\nx\n"},
	})
	// A chain of 40 files: the 32nd level is refused.
	files := map[string]string{"main": "include f1.conf\n"}
	for i := 1; i <= 40; i++ {
		files[fmt.Sprintf("f%d.conf", i)] = fmt.Sprintf("k%d\ninclude f%d.conf\n", i, i+1)
	}
	files["f41.conf"] = "k41\n"
	_, diags := ppRun(t, ppCase{files: files,
		tree: func() string {
			var b strings.Builder
			for i := 1; i <= 31; i++ {
				fmt.Fprintf(&b, "k%d\n", i)
			}
			return b.String()
		}(),
		diags: "/etc/keepalived/f31.conf:2:9 error\n"})
	if len(diags) == 1 && !strings.Contains(diags[0].Msg, "deeper than 32") {
		t.Errorf("depth message: %s", diags[0].Msg)
	}
}

func TestParseTreeIncludeBomb(t *testing.T) {
	// Every file includes all ten files twice: without a bound on files read
	// this would never end.
	files := map[string]string{}
	for i := 0; i < 10; i++ {
		files[fmt.Sprintf("/b/f%d.conf", i)] = "k\ninclude f*.conf\ninclude f*.conf\n"
	}
	_, diags := ParseTree("/b/f0.conf", ppEnv(files, "vm"))
	if !strings.Contains(diags.String(), "more than 4096 files included: giving up") {
		t.Errorf("no file bound reported:\n%.2000s", diags)
	}
	if len(diags) > 200 {
		t.Errorf("%d diagnostics: each cycle should be reported once per include line and file", len(diags))
	}
}

func TestParseTreeEntryPoints(t *testing.T) {
	env := ppEnv(map[string]string{"/etc/k/inc.conf": "inc\n"}, "vm")
	nodes, diags := ParseTreeBytes("/etc/k/mem.conf", []byte("include inc.conf\nmem\n"), env)
	if got := ppFormat(nodes); got != "inc\nmem\n" || len(diags) != 0 {
		t.Errorf("ParseTreeBytes: %q %s", got, diags)
	}
	if nodes[0].Key.Pos != (Pos{"/etc/k/inc.conf", 1, 1}) || nodes[1].Key.Pos != (Pos{"/etc/k/mem.conf", 2, 1}) {
		t.Errorf("positions: %v %v", nodes[0].Key.Pos, nodes[1].Key.Pos)
	}

	nodes, diags = ParseTree("/etc/k/missing.conf", env)
	if nodes != nil || ppDiags(diags) != "/etc/k/missing.conf:0 fatal\n" || !diags.HasErrors() {
		t.Errorf("missing main file: %v %s", nodes, diags)
	}
	if !strings.Contains(diags[0].Msg, "file does not exist") {
		t.Errorf("message should carry the cause: %s", diags[0].Msg)
	}

	// An Env without Glob still includes plain names.
	bare := Env{ReadFile: env.ReadFile}
	nodes, diags = ParseTreeBytes("/etc/k/mem.conf", []byte("include inc.conf\ninclude *.conf\n"), bare)
	if got := ppFormat(nodes); got != "inc\n" || len(diags) != 0 {
		t.Errorf("without Glob: %q %s", got, diags)
	}
	// An empty Env is not a panic.
	if _, diags := ParseTree("x", Env{}); ppDiags(diags) != "x:0 fatal\n" {
		t.Errorf("empty Env: %s", diags)
	}
	if _, diags := ParseTreeBytes("x", []byte("include y\n"), Env{}); ppDiags(diags) != "x:1:9 error\n" {
		t.Errorf("empty Env include: %s", diags)
	}
	// No config id at all: "@ x" is not kept for it.
	nodes, _ = ParseTreeBytes("x", []byte("@ kw1\n@^ kw2\n@x kw3\n"), Env{})
	if got := ppFormat(nodes); got != "kw2\n" {
		t.Errorf("empty config id: %q", got)
	}
	// Relative main file: includes are relative to its directory.
	rel := ppEnv(map[string]string{"conf/main.conf": "include inc.conf\n", "conf/inc.conf": "k ${_PWD}\n"}, "vm")
	nodes, _ = ParseTree("conf/main.conf", rel)
	if got := ppFormat(nodes); got != "k conf\n" {
		t.Errorf("relative: %q", got)
	}
}

func TestParseTreeLimits(t *testing.T) {
	deep := strings.Repeat("b {\n", 300) + strings.Repeat("}\n", 300) + "after\n"
	big := "$A=" + strings.Repeat("y", 1000) + "\n$B=" + strings.Repeat("${A}", 16) + "\n$C=" + strings.Repeat("${B}", 16) + "\n"
	ppTable(t, []ppCase{
		{name: "a long line is read as lines of 1023 bytes", files: map[string]string{"main": "a\n" + strings.Repeat("x", 3000) + "\n" + strings.Repeat("c", 1023) + "\n" +
			strings.Repeat("e", 1000) + " \"" + strings.Repeat("f", 100) + "\"\nb\n"},
			tree: "a\n" + strings.Repeat("x", 1023) + "\n" + strings.Repeat("x", 1023) + "\n" + strings.Repeat("x", 954) + "\n" + strings.Repeat("c", 1023) + "\n" +
				strings.Repeat("e", 1000) + "\n" + strings.Repeat("f", 79) + "\nb\n",
			diags: ppK + "2:1024 warning\n" + ppK + "4:1024 warning\n" + ppK + "4:1002 error\n" + ppK + "4:1103 error\n",
			msgs:  []string{"3 lines of at most 1023 bytes", "2 lines", "unterminated", "unterminated"}},
		{name: "an expansion past keepalived's buffer", files: map[string]string{"main": "$A=" + strings.Repeat("x", 600) + "\nk ${A}${A}\n"},
			tree: "k " + strings.Repeat("x", 1200) + "\n", diags: ppK + "2:1 warning\n", msgs: []string{"1202 bytes long: keepalived 2.2.7 substitutes only within 1023 bytes"}},
		{name: "an expansion too long", files: map[string]string{"main": big + "k ${C} ${C} ${C} ${C} ${C}\nb\n"},
			tree: "b\n", diags: ppK + "4:23 error\n", msgs: []string{"longer than 1048576 bytes"}},
		{name: "unclosed braces without keywords are summed up", files: map[string]string{"main": "{\n{\n{\n"},
			diags: ppK + "1:1 error\n" + ppK + "2:1 error\n" + ppK + "3:1 error\n" + ppK + "1:1 error\n",
			msgs:  []string{"unexpected '{'", "unexpected '{'", "unexpected '{'", "3 '{' without a keyword"}},
		{name: "long include pattern", files: map[string]string{"main": "$P=" + strings.Repeat("{a,", 300) + "\ninclude " + strings.Repeat("${P}", 5) + "\n"},
			diags: ppK + "2:1 warning\n" + ppK + "2:9 error\n", msgs: []string{"substitutes only within", "at most 4096"}},
		{name: "brace expansion bound", files: map[string]string{"main": "include " + strings.Repeat("{a,b}", 11) + "\n"},
			diags: ppK + "1:9 error\n", msgs: []string{"more than 1024 names"}},
	})
	nodes, diags := ParseTreeBytes("d.conf", []byte(deep), Env{})
	if ppDiags(diags) != "d.conf:257:3 error\n" || !strings.Contains(diags[0].Msg, "deeper than 256") {
		t.Errorf("deep nesting: %s", diags)
	}
	depth := 0
	for n := nodes[0]; len(n.Block) > 0; n = n.Block[0] {
		depth++
	}
	if depth != 256 || ppFormat(nodes[1:]) != "after\n" {
		t.Errorf("deep nesting: depth %d, then %q", depth, ppFormat(nodes[1:]))
	}

	// The whole-parse budget stops a parse that expands without end, with
	// one fatal diagnostic; small limits keep the test fast.
	lim := defaultLimits
	lim.pieces = 10000
	src := "$M= \\\n a \\\n b \\\n c\n~SEQ(i,1,100000) $M\n~SEQ(i,1,100000) $M\n"
	nodes, diags = parseTree("m.conf", []byte(src), Env{}, lim)
	if ppDiags(diags) != "m.conf:5:1 fatal\n" || len(nodes) > 10000 {
		t.Errorf("budget: %d nodes, %s", len(nodes), diags)
	}
	lim = defaultLimits
	lim.nodes = 5000
	nodes, diags = parseTree("m.conf", []byte(src), Env{}, lim)
	if ppDiags(diags) != "m.conf:5:1 fatal\n" || len(nodes) != 5000 {
		t.Errorf("node budget: %d nodes, %s", len(nodes), diags)
	}
	lim = defaultLimits
	lim.bytes = 1 << 20
	nodes, diags = parseTree("m.conf", []byte(src), Env{}, lim)
	if ppDiags(diags) != "m.conf:5:1 fatal\n" || !strings.Contains(diags[0].Msg, "giving up") {
		t.Errorf("byte budget: %d nodes, %s", len(nodes), diags)
	}
	// Include patterns to expand are bounded too.
	nodes, diags = parseTree("i.conf", []byte("~SEQ(i,1,20000) include x$i\n"), ppEnv(nil, "vm"), defaultLimits)
	if got := ppDiags(diags); !strings.HasSuffix(got, "i.conf:1:25 fatal\n") || strings.Count(got, "\n") != 16385 {
		t.Errorf("glob budget: %d diagnostics, last %s", len(diags), diags[len(diags)-1])
	}
	// A long substituted line with many braces is read in linear time.
	src = "$B=" + strings.Repeat("a{}", 300) + "\n$C=" + strings.Repeat("${B}", 250) + "\n$C\n"
	nodes, diags = ParseTreeBytes("b.conf", []byte(src), Env{})
	if len(nodes) != 75000 || len(diags) != 1 {
		t.Errorf("many braces: %d nodes, %d diagnostics", len(nodes), len(diags))
	}
	// So is a long substituted line full of "${" that are not references.
	src = "$A=" + strings.Repeat("${", 500) + "\n$B=" + strings.Repeat("${A}", 250) + "\nk $B\n"
	nodes, diags = ParseTreeBytes("d.conf", []byte(src), Env{})
	if len(nodes) != 1 || diags.Count(Fatal) != 0 || !strings.Contains(diags.String(), "250002 bytes long") {
		t.Errorf("many ${: %d nodes, %.500s", len(nodes), diags)
	}
	// Generators nested through parameters multiply: the nesting bound and
	// the budget both hold.
	src = "$A=~SEQ(a,1,50) $B\n$B=~SEQ(b,1,50) $C\n$C=~SEQ(c,1,50) $D\n$D=~SEQ(d,1,50) x\n$A\n"
	lim = defaultLimits
	lim.pieces = 100000
	nodes, diags = parseTree("g.conf", []byte(src), Env{}, lim)
	if !diags.HasErrors() || len(nodes) > 100000 {
		t.Errorf("nested generators: %d nodes, %s", len(nodes), diags)
	}
}

// TestIncludeChecks is the verdict of `keepalived -t` (2.2.7) for each include
// variant and include_check level against each kind of pattern: true where
// it fails the configuration.
func TestIncludeChecks(t *testing.T) {
	pats := []string{"inc/missing.conf", "inc/*.none", "inc/{a,zz}.conf", "inc/{y,zz}.conf", "inc/{x*,a}.conf", "inc", "inc/{x*,y*}.conf"}
	want := []struct {
		how  string
		fail string // one letter per pattern: x fails, . passes
	}{
		{"include", "......."},
		{"includer", ".....x."},
		{"includem", "x....x."},
		{"includew", "xx...xx"},
		{"includeb", "..xx.x."},
		{"includea", "xxxx.xx"},
		{"ic:match", "x....x."},
		{"ic:wildcard_match", ".x...xx"},
		{"ic:brace_match", "..xx.x."},
		{"ic:", "xxxx.xx"},
		{"ic:wildcard_match -match", ".x...xx"},
		{"ic:brace_match -match", "..xx.x."},
		{"ic:match +brace_match", "x.xx.x."},
		{"ic:+match", "x......"}, // a + option does not bring readable along
		{"ic:+brace_match", "..xx..."},
		{"ic:+wildcard_match -match", ".x....x"},
		{"ic:match wildcard_match", "xxxxxxx"}, // a bare second option is an error
		{"ic:-match match", "xxxxxxx"},
	}
	files := map[string]string{"/k/inc/a.conf": "# a\n", "/k/inc/b.conf": "# b\n", "/k/inc/sub/c.conf": "# c\n"}
	for _, w := range want {
		for i, pat := range pats {
			src := w.how + " " + pat + "\n"
			if opts, ok := strings.CutPrefix(w.how, "ic:"); ok {
				src = "global_defs {\ninclude_check " + opts + "\n}\ninclude " + pat + "\n"
			}
			_, diags := ParseTreeBytes("/k/main.conf", []byte(src), ppEnv(files, "vm"))
			if got, want := diags.HasErrors(), w.fail[i] == 'x'; got != want {
				t.Errorf("%s %s: fails %v, keepalived fails %v:\n%s", w.how, pat, got, want, diags)
			}
		}
	}
}

func BenchmarkParseTree(b *testing.B) {
	const manExample = `$VI4= \
track_file offset_instance_4.${IF}.${NUM}.${ID} { \
    file "${_PWD}/679/track_files/4.${IF}.${NUM}.${ID}" \
    weight -100 \
} \
vrrp_instance vrrp4.${IF}.${NUM}.${ID} { \
    interface bond${IF}.${NUM} \
    use_vmac vrrp4.${IF}.${NUM}.${ID} \
    virtual_router_id ${ID} \
    priority 130 \
    virtual_ipaddress { \
        10.${IF}.${NUM}.${ID}/24 \
    } \
    track_file { \
        offset_instance_4.${IF}.${NUM}.${ID} \
    } \
}
~SEQ(IF,0,1) ~SEQ(NUM,0,3) ~SEQ(ID,1,254) $VI4
`
	for _, c := range []struct{ name, src string }{
		{"typical", fuzzSeeds[0] + fuzzSeeds[1]},
		{"generated-2032-instances", manExample},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.src)))
			for b.Loop() {
				if _, diags := ParseTreeBytes("/etc/keepalived/keepalived.conf", []byte(c.src), Env{}); diags.HasErrors() {
					b.Fatal(diags)
				}
			}
		})
	}
}
