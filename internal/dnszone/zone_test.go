package dnszone

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/phonex/phonex/internal/dnsname"
	"github.com/phonex/phonex/internal/udptcp"
)

const origin = "a.example."

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func testCert(t testing.TB, cn string) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: t0, NotAfter: t0.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func testZone(t testing.TB, now *time.Time) *Zone {
	t.Helper()
	ksk, err := GenerateKey(origin, ECDSAP256, true)
	if err != nil {
		t.Fatal(err)
	}
	zsk, err := GenerateKey(origin, ECDSAP256, false)
	if err != nil {
		t.Fatal(err)
	}
	z, err := New(Config{Origin: origin, KSK: ksk, ZSK: zsk, Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func query(name string, qtype uint16, do bool) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = true
	if do {
		q.SetEdns0(1232, true)
	}
	return q
}

func count(rrs []dns.RR, t uint16) int {
	n := 0
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			n++
		}
	}
	return n
}

func TestReply(t *testing.T) {
	now := t0
	z := testZone(t, &now)
	if err := z.SetEntries([]Entry{{E164: "+421900111222", AOR: "alice@a.example", Keys: []DeviceKey{{Device: "p", Cert: testCert(t, "alice")}}}}); err != nil {
		t.Fatal(err)
	}
	alice := "2.2.2.1.1.1.0.0.9.1.2.4.e164." + origin
	notify := query(origin, dns.TypeSOA, false)
	notify.Opcode = dns.OpcodeNotify
	badvers := query(origin, dns.TypeSOA, true)
	badvers.IsEdns0().SetVersion(1)
	for _, tc := range []struct {
		name                    string
		q                       *dns.Msg
		rcode                   int
		answers, sigs, ns, nsec int
	}{
		{"naptr with DO", query(alice, dns.TypeNAPTR, true), dns.RcodeSuccess, 2, 1, 0, 0},
		{"naptr without DO", query(alice, dns.TypeNAPTR, false), dns.RcodeSuccess, 1, 0, 0, 0},
		{"mixed case", query(strings.ToUpper(alice), dns.TypeNAPTR, true), dns.RcodeSuccess, 2, 1, 0, 0},
		{"dnskey", query(origin, dns.TypeDNSKEY, true), dns.RcodeSuccess, 3, 1, 0, 0},
		{"nodata", query(alice, dns.TypeTXT, true), dns.RcodeSuccess, 0, 0, 4, 1},
		{"nodata without DO", query(alice, dns.TypeTXT, false), dns.RcodeSuccess, 0, 0, 1, 0},
		{"nxdomain", query("nope."+origin, dns.TypeA, true), dns.RcodeNameError, 0, 0, 0, -1},
		{"outside the zone", query("example.org.", dns.TypeA, true), dns.RcodeRefused, 0, 0, 0, 0},
		{"parent of the zone", query("example.", dns.TypeNS, true), dns.RcodeRefused, 0, 0, 0, 0},
		{"zone transfer", query(origin, dns.TypeAXFR, false), dns.RcodeRefused, 0, 0, 0, 0},
		{"not a query", notify, dns.RcodeNotImplemented, 0, 0, 0, 0},
		{"EDNS version 1", badvers, dns.RcodeBadVers, 0, 0, 0, 0},
		{"any", query(alice, dns.TypeANY, false), dns.RcodeSuccess, 1, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := z.Reply(tc.q, true)
			if m.Rcode != tc.rcode || m.RecursionAvailable || m.Id != tc.q.Id {
				t.Fatalf("rcode %s RA %v", dns.RcodeToString[m.Rcode], m.RecursionAvailable)
			}
			if tc.rcode == dns.RcodeSuccess && !m.Authoritative {
				t.Fatal("AA not set")
			}
			if len(m.Answer) != tc.answers || count(m.Answer, dns.TypeRRSIG) != tc.sigs || (tc.ns > 0 && len(m.Ns) != tc.ns) {
				t.Fatalf("answer %v\nauthority %v", m.Answer, m.Ns)
			}
			if tc.nsec > 0 && count(m.Ns, dns.TypeNSEC3) != tc.nsec {
				t.Fatalf("authority %v", m.Ns)
			}
			if tc.nsec < 0 && (count(m.Ns, dns.TypeNSEC3) < 2 || count(m.Ns, dns.TypeSOA) != 1) {
				t.Fatalf("nxdomain proof: %v", m.Ns)
			}
			if tc.q.IsEdns0() != nil && m.IsEdns0() == nil {
				t.Fatal("no OPT in the reply to an EDNS query")
			}
		})
	}
}

