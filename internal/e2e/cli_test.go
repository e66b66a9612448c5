package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCLIManners checks what both commands say about a wrong or
// questioning command line, without a node.
func TestCLIManners(t *testing.T) {
	tmp := t.TempDir()
	cases := []struct {
		name      string
		bin       string
		args      []string
		code      int
		out, errs []string // substrings of stdout, stderr
	}{
		{"unknown command", "phonex", []string{"sned", "x"}, 2, nil, []string{`unknown command "sned"`, `did you mean "send"`}},
		{"unknown command far from all", "phonex", []string{"zzzzzzzz"}, 2, nil, []string{`unknown command "zzzzzzzz"`}},
		{"unknown node command", "phonexd", []string{"usr"}, 2, nil, []string{`unknown command "usr"`, `did you mean "user"`}},
		{"unknown node subcommand", "phonexd", []string{"device", "revok"}, 2, nil, []string{`unknown command "device revok"`, `did you mean "device revoke"`}},
		{"enroll without server", "phonex", []string{"enroll", "a@example.org", "--code", "C", "--ca-file", "ca.pem"}, 2, nil, []string{"missing required flag --server"}},
		{"enroll without code", "phonex", []string{"enroll", "a@example.org", "--server", "127.0.0.1:1", "--ca-file", "ca.pem"}, 2, nil, []string{"missing required flag --code"}},
		{"enroll without CA", "phonex", []string{"enroll", "a@example.org", "--server", "127.0.0.1:1", "--code", "C"}, 2, nil, []string{"missing required flag --ca-file or --ca-fingerprint"}},
		{"answer without listen", "phonex", []string{"answer", "--direct"}, 2, nil, []string{"missing required flag --listen"}},
		{"call without direct", "phonex", []string{"call", "sip:a@127.0.0.1:5060"}, 2, nil, []string{"missing required flag --direct"}},
		{"init without domain", "phonexd", []string{"init", "--data", filepath.Join(tmp, "d")}, 2, nil, []string{"missing required flag --domain"}},
		{"add-sip without name", "phonexd", []string{"device", "add-sip", "--data", filepath.Join(tmp, "d"), "a@example.org"}, 2, nil, []string{"missing required flag --name"}},
		{"mistyped flag", "phonex", []string{"enroll", "a@example.org", "--sever", "h:1"}, 2, nil, []string{"-sever", "did you mean --server?"}},
		{"help of a command", "phonex", []string{"help", "send"}, 0, []string{"usage: phonex send"}, nil},
		{"node help of a command", "phonexd", []string{"help", "user"}, 0, []string{"usage: phonexd user"}, nil},
		{"help of an unknown command", "phonex", []string{"help", "sned"}, 2, nil, []string{`did you mean "send"`}},
		{"phonex version", "phonex", []string{"--version"}, 0, []string{"phonex "}, nil},
		{"phonexd version", "phonexd", []string{"--version"}, 0, []string{"phonexd "}, nil},
		{"passwd help names the new password's sources", "phonex", []string{"passwd", "--help"}, 0, []string{"usage: phonex passwd", "PHONEX_NEW_PASSWORD", "-new-password-file"}, nil},
	}
	for _, sub := range []string{"enroll", "login", "whoami", "contacts", "devices", "passwd", "send", "listen", "inbox", "read", "resend", "call", "answer", "verify-call"} {
		cases = append(cases, struct {
			name      string
			bin       string
			args      []string
			code      int
			out, errs []string
		}{"help " + sub, "phonex", []string{sub, "--help"}, 0, []string{"usage: phonex " + sub, "Options:"}, nil})
	}
	for _, sub := range [][]string{{"init"}, {"serve"}, {"user"}, {"user", "add"}, {"device"}, {"device", "add-sip"}} {
		cases = append(cases, struct {
			name      string
			bin       string
			args      []string
			code      int
			out, errs []string
		}{"help " + strings.Join(sub, " "), "phonexd", append(sub, "--help"), 0, []string{"usage: phonexd " + sub[0], "Options:"}, nil})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, nil, c.bin, c.args...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, c.code, r.out, r.err)
			}
			for _, s := range c.out {
				if !strings.Contains(r.out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, r.out)
				}
			}
			for _, s := range c.errs {
				if !strings.Contains(r.err, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.err)
				}
			}
			if c.code == 0 && r.err != "" {
				t.Errorf("stderr not empty: %s", r.err)
			}
		})
	}
}

