package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/freeport"
)

// jsonEvents returns the JSON lines a process printed, as maps.
func jsonEvents(b []byte) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func firstEvent(evs []map[string]any, typ string) map[string]any {
	for _, e := range evs {
		if e["event"] == typ || e["type"] == typ {
			return e
		}
	}
	return nil
}

// contactTrust reads 'phonex contacts --json' of dev: the trust of the
// contact account and of each of its devices.
func contactTrust(c *cluster, dev, account string) (string, map[string]string) {
	c.t.Helper()
	var cs []struct {
		User    string `json:"user"`
		Trust   string `json:"trust"`
		Devices []struct {
			Name  string `json:"name"`
			Trust string `json:"trust"`
		} `json:"devices"`
	}
	if err := json.Unmarshal([]byte(c.mustPx(dev, "contacts", "--json")), &cs); err != nil {
		c.t.Fatal(err)
	}
	for _, ct := range cs {
		if ct.User == account {
			devs := map[string]string{}
			for _, d := range ct.Devices {
				devs[d.Name] = d.Trust
			}
			return ct.Trust, devs
		}
	}
	c.t.Fatalf("%s has no contact %s", dev, account)
	return "", nil
}

// tamperProxy forwards UDP datagrams from the caller to the callee's SIP
// port, changing one character of the signature of the zrtp-hash in the
// SDP offer (same length, so Content-Length stays right). Responses and
// in-dialog requests take the direct path (Via, Contact).
func tamperProxy(t *testing.T, to string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	dst, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 65535)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			b := bytes.Clone(buf[:n])
			const attr = "a=x-phonex-zrtp-hash-sig:v1 "
			if i := bytes.Index(b, []byte(attr)); i >= 0 {
				// Skip the device name, then change the first signature
				// character.
				j := i + len(attr) + bytes.IndexByte(b[i+len(attr):], ' ') + 1
				if b[j] == 'A' {
					b[j] = 'B'
				} else {
					b[j] = 'A'
				}
			}
			pc.WriteTo(b, dst)
		}
	}()
	return pc.LocalAddr().String()
}