// TestResignOnlyChanged: adding one number signs its NAPTR, the SOA and the
// NSEC3 records the new names touch, not the whole zone.
func TestResignOnlyChanged(t *testing.T) {
	now := t0
	z := testZone(t, &now)
	var entries []Entry
	for i := range 1000 {
		entries = append(entries, Entry{E164: fmt.Sprintf("+42190%07d", i*7919%10000000), AOR: fmt.Sprintf("u%d@a.example", i)})
	}
	if err := z.SetEntries(entries); err != nil {
		t.Fatal(err)
	}
	full := z.Signatures()
	now = now.Add(time.Minute)
	if err := z.SetEntries(append(entries, Entry{E164: "+44123456789", AOR: "new@a.example"})); err != nil {
		t.Fatal(err)
	}
	delta := z.Signatures() - full
	// NAPTR + SOA + NSEC3 of the new name and its new ancestors (up to 10)
	// + the NSEC3 records now pointing at them (as many again).
	if delta < 3 || delta > 25 {
		t.Fatalf("one new number made %d signatures (the zone has %d)", delta, full)
	}
	// Nothing changed: only the SOA (new serial) is signed.
	before := z.Signatures()
	if err := z.Maintain(); err != nil {
		t.Fatal(err)
	}
	if d := z.Signatures() - before; d != 1 {
		t.Fatalf("maintenance without change made %d signatures, want 1 (SOA)", d)
	}
	// Past the re-signing margin every RRset is signed again.
	now = now.Add(DefaultValidity - DefaultResign + time.Hour)
	before = z.Signatures()
	if err := z.Maintain(); err != nil {
		t.Fatal(err)
	}
	if d := z.Signatures() - before; d < full {
		t.Fatalf("re-signing after %v made %d signatures, want all %d", now.Sub(t0), d, full)
	}
}

