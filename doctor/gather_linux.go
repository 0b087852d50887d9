package doctor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"vigil/addr"
	"vigil/config"
	"vigil/control"
	"vigil/internal/hostenv"
	"vigil/internal/inet"
	"vigil/netio"
	"vigil/vrrp/wire"
)

// Options say where Gather looks.
type Options struct {
	// ConfigFile is the configuration to read. When empty, Gather reads
	// the file the running daemon says it loaded, else DefaultConfig if it
	// exists.
	ConfigFile    string
	DefaultConfig string
	ConfigID      string // -i, for @ID lines
	ControlPath   string // "" skips the daemon
	Sniff         time.Duration
	// Interfaces to capture on besides those of the instances.
	Interfaces []string
	// DRProbe sends probes through the DR path to every real server of
	// the DR services whose VIP this host holds (VD705, VD706).
	DRProbe bool
	// Peers are the metrics endpoints (host:port) of the other directors
	// of the same virtual servers, whose tables VDA07 compares.
	Peers []string
}

// Gather collects the Input on this host: the configuration, the daemon's
// status before and after a capture of Sniff on every VRRP interface, and
// live host facts. It never fails: what cannot be had is recorded and the
// checks do without.
func Gather(ctx context.Context, o Options) *Input {
	in := &Input{Captures: map[string]*Capture{}, Facts: NewHostFacts()}
	if o.ControlPath != "" {
		in.Before, in.StatusErr, in.StatusTimeout = askStatus(ctx, o.ControlPath)
	}
	file, optional := o.ConfigFile, false
	if file == "" && in.Before != nil {
		file = in.Before.ConfigFile
	}
	if file == "" {
		file, optional = o.DefaultConfig, true
	}
	if file != "" {
		if _, err := os.Stat(file); err != nil {
			if !optional {
				in.ConfigFile = file
				in.Diags = config.Diagnostics{{Severity: config.Fatal, Msg: err.Error()}}
			}
		} else {
			in.ConfigFile = file
			in.Config, in.Diags = config.Load(file, hostenv.New(o.ConfigID))
		}
	}
	// Capture on every interface an instance uses, for the families used.
	fams := map[string][]inet.Family{}
	add := func(iface string, f inet.Family) {
		if iface != "" && !slices.Contains(fams[iface], f) {
			fams[iface] = append(fams[iface], f)
		}
	}
	probe := &Input{Config: in.Config, Status: in.Before}
	for _, t := range probe.targets() {
		f := inet.IPv4
		if t.fam == 6 {
			f = inet.IPv6
		}
		add(t.iface, f)
	}
	for _, i := range o.Interfaces {
		add(i, inet.IPv4)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	if o.DRProbe && in.Config != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ps := probeDR(ctx, in.Config, in.Facts)
			mu.Lock()
			in.DRProbes = ps
			mu.Unlock()
		}()
	}
	for _, addr := range o.Peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := fetchPeer(ctx, addr)
			mu.Lock()
			in.Peers = append(in.Peers, p)
			mu.Unlock()
		}()
	}
	for iface, fs := range fams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := capture(ctx, iface, fs, o.Sniff)
			mu.Lock()
			in.Captures[iface] = c
			mu.Unlock()
		}()
	}
	wg.Wait()
	if in.Before != nil {
		s, errText, timeout := askStatus(ctx, o.ControlPath)
		if s != nil {
			in.Status = s
		} else {
			// The daemon went away or stalled during the capture: keep the
			// first snapshot as the status, without deltas.
			in.Status, in.Before = in.Before, nil
			in.StatusErr, in.StatusTimeout = errText, timeout
		}
	}
	slices.SortFunc(in.Peers, func(a, b PeerTables) int { return strings.Compare(a.Addr, b.Addr) })
	in.Now = time.Now()
	return in
}

// fetchPeer reads another director's metrics (tables.go).
func fetchPeer(ctx context.Context, addr string) PeerTables {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	fail := func(err error) PeerTables { return PeerTables{Addr: addr, Err: err.Error()} }
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return fail(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail(fmt.Errorf("GET /metrics: %s", resp.Status))
	}
	return ParsePeerMetrics(addr, resp.Body)
}

func askStatus(ctx context.Context, path string) (*control.Status, string, bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r, err := control.Call(ctx, path, control.Request{Cmd: "status"})
	if err != nil {
		var ne net.Error
		timeout := errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
		return nil, err.Error(), timeout
	}
	if r.Status == nil {
		return nil, "the daemon sent no status", false
	}
	return r.Status, "", false
}

