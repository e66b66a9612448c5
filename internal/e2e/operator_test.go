package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/freeport"
)

// TestEnrollFromQRCard: phonexd user add --qr-png writes a card, the real
// phonex enrolls a device from the picture alone, a card whose CA
// fingerprint is not the node's is refused (and its code stays usable),
// and the audit log shows the operator's actions without the codes.
func TestEnrollFromQRCard(t *testing.T) {
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	mustRun(t, nil, "phonexd", "init", "--data", data, "--domain", "example.org", "--host", "127.0.0.1")
	// The card names api_addr from phonexd.conf: give the node a free port
	// there and serve on it.
	api := freeport.Addr(t)
	conf := filepath.Join(data, "phonexd.conf")
	b, _ := os.ReadFile(conf)
	b = regexp.MustCompile(`(?m)^api_addr = .*$`).ReplaceAll(b, []byte("api_addr = "+api))
	if err := os.WriteFile(conf, b, 0o600); err != nil {
		t.Fatal(err)
	}
	n := serveOn(t, data, api, "127.0.0.1:0")

	card := filepath.Join(tmp, "alpha.png")
	out := mustRun(t, nil, "phonexd", "user", "add", "--data", data, "alpha@example.org", "--qr", "--qr-png", card)
	if !strings.Contains(out, "▀") || !strings.Contains(out, "secret activation code") || !strings.Contains(out, "card written to "+card) {
		t.Fatalf("user add --qr:\n%s", out)
	}
	if st, err := os.Stat(card); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("card file: %v %v", st, err)
	}
	pw := filepath.Join(tmp, "pw")
	os.WriteFile(pw, []byte("correct horse battery\n"), 0o600)
	who := decode[map[string]string](t, mustRun(t, nil, "phonex", "enroll", "--qr-image", card, "--profile", filepath.Join(tmp, "alpha"),
		"--device", "laptop", "--password-file", pw, "--json"))
	if who["identity"] != "alpha@example.org/laptop" || who["server"] != n.addr {
		t.Fatalf("enrolled from the card: %v", who)
	}
	// The device works: it reads its account back from the node.
	if w := mustRun(t, nil, "phonex", "whoami", "--profile", filepath.Join(tmp, "alpha"), "--password-file", pw); !strings.Contains(w, "alpha@example.org/laptop") {
		t.Fatalf("whoami: %s", w)
	}

	add := decode[map[string]string](t, mustRun(t, nil, "phonexd", "user", "add", "--data", data, "bravo@example.org", "--qr", "--json"))
	good := add["card"]
	if !strings.HasPrefix(good, "phonex://enroll?") || !strings.Contains(good, add["ca_sha256"]) {
		t.Fatalf("card uri %q", good)
	}
	wrong := strings.Replace(good, add["ca_sha256"], strings.Repeat("ab", 32), 1)
	r := run(t, nil, "phonex", "enroll", "--qr-text", wrong, "--profile", filepath.Join(tmp, "bravo-wrong"), "--password-file", pw)
	if r.code == 0 || !strings.Contains(r.err, "does not match") {
		t.Fatalf("card with another CA: exit %d %s", r.code, r.err)
	}
	// The card's options replace the manual ones, and the user must match.
	if r := run(t, nil, "phonex", "enroll", "--qr-text", good, "--server", n.addr, "--profile", filepath.Join(tmp, "x")); r.code != 2 {
		t.Fatalf("card and --server: exit %d %s", r.code, r.err)
	}
	if r := run(t, nil, "phonex", "enroll", "carol@example.org", "--qr-text", good, "--profile", filepath.Join(tmp, "x"), "--password-file", pw); r.code == 0 || !strings.Contains(r.err, "the card is for bravo@example.org") {
		t.Fatalf("card for another user: exit %d %s", r.code, r.err)
	}
	if r := run(t, nil, "phonex", "enroll", "--qr-text", "https://example.org/", "--profile", filepath.Join(tmp, "x"), "--password-file", pw); r.code == 0 || !strings.Contains(r.err, "not a PhoneX enrollment card") {
		t.Fatalf("not a card: exit %d %s", r.code, r.err)
	}
	who = decode[map[string]string](t, mustRun(t, nil, "phonex", "enroll", "bravo@example.org", "--qr-text", good, "--profile", filepath.Join(tmp, "bravo"),
		"--device", "phone", "--password-file", pw, "--json"))
	if who["identity"] != "bravo@example.org/phone" {
		t.Fatalf("enrolled from the card text: %v", who)
	}

	audit := mustRun(t, nil, "phonexd", "audit", "--data", data)
	if strings.Count(audit, "user.add") != 2 || !strings.Contains(audit, "cli:") || strings.Contains(audit, add["code"]) {
		t.Fatalf("audit:\n%s", audit)
	}
}