// TestCLIErrorsPrintedOnce: a bad flag is reported once, not by the flag
// package and again by the command.
func TestCLIErrorsPrintedOnce(t *testing.T) {
	for _, c := range []struct {
		bin  string
		args []string
	}{
		{"phonex", []string{"whoami", "--bogus"}},
		{"phonex", []string{"send", "--bogus", "a@example.org", "hi"}},
		{"phonexd", []string{"user", "list", "--bogus"}},
		{"phonexd", []string{"serve", "--bogus"}},
	} {
		r := run(t, nil, c.bin, c.args...)
		if r.code != 2 || strings.Count(r.err, "-bogus") != 1 || r.out != "" {
			t.Errorf("%s %v: exit %d, stderr:\n%s", c.bin, c.args, r.code, r.err)
		}
	}
}

// TestCLIWithNode checks the messages that need a node: the enroll hint of
// 'phonexd user add', plurals, passwd naming PHONEX_NEW_PASSWORD, and the
// ready line of 'phonex listen'.
func TestCLIWithNode(t *testing.T) {
	c := newCluster(t)
	// A node listening on every address: the hint must name a reachable
	// host from the configuration, not the wildcard.
	confPath := filepath.Join(c.data, "phonexd.conf")
	conf, err := os.ReadFile(confPath)
	if err != nil {
		t.Fatal(err)
	}
	conf = []byte(strings.Replace(string(conf), "api_addr = 127.0.0.1:8443", "api_addr = 0.0.0.0:9443", 1))
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	pemData, err := os.ReadFile(filepath.Join(c.data, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemData)
	if block == nil {
		t.Fatal("ca.pem: no PEM block")
	}
	sum := sha256.Sum256(block.Bytes)
	fp := hex.EncodeToString(sum[:])

	add := mustRun(t, nil, "phonexd", "user", "add", "--data", c.data, "alpha@example.org")
	if want := "--server 127.0.0.1:9443 --ca-fingerprint " + fp + " --code "; !strings.Contains(add, want) {
		t.Errorf("user add hint lacks %q:\n%s", want, add)
	}
	addJSON := decode[map[string]string](t, mustRun(t, nil, "phonexd", "user", "add", "--data", c.data, "india@example.org", "--json"))
	if addJSON["server"] != "127.0.0.1:9443" || addJSON["ca_sha256"] != fp || addJSON["code"] == "" {
		t.Errorf("user add --json: %v", addJSON)
	}
	code := ""
	for _, l := range strings.Split(add, "\n") {
		if rest, ok := strings.CutPrefix(l, "activation code: "); ok {
			code = strings.Fields(rest)[0]
		}
	}
	c.n = serve(t, c.data)
	mustRun(t, nil, "phonex", "enroll", "alpha@example.org", "--profile", c.profile("alpha/laptop"), "--server", c.n.api,
		"--ca-fingerprint", fp, "--code", code, "--device", "laptop", "--password-file", c.pw)
	c.device("bravo", "phone", true)

	if out := c.mustPx("alpha/laptop", "contacts", "add", "bravo@example.org"); !strings.Contains(out, "(1 device)") {
		t.Errorf("contacts add: %q, want \"(1 device)\"", out)
	}
	if out := c.mustPx("alpha/laptop", "devices"); !strings.Contains(out, "\n1 device\n") {
		t.Errorf("devices: %q, want a line \"1 device\"", out)
	}
	if out := c.mustPx("alpha/laptop", "read", "bravo@example.org"); !strings.Contains(out, "marked 0 messages from") {
		t.Errorf("read: %q", out)
	}
	c.device("alpha", "desktop", false)
	if out := c.mustPx("alpha/laptop", "devices"); !strings.Contains(out, "\n2 devices\n") {
		t.Errorf("devices: %q, want a line \"2 devices\"", out)
	}

	// passwd with the old password but no new one, and no terminal.
	r := c.px("alpha/laptop", "passwd")
	if r.code == 0 || !strings.Contains(r.err, "PHONEX_NEW_PASSWORD") || strings.Count(r.err, "\n") != 1 {
		t.Errorf("passwd without a new password: exit %d, stderr %q", r.code, r.err)
	}

	for _, jsonOut := range []bool{true, false} {
		args := []string{"listen", "--for", "30s", "--profile", c.profile("alpha/laptop"), "--password-file", c.pw}
		if jsonOut {
			args = append(args, "--json")
		}
		cmd := exec.Command(filepath.Join(bin, "phonex"), args...)
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Outstanding notices may come first; the ready line follows them.
		ready := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				l := sc.Text()
				var e struct{ Type string }
				if jsonOut && json.Unmarshal([]byte(l), &e) == nil && e.Type == "ready" ||
					!jsonOut && strings.Contains(l, "ready: listening as alpha@example.org/laptop") {
					ready <- l
					return
				}
			}
		}()
		select {
		case <-ready:
		case <-time.After(20 * time.Second):
			t.Errorf("listen (json %v): no ready line within 20s", jsonOut)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}
}
