package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/freeport"
)

// relayCreds is phonex relay-credentials --json.
type relayCreds struct {
	URIs     []string  `json:"uris"`
	STUN     []string  `json:"stun"`
	Username string    `json:"username"`
	Password string    `json:"password"`
	Expires  time.Time `json:"expires"`
}

// port returns the port of the first URI of creds with scheme and transport.
func (r relayCreds) port(t *testing.T, scheme, transport string) string {
	t.Helper()
	for _, u := range r.URIs {
		p, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		if p.Scheme == scheme && p.Query().Get("transport") == transport {
			_, port, _ := strings.Cut(p.Opaque, ":")
			return port
		}
	}
	t.Fatalf("no %s URI with transport %s in %v", scheme, transport, r.URIs)
	return ""
}

// uclient runs coturn's turnutils_uclient: two clients on the relay sending
// n 160-byte datagrams each to the other's relayed address (-y), without
// RTCP companions (-c).
func uclient(t *testing.T, bin string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"-n", "20", "-m", "2", "-l", "160", "-y", "-X", "-c"}, extra...)
	out, _ := exec.CommandContext(ctx, bin, append(args, "127.0.0.1")...).CombinedOutput()
	return string(out)
}

func restPassword(secret []byte, username string) string {
	m := hmac.New(sha1.New, secret)
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// TestRelayInterop: a device gets relay credentials over the API (phonex
// relay-credentials); coturn's client relays with them through phonexd's
// relay over UDP, TCP and TLS; a coturn server given the node's secret
// (use-auth-secret) accepts the same credentials; both refuse expired
// and wrong ones.
func TestRelayInterop(t *testing.T) {
	uc := requirePeer(t, "turnutils_uclient")
	c := newCluster(t)
	c.configure("relay_addr = 127.0.0.1:0", "relay_tls_addr = 127.0.0.1:0", "relay_min_port = 51000", "relay_max_port = 51999")
	c.n = serve(t, c.data)
	c.device("alpha", "laptop", true)
	cr := decode[relayCreds](t, c.mustPx("alpha/laptop", "relay-credentials", "--json"))
	_, pseudonym, _ := strings.Cut(cr.Username, ":")
	if len(pseudonym) != 16 || strings.Contains(cr.Username, "alpha") || cr.Password == "" || len(cr.STUN) != 1 || len(cr.URIs) != 3 ||
		time.Until(cr.Expires) < 11*time.Hour {
		t.Fatalf("credentials %+v", cr)
	}
	text := c.mustPx("alpha/laptop", "relay-credentials")
	// Issued apart, possibly a second later: the expiry may differ.
	if !strings.Contains(text, ":"+pseudonym+"\n") {
		t.Fatalf("text output %q", text)
	}
	secret, err := os.ReadFile(filepath.Join(c.data, "relay.secret"))
	if err != nil {
		t.Fatal(err)
	}
	secret = bytes.TrimSpace(secret)
	expired := strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10) + ":alpha@example.org"
	ok := func(t *testing.T, out string) {
		t.Helper()
		if !strings.Contains(out, "tot_recv_msgs=40") || !strings.Contains(out, "Total lost packets 0 ") {
			t.Fatalf("turnutils_uclient did not relay 2 x 20 datagrams:\n%s", out)
		}
	}
	refused := func(t *testing.T, out string) {
		t.Helper()
		// pion/turn answers a failed check with 400, coturn with 401
		// (RFC 8489 §9.2.4); turnutils_uclient then gives up.
		if !strings.Contains(out, "error 40") && !strings.Contains(out, "Cannot complete Allocation") ||
			strings.Contains(out, "tot_recv_msgs=") && !strings.Contains(out, "tot_recv_msgs=0") {
			t.Fatalf("relayed with refused credentials:\n%s", out)
		}
	}

	udp, tls := cr.port(t, "turn", "udp"), cr.port(t, "turns", "tcp")
	if tcp := cr.port(t, "turn", "tcp"); tcp != udp {
		t.Fatalf("UDP port %s, TCP port %s: want one port for both", udp, tcp)
	}
	for _, tc := range []struct{ name, port string }{{"udp", udp}, {"tcp", udp}, {"tls", tls}} {
		t.Run("uclient to phonexd over "+tc.name, func(t *testing.T) {
			args := []string{"-u", cr.Username, "-w", cr.Password, "-p", tc.port}
			switch tc.name {
			case "tcp":
				args = append(args, "-t")
			case "tls":
				args = append(args, "-t", "-S")
			}
			ok(t, uclient(t, uc, args...))
		})
	}
	t.Run("phonexd refuses", func(t *testing.T) {
		refused(t, uclient(t, uc, "-u", expired, "-w", restPassword(secret, expired), "-p", udp))
		refused(t, uclient(t, uc, "-u", cr.Username, "-w", restPassword([]byte("not the secret"), cr.Username), "-p", udp))
	})

	t.Run("phonexd credentials on coturn", func(t *testing.T) {
		ts := requirePeer(t, "turnserver")
		dir := t.TempDir()
		port := freeport.Port(t)
		conf := fmt.Sprintf(`listening-ip=127.0.0.1
relay-ip=127.0.0.1
listening-port=%d
min-port=52000
max-port=52999
realm=example.org
use-auth-secret
static-auth-secret=%s
fingerprint
allow-loopback-peers
no-tls
no-dtls
no-cli
no-multicast-peers
simple-log
log-file=%s
pidfile=%s
userdb=%s
`, port, secret, filepath.Join(dir, "turn.log"), filepath.Join(dir, "turnserver.pid"), filepath.Join(dir, "turndb"))
		if err := os.WriteFile(filepath.Join(dir, "turnserver.conf"), []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(ts, "-c", filepath.Join(dir, "turnserver.conf"))
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		p := strconv.Itoa(port)
		var out string
		for i := 0; i < 20; i++ { // until coturn listens
			if out = uclient(t, uc, "-u", cr.Username, "-w", cr.Password, "-p", p); strings.Contains(out, "tot_recv_msgs=40") {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		ok(t, out)
		refused(t, uclient(t, uc, "-u", expired, "-w", restPassword(secret, expired), "-p", p))
	})
}

// TestRelayStandalone: phonexd relay runs the relay alone on another
// "host" (a directory holding only phonexd.conf and the node's
// relay.secret); the node, with its own relay off, hands out that relay's
// URI from relay_urls, and the credentials work there.
func TestRelayStandalone(t *testing.T) {
	uc := requirePeer(t, "turnutils_uclient")
	c := newCluster(t)
	port := strconv.Itoa(freeport.Port(t))
	c.configure("relay_enabled = false", "relay_urls = turn:127.0.0.1:"+port+"?transport=udp, stun:127.0.0.1:"+port)
	c.n = serve(t, c.data)
	c.device("alpha", "laptop", true)
	cr := decode[relayCreds](t, c.mustPx("alpha/laptop", "relay-credentials", "--json"))
	if strings.Join(cr.URIs, " ") != "turn:127.0.0.1:"+port+"?transport=udp" || strings.Join(cr.STUN, " ") != "stun:127.0.0.1:"+port {
		t.Fatalf("URIs %v %v", cr.URIs, cr.STUN)
	}

	remote := t.TempDir()
	for _, f := range []string{"phonexd.conf", "relay.secret"} {
		b, err := os.ReadFile(filepath.Join(c.data, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(remote, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(filepath.Join(bin, "phonexd"), "relay", "--data", remote, "--relay-addr", "127.0.0.1:"+port, "--relay-tls-addr", "off")
	stdout, _ := cmd.StdoutPipe()
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	line := make([]byte, 512)
	n, _ := stdout.Read(line)
	if !strings.HasPrefix(string(line[:n]), "relay: udp 127.0.0.1:"+port+" tcp 127.0.0.1:"+port+" (") {
		t.Fatalf("phonexd relay printed %q; log:\n%s", line[:n], logs.String())
	}
	out := uclient(t, uc, "-u", cr.Username, "-w", cr.Password, "-p", port)
	if !strings.Contains(out, "tot_recv_msgs=40") || !strings.Contains(out, "Total lost packets 0 ") {
		t.Fatalf("turnutils_uclient through phonexd relay:\n%s", out)
	}
	// Without the secret the relay refuses to start.
	os.Remove(filepath.Join(remote, "relay.secret"))
	if r := run(t, nil, "phonexd", "relay", "--data", remote, "--relay-addr", "127.0.0.1:0"); r.code == 0 || !strings.Contains(r.err, "relay.secret") {
		t.Fatalf("relay without a secret: exit %d, %s", r.code, r.err)
	}
}

// TestCallThroughClusterRelay: calls forced onto the cluster's relay
// (--relay): with the URI and credentials phonex relay-credentials printed,
// and with a profile alone (the call fetches them itself). Both ends report
// the relay path, the SAS match and the tone crosses, so the relayed media
// is the ZRTP-keyed SRTP of the two ends.
func TestCallThroughClusterRelay(t *testing.T) {
	c := newCluster(t)
	c.configure("relay_addr = 127.0.0.1:0", "relay_tls_addr = ")
	c.n = serve(t, c.data)
	c.device("alpha", "laptop", true)
	c.device("bravo", "phone", true)
	cr := decode[relayCreds](t, c.mustPx("alpha/laptop", "relay-credentials", "--json"))
	turnUDP := "turn:127.0.0.1:" + cr.port(t, "turn", "udp") + "?transport=udp"

	tmp := t.TempDir()
	home := filepath.Join(tmp, "home")
	os.MkdirAll(home, 0o700)
	env := []string{"HOME=" + home, "PHONEX_TURN_PASSWORD=" + cr.Password}
	tone := filepath.Join(tmp, "tone440.wav")
	writeTone(t, tone, 16000, 440, 4)
	for i, tc := range []struct {
		name           string
		caller, callee []string
	}{
		{"credentials by flag", []string{"--zrtp-cache", filepath.Join(tmp, "za"), "--relay", "--ice-server", turnUDP, "--turn-user", cr.Username},
			[]string{"--zrtp-cache", filepath.Join(tmp, "zb")}},
		{"from the profile's cluster", []string{"--profile", c.profile("alpha/laptop"), "--password-file", c.pw, "--relay"},
			[]string{"--profile", c.profile("bravo/phone"), "--password-file", c.pw}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := filepath.Join(tmp, fmt.Sprintf("rec%d.wav", i))
			port := freeport.Port(t)
			ans := startPhonexEnv(t, env, append([]string{"answer", "--direct", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--record", rec,
				"--json"}, tc.callee...)...)
			ans.waitEvent(t, "listening", 20*time.Second)
			call := startPhonexEnv(t, env, append([]string{"call", fmt.Sprintf("sip:x@127.0.0.1:%d", port), "--direct", "--play", tone,
				"--json"}, tc.caller...)...)
			talk(t, call, ans, 3*time.Second)
			a, b := call.wait(t, 30*time.Second), ans.wait(t, 30*time.Second)
			if a["secure"].SAS == "" || a["secure"].SAS != b["secure"].SAS {
				t.Fatalf("SAS %q and %q\n%s\n%s", a["secure"].SAS, b["secure"].SAS, call.out.String(), ans.out.String())
			}
			for who, p := range map[string]*proc{"caller": call, "callee": ans} {
				if path, endPath, _ := pathEvents(t, p); path != "relay" || endPath != "relay" {
					t.Errorf("%s: path %q, end-of-call path %q, want relay\n%s", who, path, endPath, p.out.String())
				}
			}
			if f := dominant(t, rec); f < 435 || f > 445 {
				t.Errorf("recorded %.1f Hz, want 440", f)
			}
		})
	}
}
