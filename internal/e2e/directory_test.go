package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/phonex/phonex/internal/dnsval"
	"github.com/phonex/phonex/internal/freeport"
)

type dirKey struct {
	Device     string `json:"device"`
	KeySHA256  string `json:"key_sha256"`
	Match      string `json:"match"`
	CAVerified bool   `json:"ca_verified"`
}

type dirEntry struct {
	Number     string   `json:"number"`
	SIPAddress string   `json:"sip_address"`
	Keys       []dirKey `json:"keys"`
	Pending    *struct {
		Replacement string   `json:"replacement"`
		Keys        []dirKey `json:"keys"`
	} `json:"pending"`
}

type dirPublication struct {
	State string   `json:"state"`
	Entry dirEntry `json:"entry"`
}

type dirNotice struct {
	Kind       string `json:"kind"`
	Number     string `json:"number"`
	Ref        string `json:"ref"`
	Code       string `json:"code"`
	FromDevice string `json:"from_device"`
}

func (c *cluster) dirLookup(dev, q string) []dirEntry {
	c.t.Helper()
	return decode[struct {
		Entries []dirEntry `json:"entries"`
	}](c.t, c.mustPx(dev, "directory", "lookup", q, "--json")).Entries
}

func (c *cluster) dirNotices(dev string) []dirNotice {
	c.t.Helper()
	return decode[struct {
		Notices []dirNotice `json:"notices"`
	}](c.t, c.mustPx(dev, "directory", "notices", "--json")).Notices
}

func devicesOf(ks []dirKey) string {
	var names []string
	for _, k := range ks {
		names = append(names, k.Device+":"+k.Match)
	}
	return strings.Join(names, ",")
}

