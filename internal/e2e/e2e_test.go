// Package e2e runs the real phonexd and phonex binaries against each other
// on loopback.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/testpg"
)

var bin string

func TestMain(m *testing.M) {
	natHelperMain() // a re-executed binary in a test namespace runs its role and exits
	dir, err := os.MkdirTemp("", "phonex-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, c := range []string{"phonexd", "phonex"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, c), "../../cmd/"+c).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", c, err, out)
			os.Exit(1)
		}
	}
	bin = dir
	code := m.Run()
	testpg.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	out, err string
	code     int
}

func run(t *testing.T, env []string, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	r := result{out: o.String(), err: e.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return r
}

func mustRun(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	r := run(t, env, name, args...)
	if r.code != 0 {
		t.Fatalf("%s %s: exit %d\n%s%s", name, strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return v
}

// node is a running phonexd serve.
type node struct {
	cmd      *exec.Cmd
	addr     string // API address, set once every listener is up
	api, sip string
	phones   string // the standard phones' port, when on
	logs     *lockedBuffer
}

func serve(t *testing.T, data string) *node {
	return serveOn(t, data, "127.0.0.1:0", "127.0.0.1:0")
}

func serveOn(t *testing.T, data, api, sipAddr string) *node {
	t.Helper()
	return serveUnder(t, nil, data, api, sipAddr)
}

// serveUnder starts phonexd through a wrapper command (prlimit ...), if any.
func serveUnder(t *testing.T, wrap []string, data, api, sipAddr string) *node {
	t.Helper()
	// The phone port defaults to the one after the SIP port; with a SIP
	// port picked free for the test, that next port may belong to another
	// process, so the phone port is picked by the kernel too (tests read
	// it from the node's output).
	args := append(append([]string{}, wrap...), filepath.Join(bin, "phonexd"), "serve", "--data", data, "--api-addr", api, "--sip-addr", sipAddr,
		"--sip-phone-addr", "127.0.0.1:0")
	cmd := exec.Command(args[0], args[1:]...)
	stdout, _ := cmd.StdoutPipe()
	n := &node{cmd: cmd, logs: &lockedBuffer{}}
	cmd.Stderr = n.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(20 * time.Second)
	for n.addr == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("phonexd exited: %s", n.logs)
			}
			if rest, ok := strings.CutPrefix(l, "api: https://"); ok {
				n.api = strings.Fields(rest)[0]
			}
			if rest, ok := strings.CutPrefix(l, "phones: sip:"); ok {
				n.phones = strings.TrimSuffix(strings.Fields(rest)[0], ";transport=tls")
			}
			if rest, ok := strings.CutPrefix(l, "sip: sips:"); ok {
				n.sip = strings.Fields(rest)[0]
				n.addr = n.api
			}
		case <-deadline:
			t.Fatal("phonexd did not start")
		}
	}
	t.Cleanup(func() { n.stop(t) })
	return n
}

func (n *node) stop(t *testing.T) {
	if n.cmd.ProcessState != nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- n.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("phonexd did not exit cleanly on SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		n.cmd.Process.Kill()
		t.Error("phonexd did not stop within 10s of SIGTERM")
	}
}

