package lb

import (
	"encoding/binary"
	"fmt"
	"hash/crc64"
	"hash/fnv"
	"slices"
	"sync"
)

// This file implements the lookup table of Maglev (Eisenbud et al., "Maglev:
// A Fast and Reliable Software Network Load Balancer", NSDI 2016, section
// 3.4), from the paper's description:
//
//   - each backend has a preference list, a permutation of the table's M
//     slots (M prime): offset = h1(key) mod M, skip = h2(key) mod (M−1) + 1,
//     and its j-th preference is (offset + j·skip) mod M;
//   - backends take turns; on its turn a backend claims its most preferred
//     slot still empty; this goes on until the table is full.
//
// Every slot is owned by exactly one backend, each backend owns about M/N
// slots, and when a backend leaves, the others mostly keep their slots
// because their preference lists do not change: only the departed
// backend's slots, and few others, move. Two directors with the same
// backends build the same table, so a failover between them keeps flows on
// their backends.
//
// Weights: the paper notes that weights can be had by changing how often
// each backend takes a turn. Here turns follow weighted fair queueing: a
// backend's k-th turn is due at virtual time k/weight, and the earliest due
// goes first (ties to the lower index). After T turns every backend has had
// within one turn of T·w/W, so its share of the table is proportional to
// its weight; with equal weights this is the paper's plain round robin.

// MaxMaglevSize bounds a configured table size.
const MaxMaglevSize = 1 << 20

// maglevLadder are the sizes MaglevSizeFor picks from: primes near powers
// of two, so that the size changes (and the table reshuffles) only when the
// number of configured servers crosses one of a few thresholds.
var maglevLadder = []int{16381, 32749, 65521}

// MaglevSizeFor is the default table size for n configured servers: the
// smallest ladder prime of at least 100·n (the paper keeps M > 100·N so
// that shares differ by at most about 1%), at least 16381 (with smaller
// tables a removal can move 5-15% of the other backends' entries when there
// are only a handful of backends; from 16381 it stays under 10%, 0.9% on
// average), at most 65521. It depends on the configuration only, never on
// health.
func MaglevSizeFor(n int) int {
	for _, p := range maglevLadder {
		if p >= 100*n {
			return p
		}
	}
	return maglevLadder[len(maglevLadder)-1]
}

// MaglevTable builds the lookup table of size m (a prime) for backends with
// positive weights: entry i is the index in backends of the backend that
// owns slot i. A backend's place in the table depends only on its
// address:port, its weight and the others', never on history.
func MaglevTable(backends []Backend, m int) ([]int, error) {
	switch {
	case m < 1 || m > MaxMaglevSize || !isPrime(m):
		return nil, fmt.Errorf("maglev: table size %d is not a prime up to %d", m, MaxMaglevSize)
	case len(backends) == 0:
		return nil, nil
	}
	for _, b := range backends {
		if b.Weight <= 0 {
			return nil, fmt.Errorf("maglev: backend %v has weight %d", b.AddrPort(), b.Weight)
		}
	}
	return maglevFill(backends, m), nil
}

// turn is one backend's place in the turn order: its next turn is due at
// (done+1)/weight; pos is the slot its permutation is at.
type turn struct {
	idx          int
	weight, done uint64
	pos, skip    uint64
}

// before orders turns: the earlier due time first, (a.done+1)/a.weight <
// (b.done+1)/b.weight in integers (both sides below 2^52: done < 2^20,
// weight < 2^31), ties to the lower index.
func (a *turn) before(b *turn) bool {
	l, r := (a.done+1)*b.weight, (b.done+1)*a.weight
	if l != r {
		return l < r
	}
	return a.idx < b.idx
}

func maglevFill(backends []Backend, m int) []int {
	mm := uint64(m)
	all := maglevTurns(backends, mm)
	// A binary min-heap of turns, hand-written: the fill pops and pushes
	// once per slot, and container/heap's interface calls were a third of
	// the time for 1,000 backends.
	h := make([]*turn, len(all))
	for i := range all {
		h[i] = &all[i]
	}
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= len(h) {
				return
			}
			c := l
			if r := l + 1; r < len(h) && h[r].before(h[l]) {
				c = r
			}
			if !h[c].before(h[i]) {
				return
			}
			h[i], h[c] = h[c], h[i]
			i = c
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(i)
	}
	table := make([]int, m)
	for i := range table {
		table[i] = -1
	}
	// With equal weights the turn order is plain round robin by index
	// (what the heap would yield, at a fraction of the cost).
	equal := !forceHeap
	for _, t := range all {
		equal = equal && t.weight == all[0].weight
	}
	for filled := 0; filled < m; filled++ {
		var t *turn
		if equal {
			t = &all[filled%len(all)]
		} else {
			t = h[0]
		}
		// Walk the preference list (offset + j·skip) mod M, one addition
		// per step, to the first empty slot.
		for table[t.pos] >= 0 {
			t.pos += t.skip
			if t.pos >= mm {
				t.pos -= mm
			}
		}
		table[t.pos] = t.idx
		if !equal {
			t.done++
			down(0)
		}
	}
	return table
}

