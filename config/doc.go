// Package config reads keepalived.conf files as they are, with the grammar
// and keywords of keepalived 2.2.7 described in keepalived.conf(5), and turns
// them into a typed Config with diagnostics that say where a problem is and
// what was expected.
//
// Reading happens in two halves.
//
// The first half, ParseTree, is keepalived's lexer and preprocessor. It
// reads the main file and its includes through an Env and returns the block
// tree of keyword lines (Node, Word):
//   - a line is split at every '{' and '}' outside double quotes, and a
//     keyword followed by '{' (on the same or a later line) owns the lines up
//     to the matching '}'; ';' is an ordinary character;
//   - comments start at '#' or '!' outside double quotes; a double quote
//     starts a new word that runs to the next double quote;
//   - include, includer, includem, includew, includeb and includea splice
//     files in place (brace expansion and globs, relative to the including
//     file), with the checks of include_check in global_defs;
//   - "@ID line" and "@^ID line" keep a line for one config id or all others;
//   - "$NAME=value" defines a parameter (multi-line with a trailing '\'),
//     substituted recursively where $NAME or ${NAME} is used, with the
//     predefined ${_PWD}, ${_INSTANCE}, ${_RANDOM}, ${_HASH} and ${_BANG};
//   - "~SEQ(var, start, step, end)", "~SEQx(...)" and "~LST(var, a, b, ...)"
//     repeat a line.
//
// Where keepalived hangs or exhausts memory (a parameter defined in terms of
// itself, an include cycle, a huge ~SEQ) ParseTree reports an error instead:
// all its work is bounded. SplitCommand and ScriptFields split the raw text
// of script keywords (script, notify*, misc_path, ...) into a program and its
// arguments the way keepalived does.
//
// The second half checks the tree against the keyword tables (global_defs,
// vrrp_*, virtual_server and the checkers), parses values (booleans,
// durations, addresses, ranges), applies keepalived's defaults and validates
// the result as a whole (references between sections, duplicate VRIDs,
// conflicting options), producing the typed model the daemon runs. Load and
// LoadBytes run both halves; Build runs the second on a tree.
//
// The package is pure: it touches no file, socket or clock itself, so that a
// configuration can be checked for another host and every rule can be tested
// with in-memory files. Severities follow `keepalived -t`: a configuration
// fails when any diagnostic is an Error or worse.
package config