func TestWalkthrough(t *testing.T) {
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	initOut := decode[map[string]string](t, mustRun(t, nil, "phonexd", "init", "--data", data, "--domain", "example.org", "--host", "127.0.0.1", "--json"))
	fp := initOut["ca_sha256"]
	conf, _ := os.ReadFile(filepath.Join(data, "phonexd.conf"))
	for _, key := range []string{"domain = example.org", "cert_validity", "code_ttl", "api_addr", "sip_addr", "device_attempts_lock"} {
		if !bytes.Contains(conf, []byte(key)) {
			t.Errorf("phonexd.conf lacks %q", key)
		}
	}
	if st, _ := os.Stat(filepath.Join(data, "ca.key")); st.Mode().Perm() != 0o600 {
		t.Errorf("ca.key mode %v", st.Mode().Perm())
	}
	n := serve(t, data)

	alphaAdd := decode[map[string]string](t, mustRun(t, nil, "phonexd", "user", "add", "--data", data, "alpha@example.org", "--json"))
	bravoAdd := decode[map[string]string](t, mustRun(t, nil, "phonexd", "user", "add", "--data", data, "bravo@example.org", "--json"))
	if alphaAdd["code"] == "" || alphaAdd["expires"] == "" {
		t.Fatalf("user add: %v", alphaAdd)
	}
	pwFile := filepath.Join(tmp, "pw")
	os.WriteFile(pwFile, []byte("correct horse battery\n"), 0o600)
	laptop, desktop, phone := filepath.Join(tmp, "laptop"), filepath.Join(tmp, "desktop"), filepath.Join(tmp, "phone")

	who := decode[map[string]string](t, mustRun(t, nil, "phonex", "enroll", "alpha@example.org", "--profile", laptop, "--server", n.addr,
		"--ca-fingerprint", fp, "--code", alphaAdd["code"], "--device", "laptop", "--password-file", pwFile, "--json"))
	if who["identity"] != "alpha@example.org/laptop" || who["suite"] != "ec" || who["ca_sha256"] != fp {
		t.Fatalf("enroll: %v", who)
	}
	env := []string{"PHONEX_PASSWORD=bravo's password"}
	mustRun(t, env, "phonex", "enroll", "bravo@example.org", "--profile", phone, "--server", n.addr,
		"--ca-file", filepath.Join(data, "ca.pem"), "--code", bravoAdd["code"], "--device", "phone", "--suite", "rsa", "--rsa-bits", "2048")

	// A reused code is refused with a clear message.
	r := run(t, env, "phonex", "enroll", "bravo@example.org", "--profile", filepath.Join(tmp, "again"), "--server", n.addr,
		"--ca-file", filepath.Join(data, "ca.pem"), "--code", bravoAdd["code"])
	if r.code == 0 || !strings.Contains(r.err, "already") {
		t.Fatalf("reused code: %d %s", r.code, r.err)
	}

	w := decode[map[string]any](t, mustRun(t, nil, "phonex", "whoami", "--profile", laptop, "--password-file", pwFile, "--json"))
	for _, k := range []string{"identity", "device", "suite", "serial", "not_after", "server", "ca_sha256"} {
		if w[k] == nil || w[k] == "" {
			t.Errorf("whoami lacks %s: %v", k, w)
		}
	}
	// A second device of alpha with the password.
	mustRun(t, nil, "phonex", "login", "alpha@example.org", "--profile", desktop, "--server", n.addr, "--ca-fingerprint", fp,
		"--device", "desktop", "--password-file", pwFile)
	devs := decode[[]map[string]any](t, mustRun(t, nil, "phonex", "devices", "--profile", desktop, "--password-file", pwFile, "--json"))
	if len(devs) != 2 {
		t.Fatalf("devices: %v", devs)
	}

	// Contacts.
	ct := decode[map[string]any](t, mustRun(t, nil, "phonex", "contacts", "add", "bravo@example.org", "--profile", laptop, "--password-file", pwFile, "--json"))
	if ct["user"] != "bravo@example.org" || len(ct["devices"].([]any)) != 1 {
		t.Fatalf("contact add: %v", ct)
	}
	r = run(t, nil, "phonex", "contacts", "add", "nobody@example.org", "--profile", laptop, "--password-file", pwFile)
	if r.code == 0 || !strings.Contains(r.err, "no account nobody@example.org") {
		t.Fatalf("unknown contact: %d %q", r.code, r.err)
	}
	list := decode[[]map[string]any](t, mustRun(t, nil, "phonex", "contacts", "list", "--profile", laptop, "--password-file", pwFile, "--json"))
	if len(list) != 1 {
		t.Fatalf("contact list: %v", list)
	}
	text := mustRun(t, nil, "phonex", "contacts", "--profile", laptop, "--password-file", pwFile)
	if !strings.Contains(text, "bravo@example.org") {
		t.Fatalf("contact list text: %q", text)
	}
	mustRun(t, nil, "phonex", "contacts", "remove", "bravo@example.org", "--profile", laptop, "--password-file", pwFile)

	// A contact's devices at the first look are trusted; a device added
	// later is marked until the user trusts it.
	mustRun(t, env, "phonex", "contacts", "add", "alpha@example.org", "--profile", phone)
	if text := mustRun(t, env, "phonex", "contacts", "--profile", phone); strings.Contains(text, "NEW DEVICE") {
		t.Fatalf("first devices marked new: %q", text)
	}
	mustRun(t, nil, "phonex", "login", "alpha@example.org", "--profile", filepath.Join(tmp, "tablet"), "--server", n.addr, "--ca-fingerprint", fp,
		"--device", "tablet", "--password-file", pwFile)
	text = mustRun(t, env, "phonex", "contacts", "--profile", phone)
	if !strings.Contains(text, "NEW DEVICE") || !strings.Contains(text, "contacts trust alpha@example.org/tablet") {
		t.Fatalf("new device not shown: %q", text)
	}
	if r := run(t, env, "phonex", "contacts", "trust", "--profile", phone); r.code != 2 || !strings.Contains(r.err, "USER@DOMAIN/DEVICE") {
		t.Fatalf("trust without a device: %d %q", r.code, r.err)
	}
	mustRun(t, env, "phonex", "contacts", "trust", "alpha@example.org/tablet", "--profile", phone)
	if text := mustRun(t, env, "phonex", "contacts", "--profile", phone); strings.Contains(text, "NEW DEVICE") {
		t.Fatalf("trusted device still marked: %q", text)
	}
	mustRun(t, nil, "phonexd", "device", "revoke", "--data", data, "alpha@example.org/tablet")

	// Password change on the laptop; the desktop keeps working.
	newPw := filepath.Join(tmp, "newpw")
	os.WriteFile(newPw, []byte("a much better password\n"), 0o600)
	mustRun(t, nil, "phonex", "passwd", "--profile", laptop, "--password-file", pwFile, "--new-password-file", newPw)
	if r := run(t, nil, "phonex", "whoami", "--profile", laptop, "--password-file", pwFile); r.code == 0 || !strings.Contains(r.err, "wrong password") {
		t.Fatalf("old password after passwd: %d %q", r.code, r.err)
	}
	mustRun(t, nil, "phonex", "whoami", "--profile", laptop, "--password-file", newPw)
	mustRun(t, nil, "phonex", "whoami", "--profile", desktop, "--password-file", pwFile)

	// Revocation while the server runs.
	mustRun(t, nil, "phonexd", "device", "revoke", "--data", data, "alpha@example.org/desktop")
	if r := run(t, nil, "phonex", "whoami", "--profile", desktop, "--password-file", pwFile); r.code == 0 || !strings.Contains(r.err, "revoked") {
		t.Fatalf("revoked device: %d %q", r.code, r.err)
	}
	ds := decode[[]map[string]any](t, mustRun(t, nil, "phonexd", "device", "list", "--data", data, "--json"))
	if len(ds) != 4 {
		t.Fatalf("device list: %v", ds)
	}
	users := decode[[]map[string]any](t, mustRun(t, nil, "phonexd", "user", "list", "--data", data, "--json"))
	if len(users) != 2 || users[0]["status"] != "active" {
		t.Fatalf("user list: %v", users)
	}

	// Wrong passwords are counted; the operator lifts the lock.
	bad := []string{"PHONEX_PASSWORD=not the password"}
	r = run(t, bad, "phonex", "whoami", "--profile", phone)
	if r.code == 0 || !strings.Contains(r.err, "wrong password") || !strings.Contains(r.err, "attempts left") {
		t.Fatalf("wrong password: %q", r.err)
	}
	mustRun(t, nil, "phonexd", "device", "unlock", "--data", data, "bravo@example.org/phone")

	// The server's logs and database hold no password and no contact names
	// beyond the contact table.
	n.stop(t)
	if bytes.Contains(n.logs.Bytes(), []byte("correct horse")) || bytes.Contains(n.logs.Bytes(), []byte("bravo's password")) {
		t.Fatal("a password reached the server log")
	}
	db, _ := os.ReadFile(filepath.Join(data, "phonexd.db"))
	if bytes.Contains(db, []byte("correct horse")) {
		t.Fatal("a password reached the server database")
	}
	// The server is gone: a clear error.
	if r := run(t, nil, "phonex", "whoami", "--profile", laptop, "--password-file", newPw); r.code == 0 || !strings.Contains(r.err, "cannot reach the server") {
		t.Fatalf("unreachable: %d %q", r.code, r.err)
	}
}

func TestServeInitialisesMissingDataDir(t *testing.T) {
	data := filepath.Join(t.TempDir(), "fresh")
	n := serve(t, data)
	conf, err := os.ReadFile(filepath.Join(data, "phonexd.conf"))
	if err != nil || !bytes.Contains(conf, []byte("domain = localhost")) {
		t.Fatalf("serve did not initialise %s: %v", data, err)
	}
	act := decode[map[string]string](t, mustRun(t, nil, "phonexd", "user", "add", "--data", data, "alpha@localhost", "--json"))
	mustRun(t, []string{"PHONEX_PASSWORD=password123"}, "phonex", "enroll", "alpha@localhost", "--profile", filepath.Join(t.TempDir(), "p"),
		"--server", n.addr, "--ca-file", filepath.Join(data, "ca.pem"), "--code", act["code"])
	if r := run(t, nil, "phonexd", "user", "add", "--data", data, "alpha@other.org"); r.code == 0 {
		t.Fatal("added a user outside the cluster's domain")
	}
}
