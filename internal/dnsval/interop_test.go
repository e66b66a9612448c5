package dnsval

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/phonex/phonex/internal/dnsname"
	"github.com/phonex/phonex/internal/dnszone"
	"github.com/phonex/phonex/internal/freeport"
	"github.com/phonex/phonex/internal/testpeer"
)

// The zone is checked by validators that share no code with it: BIND's delv,
// ldns's drill, and unbound as a validating resolver in front of it.

const aliceNumber = "+421900111222"

// tamperNAPTR serves the zone but rewrites alice's SIP address in NAPTR
// answers, leaving the signature as it was: a forged record.
func tamperNAPTR(z *dnszone.Zone) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		_, tcp := w.RemoteAddr().(*net.TCPAddr)
		m := z.Reply(r, !tcp)
		for _, rr := range m.Answer {
			if n, ok := rr.(*dns.NAPTR); ok {
				n.Regexp = "!^.*$!sip:mallory@evil.example!"
			}
		}
		w.WriteMsg(m)
	})
}

// tamperSig flips a byte of every signature over SMIMEA records.
func tamperSig(z *dnszone.Zone) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		_, tcp := w.RemoteAddr().(*net.TCPAddr)
		m := z.Reply(r, !tcp)
		for _, rr := range m.Answer {
			if s, ok := rr.(*dns.RRSIG); ok && s.TypeCovered == dns.TypeSMIMEA {
				flipSig(s)
			}
		}
		w.WriteMsg(m)
	})
}

func liveFixture(t *testing.T, handler func(z *dnszone.Zone) dns.Handler) *fixture {
	return newFixtureAt(t, dnszone.ECDSAP256, time.Now(), handler)
}