// maglevTurns is each backend's permutation: its first slot and its skip.
func maglevTurns(backends []Backend, mm uint64) []turn {
	all := make([]turn, len(backends))
	var key [18]byte
	skips := make(map[uint64]bool, len(backends))
	for i, b := range backends {
		k := backendKey(&key, b)
		h1, h2 := maglevHashes(k)
		all[i] = turn{idx: i, weight: uint64(b.Weight), pos: h1 % mm}
		if mm > 1 {
			// Two backends with the same skip walk the same cycle of slots
			// and keep colliding: with such a pair, removing any third
			// backend was seen to move 24% of the others' entries. The
			// later one (in Backends order) rehashes until its skip is its
			// own; that makes its permutation depend on the other's
			// presence: adding or removing a backend that sorts before it
			// with the same skip moves most of its entries (about 1/N of
			// the table, once in several thousand changes at N = 7; the
			// disruption tests allow for it), a rarer and smaller cost.
			skip := h2%(mm-1) + 1
			for try := uint64(1); skips[skip] && try <= 64; try++ {
				skip = mix64(h2+try*0x9e3779b97f4a7c15)%(mm-1) + 1
			}
			skips[skip] = true
			all[i].skip = skip
		}
	}
	return all
}

// forceHeap makes maglevFill take the weighted path always (tests).
var forceHeap = false

// backendKey is the stable identity a backend's permutation derives from:
// its address (4 or 16 bytes) and port, big-endian.
func backendKey(buf *[18]byte, b Backend) []byte {
	k := b.Addr.AsSlice()
	n := copy(buf[:], k)
	binary.BigEndian.PutUint16(buf[n:], b.Port)
	return buf[:n+2]
}

// crcTable is made at the first Maglev table, not at start: making it
// builds hash/crc64's slicing tables, 33 KB of heap kept for the
// process's life, which every vigil process paid at start (issue #7:
// GODEBUG=inittrace=1, vigil/lb 33,560 bytes at init, 0 after).
var crcTable = sync.OnceValue(func() *crc64.Table { return crc64.MakeTable(crc64.ECMA) })

// maglevHashes are two independent hashes of a backend key: FNV-1a and
// CRC-64, different algorithms (and both fixed, unlike hash/maphash, so
// that every director and every Go version agree), each finished with a
// 64-bit avalanche so that neighbouring addresses land far apart.
func maglevHashes(k []byte) (uint64, uint64) {
	f := fnv.New64a()
	f.Write(k)
	return mix64(f.Sum64()), mix64(crc64.Checksum(k, crcTable()))
}

// mix64 is the splitmix64 finaliser.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// maglevCache keeps the last table of a service: Desired runs after every
// change, and most changes (another service's health, VRRP state) leave a
// service's backends as they were.
type maglevCache struct {
	size     int
	backends []Backend // only Addr, Port and Weight matter
	table    []int
}

func (c *maglevCache) get(bs []Backend, m int) []int {
	if c.table != nil && c.size == m && slices.EqualFunc(c.backends, bs, func(a, b Backend) bool {
		return a.Addr == b.Addr && a.Port == b.Port && a.Weight == b.Weight
	}) {
		return c.table
	}
	t := maglevFill(bs, m)
	c.size, c.backends, c.table = m, slices.Clone(bs), t
	return t
}

// TableDigest is a short fingerprint of how s picks the backend of a new
// flow: its selection, hash and persistence mask, its backends with their
// weights, and for a Maglev service the backend of every table slot. Two
// directors whose digests of a service are equal send every new flow of
// it to the same real server (given the same packet); active-active
// directors behind a router's ECMP rely on that (vigil doctor compares
// them, VDA07). MAC addresses are left out: each director learns them.
// The empty string is a service with no backend.
func (s *Service) TableDigest() string {
	if len(s.Backends) == 0 {
		return ""
	}
	h := fnv.New128a()
	var b []byte
	b = fmt.Appendf(b, "%d %d %d %d\n", s.Selection, s.Hash, s.PersistenceMask, len(s.Maglev))
	for _, be := range s.Backends {
		b = fmt.Appendf(b, "%s %d %t\n", be.AddrPort(), be.Weight, be.Sorry)
	}
	h.Write(b)
	// The slots as backend indices: Backends is sorted, so an index names
	// the same backend on every director whose list above is the same.
	buf := make([]byte, 0, 4096)
	for _, i := range s.Maglev {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(i))
		if len(buf) == cap(buf) {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
	return fmt.Sprintf("%x", h.Sum(nil)[:8])
}
