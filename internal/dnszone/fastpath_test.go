package dnszone

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestFastPath: a reply served from the packed cache is the reply Reply
// builds, with the asker's ID, RD and CD bits and name case.
func TestFastPath(t *testing.T) {
	now := time.Now()
	z := testZone(t, &now)
	if err := z.SetEntries([]Entry{{E164: "+421900111222", AOR: "alice@a.example"}}); err != nil {
		t.Fatal(err)
	}
	alice := "2.2.2.1.1.1.0.0.9.1.2.4.e164." + origin
	for _, q := range []*dns.Msg{
		query(alice, dns.TypeNAPTR, true),
		query(alice, dns.TypeNAPTR, false),
		query("nope."+origin, dns.TypeNAPTR, true),
		query(alice, dns.TypeTXT, true),
		query("example.org.", dns.TypeA, true),
	} {
		for i, mutate := range []func(m *dns.Msg){
			func(m *dns.Msg) {},
			func(m *dns.Msg) { m.Id = 4242; m.Question[0].Name = strings.ToUpper(m.Question[0].Name) },
			func(m *dns.Msg) { m.Id = 7; m.RecursionDesired = false; m.CheckingDisabled = true },
		} {
			mutate(q)
			b, err := q.Pack()
			if err != nil {
				t.Fatal(err)
			}
			got := new(dns.Msg)
			if err := got.Unpack(z.answerUDP(b, nil, make([]byte, 0, 256))); err != nil {
				t.Fatal(err)
			}
			want := z.Reply(q, true)
			if got.String() != want.String() {
				t.Fatalf("%s round %d:\ncached %v\nwant %v", q.Question[0].Name, i, got, want)
			}
		}
	}
	if n := z.view.Load().cache.n.Load(); n != 5 {
		t.Fatalf("%d cached replies, want 5", n)
	}
	// A response is never answered; a malformed query gets FORMERR.
	resp := query(alice, dns.TypeNAPTR, true)
	resp.Response = true
	b, _ := resp.Pack()
	if r := z.answerUDP(b, nil, make([]byte, 0, 256)); r != nil {
		t.Fatal("answered a response")
	}
	b, _ = query(alice, dns.TypeNAPTR, true).Pack()
	r := new(dns.Msg)
	if err := r.Unpack(z.answerUDP(b[:20], nil, make([]byte, 0, 256))); err != nil || r.Rcode != dns.RcodeFormatError {
		t.Fatalf("truncated query: %v %v", r, err)
	}
}

func FuzzAnswerUDP(f *testing.F) {
	now := t0
	z := testZone(f, &now)
	z.SetEntries([]Entry{{E164: "+421900111222", AOR: "alice@a.example"}})
	for _, q := range []*dns.Msg{query("2.2.2.1.1.1.0.0.9.1.2.4.e164."+origin, dns.TypeNAPTR, true), query("X."+origin, dns.TypeA, false)} {
		b, _ := q.Pack()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for range 2 { // a miss, then perhaps a hit
			r := z.answerUDP(b, nil, make([]byte, 0, 256))
			if r == nil {
				continue
			}
			if len(r) > maxUDPSize {
				t.Fatalf("UDP reply of %d octets", len(r))
			}
			m := new(dns.Msg)
			if err := m.Unpack(r); err != nil && len(r) > 12 {
				t.Fatalf("reply does not parse: %v", err)
			}
		}
	})
}

// BenchmarkAnswerUDP is the per-query work of the UDP path for a signed
// NAPTR answer with DO, from the packed replies (sockets excluded).
func BenchmarkAnswerUDP(b *testing.B) {
	now := time.Now()
	z := testZone(b, &now)
	var entries []Entry
	var queries [][]byte
	for i := range 10000 {
		e := Entry{E164: "+4219" + strings.Repeat("0", 8-len(itoa(i))) + itoa(i), AOR: "u" + itoa(i) + "@a.example"}
		entries = append(entries, e)
		name := ""
		d := e.E164[1:]
		for j := len(d) - 1; j >= 0; j-- {
			name += d[j:j+1] + "."
		}
		q, _ := query(name+"e164."+origin, dns.TypeNAPTR, true).Pack()
		queries = append(queries, q)
	}
	if err := z.SetEntries(entries); err != nil {
		b.Fatal(err)
	}
	out := make([]byte, 0, maxUDPSize)
	name := make([]byte, 0, 256)
	for _, q := range queries {
		z.answerUDP(q, out[:0], name)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if r := z.answerUDP(queries[i%len(queries)], out[:0], name); len(r) < 100 {
			b.Fatal("short reply")
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