// publish → lookup → discover through the binaries over mutual TLS, a
// claim answered with a code read on another device, a key replacement
// from a new device cancelled by the old one and then published after the
// delay; the node's log and database hold none of the numbers queried.
func TestDirectory(t *testing.T) {
	c := newCluster(t)
	dnsAddr := freeport.Addr(t)
	c.configure("directory_replace_delay = 4s", "log_level = debug", "dns_addr = "+dnsAddr)
	c.n = serve(t, c.data)
	zone := c.zoneResolver(dnsAddr)
	c.device("alpha", "phone", true)
	c.device("bravo", "b1", true)
	const num = "+420777000111"

	pub := decode[dirPublication](t, c.mustPx("alpha/phone", "directory", "publish", "--number", "+420 777 000 111", "--json"))
	if pub.State != "published" || pub.Entry.Number != num || pub.Entry.SIPAddress != "sip:alpha@example.org" || len(pub.Entry.Keys) != 1 {
		t.Fatalf("publish: %+v", pub)
	}

	// The publication is in the signed zone, validated from the DS.
	waitFor(t, "the number in the zone", 30*time.Second, func() bool {
		aor, err := zone.SIPAddress(context.Background(), num)
		return err == nil && aor == "alpha@example.org"
	})
	if ks := zoneKeys(t, zone, "alpha@example.org"); ks != pub.Entry.Keys[0].KeySHA256 {
		t.Fatalf("zone keys %s, published %s", ks, pub.Entry.Keys[0].KeySHA256)
	}

	// The node gave the zone's anchor at enrollment (TestDirectoryAnchorFromEnrollment).
	if out := c.mustPx("bravo/b1", "directory", "lookup", num, "--dns", dnsAddr); !strings.Contains(out, "sip:alpha@example.org") {
		t.Fatalf("DNS lookup with the node's anchor: %s", out)
	}
	// The same through DNS, validated by the device from the DS.
	anchor := filepath.Join(c.tmp, "anchor.ds")
	os.WriteFile(anchor, []byte(mustRun(t, nil, "phonexd", "dns", "ds", "--data", c.data)), 0o600)
	viaDNS := decode[struct {
		Entries []struct {
			dirEntry
			Source string `json:"source"`
		} `json:"entries"`
	}](t, c.mustPx("bravo/b1", "directory", "lookup", num, "--dns", dnsAddr, "--anchor", anchor, "--json")).Entries
	if len(viaDNS) != 1 || viaDNS[0].Source != "dns" || viaDNS[0].SIPAddress != "sip:alpha@example.org" ||
		devicesOf(viaDNS[0].Keys) != "alpha@example.org/phone:not_pinned" || viaDNS[0].Keys[0].KeySHA256 != pub.Entry.Keys[0].KeySHA256 {
		t.Fatalf("lookup through DNS: %+v", viaDNS)
	}
	// A wrong anchor: nothing validates.
	wrongAnchor := filepath.Join(c.tmp, "wrong.ds")
	ds := strings.Fields(mustRun(t, nil, "phonexd", "dns", "ds", "--data", c.data))
	ds[len(ds)-1] = strings.Repeat("0", len(ds[len(ds)-1]))
	os.WriteFile(wrongAnchor, []byte(strings.Join(ds, " ")+"\n"), 0o600)
	if r := c.px("bravo/b1", "directory", "lookup", num, "--dns", dnsAddr, "--anchor", wrongAnchor); r.code != 1 || !strings.Contains(r.err, "DNSSEC") {
		t.Fatalf("lookup with a wrong anchor: exit %d %q", r.code, r.err)
	}

	es := c.dirLookup("bravo/b1", num)
	if len(es) != 1 || es[0].SIPAddress != "sip:alpha@example.org" || devicesOf(es[0].Keys) != "alpha@example.org/phone:not_pinned" || !es[0].Keys[0].CAVerified {
		t.Fatalf("lookup before pinning: %+v", es)
	}
	c.mustPx("bravo/b1", "contacts", "add", "alpha@example.org")
	if es := c.dirLookup("bravo/b1", "alpha@example.org"); devicesOf(es[0].Keys) != "alpha@example.org/phone:pinned" {
		t.Fatalf("lookup by address after pinning: %+v", es)
	}
	// The anchor that validated an answer is remembered; the wrong one was not.
	if out := c.mustPx("bravo/b1", "directory", "lookup", "alpha@example.org", "--dns", dnsAddr); !strings.Contains(out, "validated on this device") ||
		!strings.Contains(out, "matches what this device pinned") {
		t.Fatalf("lookup by address through DNS after pinning: %s", out)
	}
	if out := c.mustPx("bravo/b1", "directory", "lookup", num); !strings.Contains(out, "sip:alpha@example.org") || !strings.Contains(out, "matches what this device pinned") {
		t.Fatalf("lookup as text: %s", out)
	}

	secret := []string{"+31612340001", "+4915112340002", "+33612340003"}
	list := filepath.Join(c.tmp, "numbers.txt")
	os.WriteFile(list, []byte("# address book\n+420 777 000 111\n"+strings.Join(secret, "\n")+"\nnot a number\n"), 0o600)
	disc := decode[struct {
		Found    []dirEntry `json:"found"`
		NotFound []string   `json:"not_found"`
		Invalid  []string   `json:"invalid"`
	}](t, c.mustPx("bravo/b1", "directory", "discover", "--file", list, "--json"))
	if len(disc.Found) != 1 || disc.Found[0].Number != num || strings.Join(disc.NotFound, ",") != strings.Join(secret, ",") || len(disc.Invalid) != 1 {
		t.Fatalf("discover: %+v", disc)
	}
	for _, n := range secret {
		if r := c.px("bravo/b1", "directory", "lookup", n); r.code != 1 || !strings.Contains(r.err, "not published") {
			t.Fatalf("lookup of an unpublished number: exit %d %q", r.code, r.err)
		}
	}

	// A claim answered with the code shown on another device.
	c.device("alpha", "laptop", false)
	claim := decode[struct {
		Claim   string `json:"claim"`
		Devices int    `json:"devices"`
	}](t, c.mustPx("alpha/phone", "directory", "publish", "--number", "+420777000222", "--no-wait", "--json"))
	if claim.Devices != 2 {
		t.Fatalf("claim: %+v", claim)
	}
	ns := c.dirNotices("alpha/laptop")
	if len(ns) != 1 || ns[0].Kind != "claim_code" || ns[0].Ref != claim.Claim || ns[0].FromDevice != "phone" {
		t.Fatalf("laptop's notices: %+v", ns)
	}
	if r := c.px("alpha/phone", "directory", "publish", "--number", "+420777000222", "--code", "00000000"); r.code != 1 || !strings.Contains(r.err, "wrong code") {
		t.Fatalf("wrong code: exit %d %q", r.code, r.err)
	}
	pub = decode[dirPublication](t, c.mustPx("alpha/phone", "directory", "publish", "--number", "+420777000222", "--code", ns[0].Code, "--json"))
	if pub.State != "published" || len(pub.Entry.Keys) != 2 {
		t.Fatalf("publish by code: %+v", pub)
	}

	// The phone is lost: the laptop publishes the first number; its key
	// was not published, so the replacement waits and the phone is told.
	pub = decode[dirPublication](t, c.mustPx("alpha/laptop", "directory", "publish", "--number", num, "--json"))
	if pub.State != "replacement_pending" || pub.Entry.Pending == nil {
		t.Fatalf("replacement: %+v", pub)
	}
	var repl dirNotice
	for _, n := range c.dirNotices("alpha/phone") {
		if n.Kind == "replacement" {
			repl = n
		}
	}
	if repl.Ref != pub.Entry.Pending.Replacement || repl.FromDevice != "laptop" || repl.Number != num {
		t.Fatalf("the phone's replacement notice: %+v", repl)
	}
	// The phone was not lost after all: it cancels.
	c.mustPx("alpha/phone", "directory", "cancel", repl.Ref)
	time.Sleep(5 * time.Second)
	if es := c.dirLookup("bravo/b1", num); devicesOf(es[0].Keys) != "alpha@example.org/phone:pinned" || es[0].Pending != nil {
		t.Fatalf("after the cancelled replacement: %+v", es)
	}
	// Asked again and not cancelled, it is published after the delay.
	pub = decode[dirPublication](t, c.mustPx("alpha/laptop", "directory", "publish", "--number", num, "--json"))
	if pub.State != "replacement_pending" {
		t.Fatalf("second replacement: %+v", pub)
	}
	if out := c.mustPx("alpha/phone", "directory", "notices"); !strings.Contains(out, "phonex directory cancel "+pub.Entry.Pending.Replacement) {
		t.Fatalf("notice as text: %s", out)
	}
	waitFor(t, "the replacement's publication", 20*time.Second, func() bool {
		es := c.dirLookup("bravo/b1", num)
		return es[0].Pending == nil
	})
	// The lost phone's key is discarded; the laptop's is new to bravo.
	es = c.dirLookup("bravo/b1", num)
	if devicesOf(es[0].Keys) != "alpha@example.org/laptop:not_pinned" {
		t.Fatalf("after the replacement: %+v", es)
	}
	// The account's other number switched too, and the zone follows (the
	// sweeper pushes the replacement): the phone's key is gone from DNS.
	if other := c.dirLookup("bravo/b1", "+420777000222"); devicesOf(other[0].Keys) != "alpha@example.org/laptop:not_pinned" {
		t.Fatalf("alpha's other number after the replacement: %+v", other)
	}
	waitFor(t, "the replacement in the zone", 30*time.Second, func() bool {
		return zoneKeys(t, zone, "alpha@example.org") == es[0].Keys[0].KeySHA256
	})

	// No query is logged or stored.
	var needles []string
	for _, n := range secret {
		h := sha256.Sum256([]byte("phonex/v1/directory-discovery\x00" + n))
		needles = append(needles, n, n[1:], string(h[:]), hex.EncodeToString(h[:]), base64.StdEncoding.EncodeToString(h[:]))
	}
	where := map[string][]byte{"node log": c.n.logs.Bytes()}
	for _, s := range []string{"", "-wal"} {
		if b, err := os.ReadFile(filepath.Join(c.data, "phonexd.db"+s)); err == nil {
			where["phonexd.db"+s] = b
		}
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(c.data, "phonexd.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var dump bytes.Buffer
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type='table'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	for _, tbl := range tables {
		rs, err := db.Query(`SELECT * FROM "` + tbl + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rs.Columns()
		for rs.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			rs.Scan(ptrs...)
			for _, v := range vals {
				fmt.Fprintf(&dump, "%s\x00", v)
			}
		}
		rs.Close()
	}
	if !bytes.Contains(dump.Bytes(), []byte(num)) {
		t.Fatal("the table dump misses the published number: the check would prove nothing")
	}
	where["tables"] = dump.Bytes()
	for w, b := range where {
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				t.Errorf("%s holds %q", w, n)
			}
		}
	}
}

// zoneResolver validates the node's zone from the DS 'phonexd dns ds' prints.
func (c *cluster) zoneResolver(addr string) *dnsval.Resolver {
	c.t.Helper()
	out := decode[map[string]any](c.t, mustRun(c.t, nil, "phonexd", "dns", "ds", "--data", c.data, "--json"))
	ds, err := dns.NewRR(out["ds"].(string))
	if err != nil {
		c.t.Fatal(err)
	}
	return &dnsval.Resolver{Server: addr, Anchors: []dns.RR{ds}}
}

// zoneKeys is the SHA-256 of the public keys of the certificates the zone
// publishes for aor, comma-separated.
func zoneKeys(t *testing.T, r *dnsval.Resolver, aor string) string {
	certs, err := r.UserKeys(context.Background(), aor)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, c := range certs {
		h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
		out = append(out, hex.EncodeToString(h[:]))
	}
	return strings.Join(out, ",")
}
