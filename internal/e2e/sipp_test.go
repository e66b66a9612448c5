package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/freeport"
)

// TestSippMessage proves the proxy speaks standard SIP: SIPp (a third-party
// SIP tester) sends MESSAGEs through phonexd, over TLS (stunnel, since
// Debian's SIPp is built without TLS) with digest credentials from
// 'phonexd device add-sip', to a registered PhoneX device.
func TestSippMessage(t *testing.T) {
	sipp := requirePeer(t, "sipp")
	stunnel := requirePeer(t, "stunnel")
	c := newCluster(t)
	c.n = serve(t, c.data)
	c.device("alpha", "a1", true)
	mustRun(t, nil, "phonexd", "user", "add", "--data", c.data, "sippy@example.org")
	cred := decode[map[string]string](t, mustRun(t, nil, "phonexd", "device", "add-sip", "--data", c.data, "sippy@example.org", "--name", "sipp", "--json"))
	c.mustPx("alpha/a1", "contacts", "add", "sippy@example.org")
	a1 := c.listen("alpha/a1")
	waitFor(t, "alpha/a1 registered", 20*time.Second, func() bool { return a1.has("ready", "") })

	// stunnel: TCP on a local port, TLS to phonexd, verifying its certificate.
	tunnel := freeport.Addr(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "stunnel.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`foreground = yes
pid =
[sip]
client = yes
accept = %s
connect = %s
verifyChain = yes
CAfile = %s
checkIP = 127.0.0.1
`, tunnel, c.n.sip, filepath.Join(c.data, "ca.pem"))), 0o600)
	st := exec.Command(stunnel, conf)
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { st.Process.Kill(); st.Wait() }()
	// stunnel starts slowly on a loaded machine: wait until it accepts.
	waitFor(t, "stunnel listening on "+tunnel, 15*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", tunnel, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})

	// SIPp's digest uri defaults to the address it dials; the node binds it
	// to the Request-URI (RFC 2617 §3.2.2.5), as phones do.
	const n = 5
	cmd := exec.Command(sipp, "-sf", "testdata/sipp_message.xml", "-s", "alpha", "-t", "t1", "-auth_uri", "alpha@example.org",
		"-i", "127.0.0.1", "-p", strings.Split(freeport.Addr(t), ":")[1], tunnel,
		"-au", cred["username"], "-ap", cred["password"], "-m", fmt.Sprint(n), "-r", "5", "-nostdin", "-timeout", "30s", "-trace_err")
	cmd.Dir = dir
	abs, _ := filepath.Abs("testdata/sipp_message.xml")
	cmd.Args[2] = abs
	out, err := cmd.CombinedOutput()
	if err != nil {
		logs, _ := filepath.Glob(filepath.Join(dir, "*errors.log"))
		var detail []byte
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			detail = append(detail, b...)
		}
		t.Fatalf("sipp failed: %v\n%s\n%s", err, tail(out), detail)
	}
	waitFor(t, "messages from sipp", 15*time.Second, func() bool {
		return len(a1.texts(func(e event) bool { return e.From == "sippy@example.org" && e.Insecure })) == n
	})

	// Wrong credentials are refused with an explicit 403: the scenario
	// succeeds only if that answer comes, and fails on any other.
	refused, _ := filepath.Abs("testdata/sipp_message_refused.xml")
	bad := exec.Command(sipp, "-sf", refused, "-s", "alpha", "-t", "t1", "-auth_uri", "alpha@example.org", "-i", "127.0.0.1",
		"-p", strings.Split(freeport.Addr(t), ":")[1], tunnel, "-au", cred["username"], "-ap", "wrong", "-m", "1", "-nostdin", "-timeout", "10s", "-trace_err")
	bad.Dir = dir
	if out, err := bad.CombinedOutput(); err != nil {
		t.Fatalf("sipp with a wrong password did not get 401 then 403: %v\n%s", err, tail(out))
	}
}

func tail(b []byte) string {
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
