package netio

import (
	"bufio"
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"vigil/internal/inet"
	"vigil/vrrp/wire"
)

// TestTsharkDecodes: what vigil puts on the wire (VRRPv2, VRRPv3 over IPv4
// and IPv6, both forms of gratuitous ARP, an unsolicited NA) is captured on
// the peer and decoded by Wireshark's dissectors, an implementation
// independent of ours, as valid: the right version, VRID, priority,
// addresses, TTL and DSCP (CS6, as keepalived), and good VRRP and ICMPv6
// checksums.
func TestTsharkDecodes(t *testing.T) {
	t.Parallel()
	a, b := twoHosts(t, "niots", "tshark")
	ifA, llA := ifaceIn(t, a, "eth0")
	ifaceIn(t, b, "eth0")
	macA := ifA.HardwareAddr.String()

	c4 := listenIn(t, a, "eth0", inet.IPv4, Options{})
	c6 := listenIn(t, a, "eth0", inet.IPv6, Options{})
	an := openAnnouncerIn(t, a, "eth0", AnnouncerConfig{})
	anReply := openAnnouncerIn(t, a, "eth0", AnnouncerConfig{ARPReply: true, Router: true})

	src4 := netip.MustParseAddr("192.0.2.1")
	sends := []func() error{
		func() error {
			return c4.Send(advert(t, 2, 51, 150, netip.MustParseAddr("192.0.2.100"), src4, wire.GroupV4), src4, wire.GroupV4)
		},
		func() error {
			return c4.Send(advert(t, 3, 52, 200, netip.MustParseAddr("192.0.2.101"), src4, wire.GroupV4), src4, wire.GroupV4)
		},
		func() error {
			return c6.Send(advert(t, 3, 53, 100, netip.MustParseAddr("2001:db8::100"), llA, wire.GroupV6), llA, wire.GroupV6)
		},
		func() error { return an.Announce(netip.MustParseAddr("192.0.2.100")) },
		func() error { return anReply.Announce(netip.MustParseAddr("192.0.2.101")) },
		func() error { return an.Announce(netip.MustParseAddr("2001:db8::100")) },
		func() error { return anReply.Announce(netip.MustParseAddr("2001:db8::101")) },
	}

	pcap := filepath.Join(t.TempDir(), "vigil.pcap")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Only what the test sends: VRRP, ARP and Neighbor Advertisements (the
	// kernel's own MLD reports and solicitations are left out).
	filter := "ip proto 112 or ip6 proto 112 or arp or (icmp6 and ip6[40] == 136)"
	capture := b.Command(ctx, "tshark", "-n", "-i", "eth0", "-c", "7", "-w", pcap, "-f", filter)
	stderr, err := capture.StderrPipe()
	check(t, err)
	check(t, b.Start(capture))
	// Frames are sent once dumpcap says "Capture started": tshark prints
	// "Capturing on" itself before dumpcap, which it starts, has the
	// interface open, and under load (a CI run) frames sent at that line
	// were missed and the capture waited for its seven to its timeout.
	started := make(chan bool, 1)
	stderrDone := make(chan struct{})
	go func() { // owned here: it ends when tshark exits, before Wait
		defer close(stderrDone)
		sc := bufio.NewScanner(stderr)
		ok := false
		for sc.Scan() {
			t.Logf("tshark: %s", sc.Text())
			if !ok && strings.Contains(sc.Text(), "Capture started") {
				ok = true
				started <- true
			}
		}
		if !ok {
			started <- false
		}
	}()
	if !<-started {
		t.Fatal("tshark did not start capturing")
	}
	time.Sleep(200 * time.Millisecond)
	for i, send := range sends {
		if err := send(); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		time.Sleep(20 * time.Millisecond) // keep the capture order the send order
	}
	<-stderrDone // Wait closes the pipe: read it to the end first
	if err := capture.Wait(); err != nil {
		t.Fatalf("tshark capture: %v", err)
	}

	fields := []string{
		"eth.src", "ip.ttl", "ip.dsfield.dscp", "ipv6.hlim", "ipv6.tclass.dscp",
		"vrrp.version", "vrrp.virt_rtr_id", "vrrp.prio", "vrrp.checksum.status", "vrrp.ip_addr", "vrrp.ipv6_addr",
		"arp.opcode", "arp.src.proto_ipv4", "arp.dst.proto_ipv4", "arp.src.hw_mac", "arp.isgratuitous",
		"icmpv6.type", "icmpv6.checksum.status", "icmpv6.nd.na.flag.r", "icmpv6.nd.na.flag.s", "icmpv6.nd.na.flag.o",
		"icmpv6.nd.na.target_address", "icmpv6.opt.linkaddr",
	}
	args := []string{"-n", "-r", pcap, "-T", "fields", "-E", "separator=|"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, err := b.Run("tshark", args...)
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		vals := strings.Split(line, "|")
		if len(vals) != len(fields) {
			continue // a warning line
		}
		m := map[string]string{}
		for i, v := range vals {
			if v != "" {
				m[fields[i]] = v
			}
		}
		got = append(got, m)
	}
	// tshark prints booleans as True/False or 1/0 depending on its version.
	for _, m := range got {
		for k, v := range m {
			switch v {
			case "True":
				m[k] = "1"
			case "False":
				m[k] = "0"
			}
		}
	}
	// Checksum status 1 is "Good".
	want := []map[string]string{
		{"eth.src": macA, "ip.ttl": "255", "ip.dsfield.dscp": "48", "vrrp.version": "2", "vrrp.virt_rtr_id": "51", "vrrp.prio": "150", "vrrp.checksum.status": "1", "vrrp.ip_addr": "192.0.2.100"},
		{"eth.src": macA, "ip.ttl": "255", "ip.dsfield.dscp": "48", "vrrp.version": "3", "vrrp.virt_rtr_id": "52", "vrrp.prio": "200", "vrrp.checksum.status": "1", "vrrp.ip_addr": "192.0.2.101"},
		{"eth.src": macA, "ipv6.hlim": "255", "ipv6.tclass.dscp": "48", "vrrp.version": "3", "vrrp.virt_rtr_id": "53", "vrrp.prio": "100", "vrrp.checksum.status": "1", "vrrp.ipv6_addr": "2001:db8::100"},
		{"eth.src": macA, "arp.opcode": "1", "arp.src.proto_ipv4": "192.0.2.100", "arp.dst.proto_ipv4": "192.0.2.100", "arp.src.hw_mac": macA, "arp.isgratuitous": "1"},
		{"eth.src": macA, "arp.opcode": "2", "arp.src.proto_ipv4": "192.0.2.101", "arp.dst.proto_ipv4": "192.0.2.101", "arp.src.hw_mac": macA, "arp.isgratuitous": "1"},
		{"eth.src": macA, "ipv6.hlim": "255", "ipv6.tclass.dscp": "0", "icmpv6.type": "136", "icmpv6.checksum.status": "1", "icmpv6.nd.na.flag.r": "0", "icmpv6.nd.na.flag.s": "0", "icmpv6.nd.na.flag.o": "1", "icmpv6.nd.na.target_address": "2001:db8::100", "icmpv6.opt.linkaddr": macA},
		{"eth.src": macA, "ipv6.hlim": "255", "ipv6.tclass.dscp": "0", "icmpv6.type": "136", "icmpv6.checksum.status": "1", "icmpv6.nd.na.flag.r": "1", "icmpv6.nd.na.flag.s": "0", "icmpv6.nd.na.flag.o": "1", "icmpv6.nd.na.target_address": "2001:db8::101", "icmpv6.opt.linkaddr": macA},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tshark decodes (-want +got):\n%s\nraw:\n%s", diff, out)
	}
}
