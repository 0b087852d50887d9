// Command mangen writes vigil.conf(5), the man page of what vigil reads in
// keepalived.conf beyond and short of keepalived 2.2.7, from the keyword
// tables (config.Keywords) and the list of keywords keepalived.conf(5)
// documents (config/testdata/model/manpage_keywords.txt): a keyword that
// keepalived does not document is a vigil extension. `make deb` runs it.
//
//	go run ./packaging/mangen -keepalived config/testdata/model/manpage_keywords.txt > vigil.conf.5
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"vigil/config"
)

func main() {
	list := flag.String("keepalived", "config/testdata/model/manpage_keywords.txt", "the keywords keepalived.conf(5) documents, by block")
	date := flag.String("date", "", "date for the page footer")
	version := flag.String("version", "", "vigil version for the page footer")
	flag.Parse()
	known, err := readKnown(*list)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mangen:", err)
		os.Exit(1)
	}
	if err := write(os.Stdout, config.Keywords(), known, *date, *version); err != nil {
		fmt.Fprintln(os.Stderr, "mangen:", err)
		os.Exit(1)
	}
}

// readKnown reads "block: kw kw ..." lines into block -> keyword set.
func readKnown(path string) (map[string]map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	known := map[string]map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		block, kws, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%s: %q: expected \"block: keywords\"", path, line)
		}
		set := known[block]
		if set == nil {
			set = map[string]bool{}
			known[block] = set
		}
		for _, k := range strings.Fields(kws) {
			set[k] = true
		}
	}
	return known, sc.Err()
}

// blockKey is how manpage_keywords.txt names a table: its first word, and
// "top" for the top level.
func blockKey(block string) string {
	if block == "top level" {
		return "top"
	}
	first, _, _ := strings.Cut(block, " ")
	return first
}

// esc escapes text for roff: backslashes, and a leading dot or quote.
func esc(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "`", "")
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

func write(w io.Writer, kws []config.Keyword, known map[string]map[string]bool, date, version string) error {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH VIGIL.CONF 5 %q %q \"File Formats\"\n", date, "vigil "+version)
	b.WriteString(".SH NAME\nvigil.conf \\- keepalived.conf as vigil reads it: extensions and differences\n")
	b.WriteString(".SH DESCRIPTION\n")
	b.WriteString("vigil reads keepalived.conf(5) as it is: the grammar, includes, parameters and every keyword\n")
	b.WriteString("documented by keepalived 2.2.7. This page lists what differs: the keywords vigil adds\n")
	b.WriteString("(\\fBEXTENSIONS\\fR), the ones it accepts with a warning and ignores, and the ones it rejects\n")
	b.WriteString("because running without them would silently change behaviour. \\fBvigil check\\fR reports\n")
	b.WriteString("each with file, line and column.\n")
	section := func(title, intro string, keep func(k config.Keyword) bool) {
		fmt.Fprintf(&b, ".SH %s\n%s\n", title, intro)
		block := ""
		var rows []config.Keyword
		for _, k := range kws {
			if keep(k) {
				rows = append(rows, k)
			}
		}
		if len(rows) == 0 {
			b.WriteString(".PP\nNone.\n")
			return
		}
		for _, k := range rows {
			if k.Block != block {
				block = k.Block
				fmt.Fprintf(&b, ".SS %s\n", esc(block))
			}
			fmt.Fprintf(&b, ".TP\n.B %s\n%s\n", esc(k.Name), esc(k.Doc))
		}
	}
	isExt := func(k config.Keyword) bool {
		set, ok := known[blockKey(k.Block)]
		return ok && !set[k.Name] || !ok
	}
	section("EXTENSIONS", "Keywords keepalived.conf(5) (2.2.7) does not document: vigil's extensions, such as DPVS's FNAT keywords (with the value \\fBlb_kind FNAT\\fR), which keepalived rejects, and a few keywords keepalived reads without documenting them.",
		func(k config.Keyword) bool { return isExt(k) && k.Status == config.Supported })
	section("IGNORED", "Keywords vigil accepts so the file stays valid, with a warning that the feature is not implemented.",
		func(k config.Keyword) bool { return k.Status == config.Ignored })
	section("REJECTED", "Keywords (or values) that make the configuration invalid for vigil.",
		func(k config.Keyword) bool { return k.Status == config.Rejected })
	b.WriteString(".SH FILES\n.TP\n.I /etc/keepalived/keepalived.conf\nthe configuration, as for keepalived\n")
	b.WriteString(".TP\n.I /usr/share/doc/vigil/examples/keepalived.conf\na sample\n")
	b.WriteString(".SH SEE ALSO\n.BR vigil (8),\n.BR keepalived.conf (5)\n")
	_, err := io.WriteString(w, b.String())
	return err
}