// capture runs a wire sniffer and a VRRP socket listener side by side on
// iface for d.
func capture(ctx context.Context, iface string, fams []inet.Family, d time.Duration) *Capture {
	c := &Capture{Interface: iface, Duration: d}
	sn, err := netio.OpenSniffer(iface)
	if err != nil {
		c.Err = err.Error()
		return c
	}
	defer sn.Close()
	var conns []*netio.Conn
	for _, f := range fams {
		conn, err := netio.Listen(iface, f, netio.Options{Multicast: true, ReadBuffer: 1 << 20})
		if err != nil {
			c.DeliveredErr = err.Error()
			continue
		}
		conns = append(conns, conn)
	}
	cctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	delivered := map[advertKey]*Heard{}
	for _, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<16)
			for {
				p, err := conn.ReadPacket(buf)
				if err != nil {
					return
				}
				h := Heard{Src: p.Src}
				if len(p.Data) >= 8 {
					h.Version, h.VRID, h.Priority, h.NAddrs = p.Data[0]>>4, p.Data[1], p.Data[2], int(p.Data[3])
				}
				if a, err := wire.Parse(p.Data, conn.Family()); err == nil {
					h.Addrs, h.AuthType, h.AuthData, h.Interval, h.Decoded = a.Addrs, a.AuthType, a.AuthData, a.Interval, true
				}
				k := advertKey{h.Version, h.VRID, h.Src}
				mu.Lock()
				if old := delivered[k]; old != nil {
					h.Adverts = old.Adverts
				}
				h.Adverts++
				delivered[k] = &h
				mu.Unlock()
			}
		}()
	}
	stop := context.AfterFunc(cctx, func() {
		for _, conn := range conns {
			_ = conn.Close()
		}
	})
	defer stop()
	if err := sn.Run(cctx); err != nil {
		c.Err = err.Error()
	}
	for _, conn := range conns {
		_ = conn.Close()
	}
	wg.Wait()
	for k, s := range sn.Seen() {
		c.Wire = append(c.Wire, Heard{Version: k.Version, VRID: k.VRID, Src: k.Src, Adverts: s.Adverts,
			Priority: s.Priority, Interval: s.Interval, NAddrs: s.Addrs, MAC: s.MAC})
	}
	for _, h := range delivered {
		c.Delivered = append(c.Delivered, *h)
	}
	sortHeard(c.Wire)
	sortHeard(c.Delivered)
	return c
}

// advertKey keys delivered adverts as netio.RouterKey keys sightings.
type advertKey struct {
	Version, VRID uint8
	Src           netip.Addr
}

func sortHeard(hs []Heard) {
	slices.SortFunc(hs, func(a, b Heard) int {
		if a.VRID != b.VRID {
			return int(a.VRID) - int(b.VRID)
		}
		return a.Src.Compare(b.Src)
	})
}

// HostFacts answers Facts from the live host (the network namespace of the
// calling process), caching every answer.
type HostFacts struct {
	mu      sync.Mutex
	fw      *Firewall
	fwErr   error
	holders map[string][]string
	// ProbeWait is how long Holders waits for ARP replies.
	ProbeWait time.Duration
}

// NewHostFacts returns Facts for this host.
func NewHostFacts() *HostFacts {
	return &HostFacts{holders: map[string][]string{}, ProbeWait: 400 * time.Millisecond}
}

// Firewall runs nft and iptables-save, whichever are installed.
func (h *HostFacts) Firewall() (Firewall, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fw != nil || h.fwErr != nil {
		return *h.fw, h.fwErr
	}
	var fw Firewall
	var errs []error
	run := func(name string, args ...string) []byte {
		if _, err := exec.LookPath(name); err != nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes())))
			return nil
		}
		return out
	}
	fw.NftJSON = run("nft", "-j", "list", "ruleset")
	if len(fw.NftJSON) > 0 {
		fw.NftText = run("nft", "-a", "list", "ruleset")
	}
	fw.IptablesSave = run("iptables-save")
	fw.Ip6tablesSave = run("ip6tables-save")
	h.fw, h.fwErr = &fw, errors.Join(errs...)
	if h.fwErr != nil && (len(fw.NftJSON) > 0 || len(fw.IptablesSave) > 0) {
		// Partial dumps are still worth checking.
		h.fwErr = nil
	}
	return fw, h.fwErr
}

// Proc reads a file under /proc.
func (h *HostFacts) Proc(path string) (string, error) {
	b, err := os.ReadFile("/proc/" + path)
	return strings.TrimSpace(string(b)), err
}

// Addrs lists interface addresses.
func (h *HostFacts) Addrs(ifname string) ([]netip.Prefix, error) {
	return addr.InterfaceAddrs(ifname)
}

// Holders sends ARP probes (RFC 5227: sender address 0.0.0.0, so no
// neighbour cache changes) for vip on ifname and returns the MACs of other
// hosts that answer.
func (h *HostFacts) Holders(ifname string, vip netip.Addr) ([]string, error) {
	key := ifname + " " + vip.String()
	h.mu.Lock()
	if r, ok := h.holders[key]; ok {
		h.mu.Unlock()
		return r, nil
	}
	h.mu.Unlock()
	if !vip.Is4() {
		return nil, nil
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("ARP probe on %s: no Ethernet address", ifname)
	}
	conn, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, nil)
	if err != nil {
		return nil, fmt.Errorf("ARP probe on %s: %w", ifname, err)
	}
	defer conn.Close()
	own := map[string]bool{}
	if ifs, err := net.Interfaces(); err == nil {
		for _, i := range ifs {
			own[i.HardwareAddr.String()] = true
		}
	}
	req := netio.ARP{
		EthDst: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, EthSrc: ifi.HardwareAddr,
		Op: 1, SenderMAC: ifi.HardwareAddr, SenderIP: netip.IPv4Unspecified(),
		TargetMAC: make(net.HardwareAddr, 6), TargetIP: vip,
	}
	frame, err := req.MarshalBinary()
	if err != nil {
		return nil, err
	}
	bcast := &packet.Addr{HardwareAddr: req.EthDst}
	deadline := time.Now().Add(h.ProbeWait)
	_ = conn.SetReadDeadline(deadline)
	found := map[string]bool{}
	for i := 0; i < 2; i++ {
		if _, err := conn.WriteTo(frame, bcast); err != nil {
			return nil, fmt.Errorf("ARP probe on %s: %w", ifname, err)
		}
	}
	buf := make([]byte, 1500)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			break
		}
		a, err := netio.ParseARP(buf[:n])
		if err != nil || a.Op != 2 || a.SenderIP != vip {
			continue
		}
		if m := a.SenderMAC.String(); !own[m] {
			found[m] = true
		}
	}
	var out []string
	for m := range found {
		out = append(out, m)
	}
	slices.Sort(out)
	h.mu.Lock()
	h.holders[key] = out
	h.mu.Unlock()
	return out, nil
}