// anchorFile writes the zone's DS as a BIND trust-anchors clause (delv -a).
func (f *fixture) anchorFile(t *testing.T) string {
	ds := f.anchors[0].(*dns.DS)
	p := filepath.Join(t.TempDir(), "anchor.conf")
	text := fmt.Sprintf("trust-anchors {\n  %s static-ds %d %d %d \"%s\";\n};\n", origin, ds.KeyTag, ds.Algorithm, ds.DigestType, ds.Digest)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// kskFile writes the KSK's DNSKEY record (drill -k).
func (f *fixture) kskFile(t *testing.T) string {
	var lines []string
	for _, k := range f.zone.DNSKEYs() {
		if k.Flags == dnszone.FlagsKSK {
			lines = append(lines, k.String())
		}
	}
	p := filepath.Join(t.TempDir(), "ksk.key")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	t.Logf("%s %s:\n%s", filepath.Base(name), strings.Join(args, " "), out)
	if ctx.Err() != nil {
		t.Fatalf("%s timed out", name)
	}
	_ = err // delv exits 0 on failure; the text decides
	return string(out)
}

func names(t *testing.T) (naptr, smimea string) {
	naptr, err := dnsname.ENUM(aliceNumber, origin)
	if err != nil {
		t.Fatal(err)
	}
	smimea, err = dnsname.SMIMEA("alice@a.example")
	if err != nil {
		t.Fatal(err)
	}
	return naptr, smimea
}

func delv(t *testing.T, bin, server, anchor, name, qtype string) string {
	host, port, _ := net.SplitHostPort(server)
	return run(t, bin, "@"+host, "-p", port, "-a", anchor, "+root="+origin, "+tcp", name, qtype)
}

func TestDelv(t *testing.T) {
	bin := testpeer.Require(t, "delv")
	naptr, smimea := names(t)
	f := liveFixture(t, nil)
	anchor := f.anchorFile(t)
	for _, q := range []struct{ name, qtype string }{{naptr, "NAPTR"}, {smimea, "SMIMEA"}} {
		out := delv(t, bin, f.addr, anchor, q.name, q.qtype)
		if !strings.Contains(out, "; fully validated") {
			t.Fatalf("delv did not validate %s %s", q.name, q.qtype)
		}
	}
	// A number that does not exist: validated NXDOMAIN through NSEC3.
	missing, _ := dnsname.ENUM("+421900111999", origin)
	if out := delv(t, bin, f.addr, anchor, missing, "NAPTR"); !strings.Contains(out, "; negative response, fully validated") {
		t.Fatal("delv did not validate the proof of nonexistence")
	}
	for name, h := range map[string]func(*dnszone.Zone) dns.Handler{"record": tamperNAPTR, "signature": tamperSig} {
		t.Run("tampered "+name, func(t *testing.T) {
			bad := liveFixture(t, h)
			anchor := bad.anchorFile(t)
			q := naptr + " NAPTR"
			if name == "signature" {
				q = smimea + " SMIMEA"
			}
			out := delv(t, bin, bad.addr, anchor, strings.Fields(q)[0], strings.Fields(q)[1])
			if strings.Contains(out, "fully validated") || !strings.Contains(out, "resolution failed") {
				t.Fatal("delv accepted a tampered zone")
			}
		})
	}
}

func drill(t *testing.T, bin, server, keyfile, name, qtype string) string {
	host, port, _ := net.SplitHostPort(server)
	return run(t, bin, "-S", "-k", keyfile, "-p", port, "@"+host, name, qtype)
}

func TestDrill(t *testing.T) {
	bin := testpeer.Require(t, "drill")
	naptr, smimea := names(t)
	f := liveFixture(t, nil)
	keys := f.kskFile(t)
	for _, q := range []struct{ name, qtype string }{{naptr, "NAPTR"}, {smimea, "SMIMEA"}} {
		out := drill(t, bin, f.addr, keys, q.name, q.qtype)
		if !strings.Contains(out, ";; Chase successful") || !strings.Contains(out, "flags: 257)") {
			t.Fatalf("drill did not chase %s %s to the trust anchor", q.name, q.qtype)
		}
	}
	bad := liveFixture(t, tamperNAPTR)
	out := drill(t, bin, bad.addr, bad.kskFile(t), naptr, "NAPTR")
	if strings.Contains(out, "Chase successful") {
		t.Fatal("drill accepted a tampered record")
	}
}

// startUnbound runs unbound on a free loopback port with a stub zone
// pointing at the zone's server, the zone's DS as its only trust anchor
// and no root hints used.
func startUnbound(t *testing.T, f *fixture) string {
	bin := testpeer.Require(t, "unbound")
	dir := t.TempDir()
	port := freeport.Port(t)
	zhost, zport, _ := net.SplitHostPort(f.addr)
	conf := fmt.Sprintf(`server:
  interface: 127.0.0.1
  port: %d
  do-ip6: no
  do-not-query-localhost: no
  username: ""
  chroot: ""
  directory: "%s"
  pidfile: "%s/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 1
  num-threads: 1
  access-control: 127.0.0.0/8 allow
  module-config: "validator iterator"
  trust-anchor: "%s"
  val-log-level: 2
  qname-minimisation: no
  auto-trust-anchor-file: ""
remote-control:
  control-enable: no
stub-zone:
  name: "%s"
  stub-addr: %s@%s
`, port, dir, dir, f.anchors[0].String(), origin, zhost, zport)
	p := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-d", "-c", p)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		t.Logf("unbound output:\n%s", out.String())
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	q := new(dns.Msg)
	q.SetQuestion(origin, dns.TypeSOA)
	for i := 0; ; i++ {
		if _, _, err := c.Exchange(q, addr); err == nil {
			return addr
		}
		if i > 100 {
			t.Fatalf("unbound did not answer on %s", addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestUnbound(t *testing.T) {
	f := liveFixture(t, nil)
	addr := startUnbound(t, f)
	naptr, smimea := names(t)

	// dig +dnssec through unbound: unbound validated, AD is set.
	dig := testpeer.Require(t, "dig")
	{
		host, port, _ := net.SplitHostPort(addr)
		out := run(t, dig, "@"+host, "-p", port, "+dnssec", naptr, "NAPTR")
		if !strings.Contains(out, "flags: qr rd ra ad;") || !strings.Contains(out, "sip:alice@a.example") {
			t.Fatal("unbound did not validate the NAPTR (no AD bit)")
		}
	}
	// Our own validator behind unbound: the records and signatures pass
	// through, the verdict is ours.
	r := &Resolver{Server: addr, Anchors: f.anchors}
	ctx := context.Background()
	if aor, err := r.SIPAddress(ctx, aliceNumber); err != nil || aor != "alice@a.example" {
		t.Fatalf("through unbound: %q, %v", aor, err)
	}
	if c, err := r.UserKeys(ctx, "alice@a.example"); err != nil || len(c) != 1 {
		t.Fatalf("keys through unbound: %v", err)
	}
	// delv through unbound.
	{
		bin := testpeer.Require(t, "delv")
		if out := delv(t, bin, addr, f.anchorFile(t), smimea, "SMIMEA"); !strings.Contains(out, "; fully validated") {
			t.Fatal("delv through unbound did not validate")
		}
	}
	// A tampered zone behind unbound: unbound answers SERVFAIL, and our
	// validator asking with CD gets the forged record and refuses it.
	bad := liveFixture(t, tamperNAPTR)
	baddr := startUnbound(t, bad)
	host, port, _ := net.SplitHostPort(baddr)
	if out := run(t, dig, "@"+host, "-p", port, "+dnssec", naptr, "NAPTR"); !strings.Contains(out, "status: SERVFAIL") {
		t.Fatal("unbound served a tampered record")
	}
	rb := &Resolver{Server: baddr, Anchors: bad.anchors}
	if aor, err := rb.SIPAddress(ctx, aliceNumber); err == nil {
		t.Fatalf("tampered zone through unbound accepted: %s", aor)
	} else {
		t.Logf("tampered: %v", err)
	}
}
