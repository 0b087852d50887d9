package doctor

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Active-active directors (BGP and ECMP, or VRRP pairs in DR) keep a flow
// on its real server across a change of director only if every director
// picks the same real server for the same packet: the same Maglev table.
// A director cannot see another's table through BGP (an eBGP router does
// not send a director's route back to the other directors of the same AS,
// and carries no table) nor through VRRP (an advert has no room for it),
// so doctor asks the other directors themselves, over the interface meant
// to be read across the network: their Prometheus endpoint (`vigil run
// --metrics`), whose vigil_virtual_server_table_info carries the digest of
// each virtual server's applied table (lb.Service.TableDigest), next to
// each real server's state and weight. `vigil doctor --peer ADDR:PORT`
// names them.

// PeerTables is what one other director's metrics say about its virtual
// servers.
type PeerTables struct {
	// Addr is the metrics endpoint asked (host:port).
	Addr string
	// Err says why it could not be read.
	Err string
	// Digests are the table digests by virtual server name.
	Digests map[string]string
	// Real are, by virtual server name, its real servers as "addr up
	// weight W" / "addr down".
	Real map[string][]string
}

// promLine and promLabel are compiled by the first `vigil doctor` that
// reads the tables, not at every start of the binary (issue #7).
var (
	promLine = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(vigil_virtual_server_table_info|vigil_real_server_up|vigil_real_server_weight)\{([^}]*)\} (\S+)`)
	})
	promLabel = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`) })
)

// ParsePeerMetrics reads a Prometheus text exposition from a vigil
// director.
func ParsePeerMetrics(addr string, r io.Reader) PeerTables {
	p := PeerTables{Addr: addr, Digests: map[string]string{}, Real: map[string][]string{}}
	up := map[string]map[string]bool{}
	weight := map[string]map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := promLine().FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		labels := map[string]string{}
		for _, l := range promLabel().FindAllStringSubmatch(m[2], -1) {
			labels[l[1]], _ = strconv.Unquote(`"` + l[2] + `"`)
		}
		vs, rs := labels["virtual_server"], labels["real_server"]
		switch m[1] {
		case "vigil_virtual_server_table_info":
			p.Digests[vs] = labels["digest"]
		case "vigil_real_server_up":
			if up[vs] == nil {
				up[vs] = map[string]bool{}
			}
			up[vs][rs] = m[3] == "1"
		case "vigil_real_server_weight":
			if weight[vs] == nil {
				weight[vs] = map[string]string{}
			}
			weight[vs][rs] = m[3]
		}
	}
	if err := sc.Err(); err != nil {
		p.Err = err.Error()
	}
	for vs, rss := range up {
		for rs, u := range rss {
			p.Real[vs] = append(p.Real[vs], realLine(rs, u, weight[vs][rs]))
		}
		slices.Sort(p.Real[vs])
	}
	if p.Err == "" && len(p.Digests) == 0 && len(p.Real) == 0 {
		p.Err = "its metrics have no virtual server (is it vigil, with virtual servers, and new enough to export vigil_virtual_server_table_info?)"
	}
	return p
}

func realLine(addr string, up bool, weight string) string {
	if !up {
		return addr + " down"
	}
	return addr + " up weight " + weight
}

// checkTables compares this director's virtual server tables with the
// peers' (VDA07), and says which peers could not be compared (VDA08).
func checkTables(in *Input) []Finding {
	if len(in.Peers) == 0 {
		return nil
	}
	var out []Finding
	mine := map[string]string{}
	myReal := map[string][]string{}
	if in.Status != nil {
		for _, s := range in.Status.Services {
			if s.TableDigest != "" {
				mine[s.Name] = s.TableDigest
			}
			for _, r := range s.RealServers {
				myReal[s.Name] = append(myReal[s.Name], realLine(r.Addr, r.Up, strconv.Itoa(r.Weight)))
			}
			slices.Sort(myReal[s.Name])
		}
	}
	if len(mine) == 0 {
		return []Finding{{Code: "VDA08", Severity: Warn,
			Summary:  "vigil doctor was given peers to compare tables with, but this director's status has no table digest (no daemon, no virtual server applied, or none with a real server up).",
			Evidence: []string{fmt.Sprintf("%d peer(s) given", len(in.Peers))},
			Fix:      "Run vigil doctor on a director that serves the virtual servers."}}
	}
	for _, p := range in.Peers {
		if p.Err != "" {
			out = append(out, Finding{Code: "VDA08", Severity: Warn, Instance: p.Addr,
				Summary:  fmt.Sprintf("The director at %s could not be compared: %s.", p.Addr, p.Err),
				Evidence: []string{"GET http://" + p.Addr + "/metrics"},
				Fix:      "Start vigil there with --metrics ADDR:PORT reachable from this host, and pass that address to --peer."})
			continue
		}
		var same, differ []string
		var ev []string
		for _, name := range slices.Sorted(maps.Keys(mine)) {
			theirs, ok := p.Digests[name]
			if !ok {
				continue
			}
			if theirs == mine[name] {
				same = append(same, name)
				continue
			}
			differ = append(differ, name)
			ev = append(ev, fmt.Sprintf("%s: table %s here, %s at %s", name, mine[name], orNone(theirs), p.Addr))
			here, there := myReal[name], p.Real[name]
			for _, l := range here {
				if !slices.Contains(there, l) {
					ev = append(ev, fmt.Sprintf("  here: %s", l))
				}
			}
			for _, l := range there {
				if !slices.Contains(here, l) {
					ev = append(ev, fmt.Sprintf("  %s: %s", p.Addr, l))
				}
			}
		}
		switch {
		case len(differ) > 0:
			out = append(out, Finding{Code: "VDA07", Severity: Crit, Instance: p.Addr,
				Summary: fmt.Sprintf("The director at %s picks real servers differently for %s: a flow the router moves between these directors lands on another real server and breaks.",
					p.Addr, strings.Join(differ, ", ")),
				Evidence: ev,
				Fix:      "Give every director the same real servers, weights, lb_algo and flags (mh-port) for these virtual servers; if they match, a real server is up on one director and down on the other: compare their health checks (a firewall or route that differs per director)."})
		case len(same) > 0:
			out = append(out, Finding{Code: "VDA07", Severity: Ok, Instance: p.Addr,
				Summary: fmt.Sprintf("The director at %s has the same tables for %s.", p.Addr, strings.Join(same, ", "))})
		default:
			out = append(out, Finding{Code: "VDA08", Severity: Warn, Instance: p.Addr,
				Summary: fmt.Sprintf("The director at %s serves none of this director's virtual servers with a table to compare.", p.Addr),
				Fix:     "Check that --peer names a director of the same virtual servers."})
		}
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none: no real server up)"
	}
	return s
}