// TestCallTrust: two enrolled profiles that are each other's contacts
// call directly. Each side verifies the other's signed zrtp-hash against
// the pinned certificate and both bind their messaging identities into
// the SAS (auxsecret matched). The SAS confirmed in the call (y) and
// after it (verify-call) marks the peer device's messaging identity
// verified in 'phonex contacts --json' and in message events; a rejected
// SAS (n) marks it unsafe, and the contact with it. A signature changed on
// the way is reported invalid and the call unsafe.
func TestCallTrust(t *testing.T) {
	c := newCluster(t)
	c.n = serveOn(t, c.data, freeport.Addr(t), freeport.Addr(t))
	c.device("alpha", "a1", true)
	c.device("bravo", "b1", true)
	c.mustPx("alpha/a1", "contacts", "add", "bravo@example.org")
	c.mustPx("bravo/b1", "contacts", "add", "alpha@example.org")
	if tr, devs := contactTrust(c, "alpha/a1", "bravo@example.org"); tr != "unverified" || devs["b1"] != "unverified" {
		t.Fatalf("before any call: %s %v", tr, devs)
	}
	withProfile := func(dev string, args ...string) []string {
		return append(args, "--profile", c.profile(dev), "--password-file", c.pw)
	}
	// call places one direct call from alpha to bravo; via, when set, is
	// where the INVITE goes instead of bravo's port. callerIn and calleeIn
	// are typed once the SAS is shown ("" for nothing).
	call := func(via func(string) string, callerIn, calleeIn string) (caller, callee []map[string]any) {
		t.Helper()
		addr := fmt.Sprintf("127.0.0.1:%d", freeport.Port(t))
		ans := startPhonexEnv(t, nil, withProfile("bravo/b1", "answer", "--direct", "--listen", addr, "--json", "--no-opus")...)
		ans.waitEvent(t, "listening", 20*time.Second)
		target := addr
		if via != nil {
			target = via(addr)
		}
		p := startPhonexEnv(t, nil, withProfile("alpha/a1", "call", "sip:b@"+target, "--direct", "--json", "--no-opus")...)
		// The call lasts until what was typed has taken effect (a
		// confirmation, or the alert of a rejection), however long the
		// call took to become secure.
		for _, x := range []struct {
			p  *proc
			in string
		}{{p, callerIn}, {ans, calleeIn}} {
			if x.in != "" {
				x.p.waitEvent(t, "secure", 60*time.Second)
				io.WriteString(x.p.stdin, x.in+"\n")
				x.p.waitEvent(t, map[string]string{"y": "sas_verified", "n": "alert"}[x.in], 30*time.Second)
			}
		}
		talk(t, p, ans, time.Second)
		p.wait(t, 30*time.Second)
		ans.wait(t, 30*time.Second)
		return jsonEvents(p.out.Bytes()), jsonEvents(ans.out.Bytes())
	}

	a, b := call(nil, "y", "")
	sa, sb := firstEvent(a, "secure"), firstEvent(b, "secure")
	for side, s := range map[string]map[string]any{"caller": sa, "callee": sb} {
		if s["signed_hash"] != "verified" || s["aux_secret"] != "matched" || s["hello_hash"] != "matched" || s["trust"] == "unsafe" {
			t.Errorf("%s: %v", side, s)
		}
	}
	if sa["signed_by"] != "bravo@example.org/b1" || sb["signed_by"] != "alpha@example.org/a1" || sa["sas"] != sb["sas"] {
		t.Errorf("signed by %v / %v, SAS %v / %v", sa["signed_by"], sb["signed_by"], sa["sas"], sb["sas"])
	}
	if v := firstEvent(a, "sas_verified"); v == nil || !strings.Contains(v["reason"].(string), "messaging identity of bravo@example.org/b1") {
		t.Errorf("caller's confirmation: %v", v)
	}
	// Confirmed in the call on alpha's side.
	if tr, devs := contactTrust(c, "alpha/a1", "bravo@example.org"); tr != "verified" || devs["b1"] != "verified" {
		t.Errorf("alpha after confirming: %s %v", tr, devs)
	}
	// Not yet on bravo's: it confirms after the call.
	if tr, _ := contactTrust(c, "bravo/b1", "alpha@example.org"); tr != "unverified" {
		t.Errorf("bravo before confirming: %s", tr)
	}
	v := decode[map[string]any](t, c.mustPx("bravo/b1", "verify-call", sb["peer_zid"].(string), sb["sas"].(string), "--json"))
	if v["messaging_verified"] != "alpha@example.org/a1" {
		t.Errorf("verify-call: %v", v)
	}
	if tr, devs := contactTrust(c, "bravo/b1", "alpha@example.org"); tr != "verified" || devs["a1"] != "verified" {
		t.Errorf("bravo after verify-call: %s %v", tr, devs)
	}

	// Messages carry the trust.
	lst := startListen(t, c, "alpha/a1")
	c.mustPx("bravo/b1", "send", "alpha@example.org", "hello after the call")
	m := lst.waitType(t, "message", 20*time.Second)
	if m["trust"] != "verified" || m["conversation_trust"] != "verified" {
		t.Errorf("message event: %v", m)
	}
	lst.stop()

	// A signature changed on the way: the callee says invalid, unsafe.
	a, b = call(func(addr string) string { return tamperProxy(t, addr) }, "", "")
	sb = firstEvent(b, "secure")
	if sb["signed_hash"] != "invalid" || sb["trust"] != "unsafe" || sb["aux_secret"] != "none" {
		t.Errorf("callee of a tampered offer: %v", sb)
	}
	if al := firstEvent(b, "alert"); al == nil || !strings.Contains(al["reason"].(string), "INVALID") {
		t.Errorf("no alert for the tampered signature: %v", al)
	}
	// Its messaging identity is not touched by a signature it did not make.
	if tr, _ := contactTrust(c, "bravo/b1", "alpha@example.org"); tr != "verified" {
		t.Errorf("bravo after the tampered call: %s", tr)
	}

	// bravo hears a different SAS: alpha's messaging identity is unsafe
	// for bravo, and the conversation with it.
	_, b = call(nil, "", "n")
	if s := firstEvent(b, "secure"); s["signed_hash"] != "verified" || s["aux_secret"] != "matched" {
		t.Errorf("third call, callee: %v", s)
	}
	if tr, devs := contactTrust(c, "bravo/b1", "alpha@example.org"); tr != "unsafe" || devs["a1"] != "unsafe" {
		t.Errorf("bravo after rejecting the SAS: %s %v", tr, devs)
	}
}

// jsonProc is a phonex command whose JSON lines the test reads.
type jsonProc struct {
	cmd *exec.Cmd
	out lockedBuffer
	err lockedBuffer
}

func startListen(t *testing.T, c *cluster, dev string) *jsonProc {
	t.Helper()
	p := &jsonProc{cmd: exec.Command(filepath.Join(bin, "phonex"), "listen", "--json", "--profile", c.profile(dev), "--password-file", c.pw)}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.err
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	p.waitType(t, "ready", 20*time.Second)
	return p
}

func (p *jsonProc) waitType(t *testing.T, typ string, limit time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if e := firstEvent(jsonEvents(p.out.Bytes()), typ); e != nil {
			return e
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no %s event within %v\n%s%s", typ, limit, p.out.String(), p.err.String())
	return nil
}

func (p *jsonProc) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
	}
}

