package dnszone

import (
	"iter"
	"maps"
	"slices"
	"sort"
	"strings"
)

// A snapshot's names and NSEC3 chain are kept in pieces (shards of the
// name map, chunks of the sorted chain) so that a patch copies only the
// pieces it changes and shares the rest with the previous snapshot, which
// queries may still be reading: work in proportion to the change rather
// than to the zone.

const (
	nodeShards = 256 // name map shards
	chainChunk = 128 // links per chain chunk after a split (at most twice that)
)

// nameMap maps owner names to nodes.
type nameMap struct {
	shards [nodeShards]map[string]*node
	n      int
}

// shardOf is FNV-1a of the name (RFC-less, just a spread).
func shardOf(name string) int {
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h ^= uint32(name[i])
		h *= 16777619
	}
	return int(h % nodeShards)
}

func (m *nameMap) get(name string) *node { return m.shards[shardOf(name)][name] }

func (m *nameMap) len() int { return m.n }

// all yields every name and node, in no particular order.
func (m *nameMap) all() iter.Seq2[string, *node] {
	return func(yield func(string, *node) bool) {
		for _, s := range m.shards {
			for name, n := range s {
				if !yield(name, n) {
					return
				}
			}
		}
	}
}

// set adds or replaces a name in a map being built.
func (m *nameMap) set(name string, n *node) {
	i := shardOf(name)
	if m.shards[i] == nil {
		m.shards[i] = map[string]*node{}
	}
	if _, ok := m.shards[i][name]; !ok {
		m.n++
	}
	m.shards[i][name] = n
}

// nameEdit changes a copy of a name map, cloning a shard the first time it
// is written.
type nameEdit struct {
	m     *nameMap
	owned [nodeShards]bool
}

func editNames(old *nameMap) *nameEdit {
	m := *old
	return &nameEdit{m: &m}
}

func (e *nameEdit) get(name string) *node { return e.m.get(name) }

func (e *nameEdit) own(i int) map[string]*node {
	if !e.owned[i] {
		e.m.shards[i] = maps.Clone(e.m.shards[i])
		if e.m.shards[i] == nil {
			e.m.shards[i] = map[string]*node{}
		}
		e.owned[i] = true
	}
	return e.m.shards[i]
}

func (e *nameEdit) set(name string, n *node) {
	s := e.own(shardOf(name))
	if _, ok := s[name]; !ok {
		e.m.n++
	}
	s[name] = n
}

func (e *nameEdit) del(name string) {
	i := shardOf(name)
	if _, ok := e.m.shards[i][name]; !ok {
		return
	}
	delete(e.own(i), name)
	e.m.n--
}

// chain is the NSEC3 chain in hash order, in chunks.
type chain struct {
	chunks [][]link // each non-empty and sorted; all in order
	n      int
}

// pos is a place in the chain; c == len(chunks) is the end.
type pos struct{ c, j int }

func newChain(links []link) *chain {
	ch := &chain{n: len(links)}
	for len(links) > 0 {
		k := min(chainChunk, len(links))
		ch.chunks = append(ch.chunks, links[:k:k])
		links = links[k:]
	}
	return ch
}

func (ch *chain) len() int { return ch.n }

// search is the place of the first link whose hash is not below hash.
func (ch *chain) search(hash string) pos {
	c := sort.Search(len(ch.chunks), func(c int) bool {
		k := ch.chunks[c]
		return k[len(k)-1].hash >= hash
	})
	if c == len(ch.chunks) {
		return pos{c, 0}
	}
	k := ch.chunks[c]
	return pos{c, sort.Search(len(k), func(j int) bool { return k[j].hash >= hash })}
}

// find returns the link with hash, or nil.
func (ch *chain) find(hash string) *link {
	p := ch.search(hash)
	if p.c < len(ch.chunks) && ch.chunks[p.c][p.j].hash == hash {
		return &ch.chunks[p.c][p.j]
	}
	return nil
}

func (ch *chain) at(p pos) *link { return &ch.chunks[p.c][p.j] }

// next and prev move along the chain, wrapping around (RFC 5155 §3: the
// last owner points to the first).
func (ch *chain) next(p pos) pos {
	if p.j+1 < len(ch.chunks[p.c]) {
		return pos{p.c, p.j + 1}
	}
	if p.c+1 < len(ch.chunks) {
		return pos{p.c + 1, 0}
	}
	return pos{0, 0}
}

func (ch *chain) prev(p pos) pos {
	if p.c < len(ch.chunks) && p.j > 0 {
		return pos{p.c, p.j - 1}
	}
	if p.c > 0 {
		return pos{p.c - 1, len(ch.chunks[p.c-1]) - 1}
	}
	last := len(ch.chunks) - 1
	return pos{last, len(ch.chunks[last]) - 1}
}

// all yields the links in hash order.
func (ch *chain) all() iter.Seq[*link] {
	return func(yield func(*link) bool) {
		for _, k := range ch.chunks {
			for j := range k {
				if !yield(&k[j]) {
					return
				}
			}
		}
	}
}

// splice returns a chain with the links added put in and the hashes
// removed taken out. Chunks without an edit are shared with ch; the
// others are made anew (and split when they grow past twice chainChunk).
// owned marks the chunks of the result that ch does not share.
func (ch *chain) splice(added []link, removed map[string]bool) (out *chain, owned map[int]bool) {
	edits := map[int][]link{} // chunk → links to add
	dels := map[int]bool{}    // chunks with a removal
	for _, l := range added {
		c := ch.search(l.hash).c
		if c == len(ch.chunks) {
			c-- // past the last hash: the last chunk
		}
		edits[c] = append(edits[c], l)
	}
	for h := range removed {
		if p := ch.search(h); p.c < len(ch.chunks) && ch.chunks[p.c][p.j].hash == h {
			dels[p.c] = true
		}
	}
	out, owned = &chain{chunks: make([][]link, 0, len(ch.chunks)+len(added)/chainChunk+1)}, map[int]bool{}
	for c, k := range ch.chunks {
		add := edits[c]
		if len(add) == 0 && !dels[c] {
			out.chunks = append(out.chunks, k)
			out.n += len(k)
			continue
		}
		merged := make([]link, 0, len(k)+len(add))
		for _, l := range k {
			if !removed[l.hash] {
				merged = append(merged, l)
			}
		}
		merged = append(merged, add...)
		slices.SortFunc(merged, func(a, b link) int { return strings.Compare(a.hash, b.hash) })
		for len(merged) > 0 {
			n := len(merged)
			if n > 2*chainChunk {
				n = chainChunk
			}
			owned[len(out.chunks)] = true
			out.chunks = append(out.chunks, merged[:n:n])
			out.n += n
			merged = merged[n:]
		}
	}
	return out, owned
}