func TestEntryErrors(t *testing.T) {
	now := t0
	z := testZone(t, &now)
	for _, tc := range []struct {
		name string
		e    []Entry
	}{
		{"bad number", []Entry{{E164: "0900", AOR: "a@a.example"}}},
		{"bad address", []Entry{{E164: "+421900", AOR: "a"}}},
		{"keys outside the zone", []Entry{{AOR: "a@b.example", Keys: []DeviceKey{{Cert: testCert(t, "a")}}}}},
		{"bad certificate", []Entry{{AOR: "a@a.example", Keys: []DeviceKey{{Cert: []byte("junk")}}}}},
		{"number taken twice", []Entry{{E164: "+421900", AOR: "a@a.example"}, {E164: "+421900", AOR: "b@a.example"}}},
	} {
		if err := z.SetEntries(tc.e); !errors.Is(err, ErrEntry) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if err := z.SetEndpoints(Endpoints{SIP: []string{"0.0.0.0:5061"}}); err == nil {
		t.Error("unspecified address published")
	}
}

// TestTruncation: an answer larger than the client's UDP size comes back
// truncated over UDP and whole over TCP.
func TestTruncation(t *testing.T) {
	now := time.Now()
	z := testZone(t, &now)
	var keys []DeviceKey
	for i := range 6 {
		keys = append(keys, DeviceKey{Device: fmt.Sprint(i), Cert: testCert(t, fmt.Sprint("device ", i))})
	}
	if err := z.SetEntries([]Entry{{E164: "+421900111222", AOR: "alice@a.example", Keys: keys}}); err != nil {
		t.Fatal(err)
	}
	pc, ln, err := udptcp.Listen("udp", "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- z.Serve(ctx, pc, ln) }()
	defer func() { cancel(); <-done }()

	name, err := dnsname.SMIMEA("alice@a.example")
	if err != nil {
		t.Fatal(err)
	}
	udp := &dns.Client{Net: "udp", UDPSize: 1232}
	m, _, err := udp.Exchange(query(name, dns.TypeSMIMEA, true), pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	if !m.Truncated {
		t.Fatalf("UDP answer of %d records not truncated", len(m.Answer))
	}
	tcp := &dns.Client{Net: "tcp"}
	m, _, err = tcp.Exchange(query(name, dns.TypeSMIMEA, true), pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	if m.Truncated || count(m.Answer, dns.TypeSMIMEA) != 6 || count(m.Answer, dns.TypeRRSIG) != 1 {
		t.Fatalf("TCP answer: truncated %v, %d records", m.Truncated, len(m.Answer))
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	for _, alg := range []uint8{ECDSAP256, Ed25519} {
		k, err := GenerateKey(origin, alg, true)
		if err != nil {
			t.Fatal(err)
		}
		base := fmt.Sprint("ksk", alg)
		if err := k.Write(dir, base); err != nil {
			t.Fatal(err)
		}
		for _, ext := range []string{".key", ".private"} {
			st, err := os.Stat(filepath.Join(dir, base+ext))
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("%s%s: %v %v", base, ext, st.Mode(), err)
			}
		}
		if err := k.Write(dir, base); err == nil {
			t.Fatal("overwrote a key")
		}
		l, err := LoadKey(dir, base)
		if err != nil {
			t.Fatal(err)
		}
		if l.Tag() != k.Tag() || !l.IsKSK() {
			t.Fatalf("loaded %s, wrote %s", l, k)
		}
	}
	// A private key that is not the DNSKEY's is refused.
	a, _ := GenerateKey(origin, ECDSAP256, false)
	b, _ := GenerateKey(origin, ECDSAP256, false)
	a.Write(dir, "a")
	b.Write(dir, "b")
	os.Rename(filepath.Join(dir, "b.private"), filepath.Join(dir, "a.private"))
	if _, err := LoadKey(dir, "a"); err == nil {
		t.Fatal("mismatched key pair loaded")
	}
}

func TestWriteZoneParses(t *testing.T) {
	now := t0
	z := testZone(t, &now)
	if err := z.SetEntries([]Entry{{E164: "+421900111222", AOR: "alice@a.example", Keys: []DeviceKey{{Cert: testCert(t, "a")}}}}); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := z.WriteZone(&b); err != nil {
		t.Fatal(err)
	}
	zp := dns.NewZoneParser(strings.NewReader(b.String()), origin, "")
	n := 0
	for _, ok := zp.Next(); ok; _, ok = zp.Next() {
		n++
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(z.Records()) {
		t.Fatalf("parsed %d records, zone has %d", n, len(z.Records()))
	}
}

func FuzzReply(f *testing.F) {
	now := t0
	z := testZone(f, &now)
	z.SetEntries([]Entry{{E164: "+421900111222", AOR: "alice@a.example"}})
	for _, q := range []*dns.Msg{query("2.2.2.1.1.1.0.0.9.1.2.4.e164."+origin, dns.TypeNAPTR, true), query("x."+origin, dns.TypeA, true), query(origin, dns.TypeANY, false)} {
		b, _ := q.Pack()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q := new(dns.Msg)
		if q.Unpack(b) != nil {
			return
		}
		for _, udp := range []bool{true, false} {
			m := z.Reply(q, udp)
			out, err := m.Pack()
			if err != nil {
				t.Fatalf("reply does not pack: %v", err)
			}
			if udp && len(out) > maxUDPSize {
				t.Fatalf("UDP reply of %d octets", len(out))
			}
		}
	})
}

// BenchmarkSetEntriesOneChange is the cost of publishing one more number in
// a 10,000-number zone (and dropping the one the previous round added): the
// snapshot is patched, not rebuilt (incremental.go).
func BenchmarkSetEntriesOneChange(b *testing.B) {
	now := time.Now()
	z := testZone(b, &now)
	var entries []Entry
	for i := range 10000 {
		entries = append(entries, Entry{E164: fmt.Sprintf("+4219%08d", i*7919%100000000), AOR: fmt.Sprintf("u%d@a.example", i)})
	}
	if err := z.SetEntries(entries); err != nil {
		b.Fatal(err)
	}
	// One list reused, so that the figure is the zone's work, not the
	// benchmark's copying.
	list := append(slices.Clone(entries), Entry{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		list[10000] = Entry{E164: fmt.Sprintf("+44%09d", i), AOR: "new@a.example"}
		if err := z.SetEntries(list); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSetEntriesUnchanged is the part of a publication that grows with
// the zone: comparing the directory's whole list of 10,000 entries with the
// previous one, when nothing changed.
func BenchmarkSetEntriesUnchanged(b *testing.B) {
	now := time.Now()
	z := testZone(b, &now)
	var entries []Entry
	for i := range 10000 {
		entries = append(entries, Entry{E164: fmt.Sprintf("+4219%08d", i*7919%100000000), AOR: fmt.Sprintf("u%d@a.example", i)})
	}
	if err := z.SetEntries(entries); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := z.SetEntries(entries); err != nil {
			b.Fatal(err)
		}
	}
}