// TestCallTrustStandardPhone: a profile's call with a standard phone
// (linphonec, bzrtp) works with the signature attribute in the offer, the
// SAS is equal, and the phone's missing signature is reported as such
// (not as unsafe), in both directions.
func TestCallTrustStandardPhone(t *testing.T) {
	requirePeer(t, "linphonec")
	c := newCluster(t)
	c.n = serveOn(t, c.data, freeport.Addr(t), freeport.Addr(t))
	c.device("alpha", "a1", true)
	lp := startLinphonec(t, filepath.Join(c.tmp, "lp"), "")
	profile := []string{"--profile", c.profile("alpha/a1"), "--password-file", c.pw}

	check := func(dir string, mark int, evs []map[string]any) {
		t.Helper()
		lpSAS := lp.waitFor(mark, sasRE, 30*time.Second)[1]
		s := firstEvent(evs, "secure")
		if s == nil {
			t.Fatalf("%s: no secure event", dir)
		}
		if sas, _ := s["sas"].(string); !sameSAS(sas, lpSAS) {
			t.Errorf("%s: SAS phonex %q linphonec %q", dir, sas, lpSAS)
		}
		if s["signed_hash"] != "missing" || s["aux_secret"] != "none" || s["trust"] == "unsafe" {
			t.Errorf("%s: %v", dir, s)
		}
		if d, _ := s["signed_hash_detail"].(string); !strings.Contains(d, "standard phone") {
			t.Errorf("%s: detail %q", dir, d)
		}
		lp.waitFor(mark, `ended`, 30*time.Second)
	}

	mark := lp.mark()
	p := startPhonex(t, append([]string{"call", fmt.Sprintf("sip:lp@127.0.0.1:%d", lp.port), "--direct", "--json"}, profile...)...)
	hangUpAfter(t, p, time.Second)
	p.wait(t, 30*time.Second)
	check("phonex -> linphonec", mark, jsonEvents(p.out.Bytes()))

	// A second phone, so that the retained secret of the first call
	// plays no part (bzrtp files it under the peer's SIP address, which
	// differs in this direction).
	lp.quit()
	lp = startLinphonec(t, filepath.Join(c.tmp, "lp2"), "")
	addr := fmt.Sprintf("127.0.0.1:%d", freeport.Port(t))
	ans := startPhonex(t, append([]string{"answer", "--direct", "--listen", addr, "--json"}, profile...)...)
	ans.waitEvent(t, "listening", 20*time.Second)
	mark = lp.mark()
	lp.send("call sip:x@" + addr)
	hangUpAfter(t, ans, time.Second)
	ans.wait(t, 30*time.Second)
	check("linphonec -> phonex", mark, jsonEvents(ans.out.Bytes()))
}

// TestCallTrustThroughCluster: the same checks on a call through the
// node (INVITE routed by address): each side verifies the other's signed
// zrtp-hash and the messaging identities are bound; a confirmed SAS makes
// the contact verified.
func TestCallTrustThroughCluster(t *testing.T) {
	c := newCluster(t)
	c.n = serveOn(t, c.data, freeport.Addr(t), freeport.Addr(t))
	c.device("alpha", "a1", true)
	c.device("bravo", "b1", true)
	c.mustPx("alpha/a1", "contacts", "add", "bravo@example.org")
	c.mustPx("bravo/b1", "contacts", "add", "alpha@example.org")
	ans := startPhonex(t, "answer", "--json", "--no-opus", "--profile", c.profile("bravo/b1"), "--password-file", c.pw)
	ans.waitEvent(t, "listening", 20*time.Second)
	p := startPhonex(t, "call", "bravo@example.org", "--json", "--no-opus", "--profile", c.profile("alpha/a1"), "--password-file", c.pw)
	p.confirmSAS(t)
	// Up until the confirmation has taken effect, then hung up.
	p.waitEvent(t, "sas_verified", 30*time.Second)
	talk(t, p, ans, time.Second)
	p.wait(t, 40*time.Second)
	ans.wait(t, 40*time.Second)
	sa, sb := firstEvent(jsonEvents(p.out.Bytes()), "secure"), firstEvent(jsonEvents(ans.out.Bytes()), "secure")
	for side, s := range map[string]map[string]any{"caller": sa, "callee": sb} {
		if s["signed_hash"] != "verified" || s["aux_secret"] != "matched" || s["hello_hash"] != "matched" || s["trust"] == "unsafe" {
			t.Errorf("%s: %v", side, s)
		}
	}
	if sa["signed_by"] != "bravo@example.org/b1" || sb["signed_by"] != "alpha@example.org/a1" {
		t.Errorf("signed by %v / %v", sa["signed_by"], sb["signed_by"])
	}
	if tr, devs := contactTrust(c, "alpha/a1", "bravo@example.org"); tr != "verified" || devs["b1"] != "verified" {
		t.Errorf("alpha after confirming: %s %v\n%s", tr, devs, p.out.String())
	}
}