// TestPolicyAppliesToRunningNode: 'phonexd policy set', another process,
// changes limits of the running node, which enforces them on the real
// phonex's next sends without a restart, and lifts them on reset.
func TestPolicyAppliesToRunningNode(t *testing.T) {
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	fp := decode[map[string]string](t, mustRun(t, nil, "phonexd", "init", "--data", data, "--domain", "example.org", "--host", "127.0.0.1", "--json"))["ca_sha256"]
	n := serve(t, data)
	pw := filepath.Join(tmp, "pw")
	os.WriteFile(pw, []byte("correct horse battery\n"), 0o600)
	profiles := map[string]string{}
	for _, u := range []string{"alpha", "bravo"} {
		add := decode[map[string]string](t, mustRun(t, nil, "phonexd", "user", "add", "--data", data, u+"@example.org", "--json"))
		profiles[u] = filepath.Join(tmp, u)
		mustRun(t, nil, "phonex", "enroll", u+"@example.org", "--profile", profiles[u], "--server", n.addr, "--ca-fingerprint", fp,
			"--code", add["code"], "--device", "d", "--password-file", pw)
	}
	mustRun(t, nil, "phonex", "contacts", "add", "bravo@example.org", "--profile", profiles["alpha"], "--password-file", pw)
	mustRun(t, nil, "phonex", "contacts", "add", "alpha@example.org", "--profile", profiles["bravo"], "--password-file", pw)
	send := func(text string) result {
		return run(t, nil, "phonex", "send", "bravo@example.org", text, "--profile", profiles["alpha"], "--password-file", pw)
	}
	if r := send("before any policy"); r.code != 0 {
		t.Fatalf("send: %d %s", r.code, r.err)
	}
	policy := func(args ...string) {
		t.Helper()
		mustRun(t, nil, "phonexd", append(append([]string{"policy"}, args...), "--data", data)...)
	}

	// A policy reaches the running node at its next poll of the store:
	// each check below sends until the node's answer changes, within 20 s.
	until := func(what string, changed func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !changed(); {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 20 s", what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// A rate of one message per 100 s with a burst of one: alpha is
	// refused (the node's own rate lets a send a second through).
	policy("set", "--account", "alpha@example.org", "message_burst", "1")
	policy("set", "--account", "alpha@example.org", "message_rate", "0.01")
	until("sends refused under a burst of one at 0.01/s", func() bool {
		r := send("under a tight rate")
		refused := r.code != 0 && strings.Contains(strings.ToLower(r.err), "rate limit")
		if r.code != 0 && !refused {
			t.Fatalf("send under the rate policy failed otherwise: %d %s", r.code, r.err)
		}
		return refused
	})
	policy("reset", "--account", "alpha@example.org", "message_rate")
	policy("reset", "--account", "alpha@example.org", "message_burst")
	until("a send after the reset", func() bool {
		r := send("rate lifted")
		if r.code != 0 && !strings.Contains(strings.ToLower(r.err), "rate limit") {
			t.Fatalf("send after the reset: %d %s", r.code, r.err)
		}
		return r.code == 0
	})

	// bravo (not listening) holds alpha's messages; a storage limit of 1 KiB
	// for bravo refuses the next one.
	policy("set", "--account", "bravo@example.org", "max_stored_bytes", "1024")
	until("a send over bravo's storage refused", func() bool {
		r := send("over bravo's storage")
		if r.code != 0 && !strings.Contains(strings.ToLower(r.err), "storage full") {
			t.Fatalf("send over bravo's storage policy: %d %s", r.code, r.err)
		}
		return r.code != 0
	})
	show := mustRun(t, nil, "phonexd", "policy", "show", "--data", data, "--account", "bravo@example.org")
	if !strings.Contains(strings.Join(strings.Fields(show), " "), "max_stored_bytes 1024 account") {
		t.Fatalf("policy show:\n%s", show)
	}
	audit := mustRun(t, nil, "phonexd", "audit", "--data", data, "--json")
	if strings.Count(audit, `"policy.set"`) != 5 {
		t.Fatalf("audit: %s", audit)
	}
}
