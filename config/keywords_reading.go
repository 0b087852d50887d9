package config

import (
	"fmt"
	"strings"
)

// readingDocs is the part of docs/configuration.md about how a file is
// read: the lexical points where vigil follows keepalived 2.2.7 as
// observed, and the limits that keep hostile input from hanging vigil
// check, vigil run or a reload (they share config.Load). The numbers come
// from the code, so the page cannot drift from it.
func readingDocs() string {
	l := defaultLimits
	var s strings.Builder
	s.WriteString("\n## Reading the file\n\n")
	s.WriteString("Points where keepalived 2.2.7's behaviour is not in its manual; vigil does the same:\n\n")
	s.WriteString("- An included file that is not a regular file without execute bits (a directory, a FIFO, `/dev/null` or another\n")
	s.WriteString("  device, a socket, an executable file) is skipped with a warning; with `includer`, the stricter variants or\n")
	s.WriteString("  `include_check` it is an error. vigil decides from `stat` and never opens such a file, so a FIFO cannot block it.\n")
	s.WriteString("  An executable main file is read, with a warning (keepalived runs with an empty configuration instead).\n")
	s.WriteString("- Outside `global_defs`, an unquoted `\\#` or `\\!` starts a comment (keepalived's VRRP and checker processes\n")
	s.WriteString("  read a copy of the file in which its main process has already turned `\\#` into `#`): `auth_pass ab\\#cd` is\n")
	s.WriteString("  the password `ab`, with a warning. Inside `global_defs` it is the character. In double quotes `\\#` is `#`.\n")
	s.WriteString("- A backslash escapes the next character when quotes are checked (not when words are split): `\"x\\\" y` leaves\n")
	s.WriteString("  a quote open, an error, though its words are `x\\` and `y`.\n")
	s.WriteString("- A whole-line comment ends a multi-line `$NAME=` definition. keepalived's main process instead skips the\n")
	s.WriteString("  comment and reads on, so unless a blank line follows the comment the two processes read the file\n")
	s.WriteString("  differently: an error.\n")
	s.WriteString("- A line is read in pieces of at most 1023 bytes, as keepalived does; each piece keeps its real column.\n")
	s.WriteString("- A NUL byte ends the line, as it ends keepalived's (a C string), with a warning naming the byte and its place.\n\n")
	s.WriteString("Limits (a configuration past one gets a diagnostic, never a hang; identical diagnostics are printed once\n")
	s.WriteString("with a count):\n\n")
	fmt.Fprintf(&s, "| limit | value |\n|---|---|\n")
	row := func(what string, v any) { fmt.Fprintf(&s, "| %s | %v |\n", what, v) }
	row("bytes read of one file (main or included; `config.MaxFileSize`)", fmt.Sprintf("%d MiB", MaxFileSize>>20))
	row("files open at once through includes", l.includeDepth)
	row("files read in one load", l.includeFiles)
	row("names of one include brace expansion", l.braceAlts)
	row("bytes of one line after substitution", fmt.Sprintf("%d MiB", l.expandLen>>20))
	row("parameter replacements in one line", l.substitutions)
	row("bytes copied by the replacements of one line", fmt.Sprintf("%d MiB", l.substCost>>20))
	row("nesting of parameters and ~SEQ/~LST (the first branch of a line to reach it stops the whole line)", l.nesting)
	row("lines one ~SEQ/~LST line may produce", l.genLines)
	row("nested blocks", l.blockDepth)
	row("lines processed in one load, expansions included", l.pieces)
	row("keyword lines in one load", l.nodes)
	row("bytes processed in one load, expansions included", fmt.Sprintf("%d MiB", l.bytes>>20))
	s.WriteString("\nA 73-byte parameter defined in terms of itself is stopped in well under a second and 50 MB\n")
	s.WriteString("(`go test ./config -run xxx -bench BenchmarkHostileExpansion`). `vigil check` stops on SIGINT and SIGTERM.\n")
	return s.String()
}
