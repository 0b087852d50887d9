package config

// Keyword is one row of a keyword table, for generators outside this
// package (the vigil.conf(5) man page).
type Keyword struct {
	Block  string // "vrrp_instance NAME", "top level", ...
	Name   string
	Status Status
	Doc    string
}

// Keywords lists every keyword of every block, in documentation order.
func Keywords() []Keyword {
	var out []Keyword
	for _, t := range orderedTables() {
		for _, e := range t.Entries() {
			out = append(out, Keyword{Block: t.Block(), Name: e.Name, Status: e.Status, Doc: e.Doc})
		}
	}
	return out
}
