package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/phonex/phonex/internal/qrcard"
	"github.com/phonex/phonex/internal/testpeer"
	"github.com/phonex/phonex/internal/totp"
)

// adminNode is a phonexd serve with the admin panel on.
type adminNode struct {
	*node
	admin string // the panel's address
}

func serveAdmin(t *testing.T, data string) *adminNode {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "phonexd"), "serve", "--data", data, "--api-addr", "127.0.0.1:0", "--sip-addr", "127.0.0.1:0",
		"--sip-phone-addr", "off", "--admin-addr", "127.0.0.1:0")
	stdout, _ := cmd.StdoutPipe()
	n := &adminNode{node: &node{cmd: cmd, logs: &lockedBuffer{}}}
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
	for n.addr == "" || n.admin == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("phonexd exited: %s", n.logs)
			}
			if rest, ok := strings.CutPrefix(l, "api: https://"); ok {
				n.api = strings.Fields(rest)[0]
			}
			if rest, ok := strings.CutPrefix(l, "sip: sips:"); ok {
				n.sip = strings.Fields(rest)[0]
				n.addr = n.api
			}
			if rest, ok := strings.CutPrefix(l, "admin: https://"); ok {
				n.admin = strings.TrimSuffix(strings.Fields(rest)[0], "/")
			}
		case <-deadline:
			t.Fatal("phonexd did not start")
		}
	}
	go func() {
		for range lines {
		}
	}()
	t.Cleanup(func() { n.stop(t) })
	return n
}

// artifactDir is where the browser test's screenshots go: $PHONEX_ARTIFACTS/adminweb
// when set, else a directory under the system's temporary directory that
// is kept and named in the test log.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("PHONEX_ARTIFACTS")
	if dir != "" {
		dir = filepath.Join(dir, "adminweb")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	} else {
		var err error
		if dir, err = os.MkdirTemp("", "phonex-adminweb-artifacts-"); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// spkiPin is the base64 SHA-256 of the node's server key, which Chromium
// is told to accept (the node's CA is not in its trust store).
func spkiPin(t *testing.T, data string) string {
	b, err := os.ReadFile(filepath.Join(data, "server.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("server.pem: no PEM block")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(h[:])
}

// TestAdminPanelBrowser drives the admin panel in a real Chromium as an
// operator would: sign in with password and TOTP, create an account, enroll
// a real device with the code read from the page, see it, revoke it and
// see the device refused, and have forged requests refused.
func TestAdminPanelBrowser(t *testing.T) {
	chromium := testpeer.Require(t, "chromium")
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	mustRun(t, nil, "phonexd", "init", "--data", data, "--domain", "example.org", "--host", "127.0.0.1")
	const adminPW = "panel password for root"
	enr := decode[map[string]string](t, mustRun(t, []string{"PHONEXD_ADMIN_PASSWORD=" + adminPW}, "phonexd", "admin", "add", "--data", data, "root", "--json"))
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(enr["totp_secret"])
	if err != nil || !strings.HasPrefix(enr["otpauth_uri"], "otpauth://totp/") {
		t.Fatalf("admin add: %v %v", enr, err)
	}
	// A victim account for the forged requests, and a contact to message,
	// made with the command.
	mustRun(t, nil, "phonexd", "user", "add", "--data", data, "dave@example.org")
	erinAdd := decode[map[string]string](t, mustRun(t, nil, "phonexd", "user", "add", "--data", data, "erin@example.org", "--json"))
	n := serveAdmin(t, data)
	base := "https://" + n.admin
	shots := artifactDir(t)

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("ignore-certificate-errors-spki-list", spkiPin(t, data)),
		chromedp.UserDataDir(filepath.Join(tmp, "chromium")),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	bctx, cancelC := chromedp.NewContext(actx)
	defer cancelC()
	// The first run starts the browser, under no deadline (a deadline there
	// would stop the browser); every step after has one.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	within := func() context.Context {
		ctx, cancel := context.WithTimeout(bctx, time.Minute)
		t.Cleanup(cancel)
		return ctx
	}
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			buf, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, name+".png"), buf, 0o644)
		})
	}
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(within(), actions...); err != nil {
			t.Fatalf("%s: %v\nphonexd log:\n%s", what, err, n.logs)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(within(), chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(v)
	}
	// waitLocation waits for the page a form's answer redirects to.
	waitLocation := func(part string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if v, err := chromedp.Run(within(), chromedp.Location()); err == nil && strings.Contains(v, part) {
				if err := chromedp.Do(within(), chromedp.WaitReady(chromedp.CSS("body"))); err != nil {
					t.Fatal(err)
				}
				return
			}
		}
		t.Fatalf("the browser did not reach a page with %q", part)
	}
	location := func() string {
		t.Helper()
		v, err := chromedp.Run(within(), chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	// Sign in: password and the current TOTP code.
	step("sign-in page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("signin")), shot("01-sign-in"))
	step("sign in",
		chromedp.SendKeys(chromedp.ID("name"), "root"),
		chromedp.SendKeys(chromedp.ID("password"), adminPW),
		chromedp.SendKeys(chromedp.ID("code"), totp.Code(key, time.Now())),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("accounts")))
	if loc := location(); !strings.HasSuffix(loc, "/accounts") {
		t.Fatalf("after sign-in at %s", loc)
	}

	// Create an account and read its activation code and its QR card from
	// the page.
	step("create account",
		chromedp.SendKeys(chromedp.ID("user"), "carol"),
		chromedp.Click(chromedp.ID("create")),
		chromedp.WaitVisible(chromedp.ID("activation-code")),
		chromedp.WaitVisible(chromedp.CSS("#qr-card svg")),
		shot("02-account-created"))
	code, server, fp := text("#activation-code"), text("#enroll-server"), text("#enroll-fingerprint")
	if len(code) != 19 || server != n.api {
		t.Fatalf("page shows code %q server %q (node API %s)", code, server, n.api)
	}
	png, err := chromedp.Run(within(), chromedp.ScreenshotScale(chromedp.CSS("#qr-card svg"), 2))
	if err != nil {
		t.Fatalf("screenshot of the card: %v", err)
	}
	cardFile := filepath.Join(tmp, "carol-card.png")
	os.WriteFile(cardFile, png, 0o600)
	os.WriteFile(filepath.Join(shots, "02b-qr-card.png"), png, 0o644)
	card, err := qrcard.DecodeImage(bytes.NewReader(png))
	if err != nil {
		t.Fatalf("decode the card shown: %v", err)
	}
	if card.User != "carol@example.org" || card.Server != server || !strings.EqualFold(card.CA, fp) || strings.ReplaceAll(card.Code, "-", "") != strings.ReplaceAll(code, "-", "") {
		t.Fatalf("card %+v, page code %s server %s fingerprint %s", card, code, server, fp)
	}

	// Enroll a real device from the picture of the card alone.
	pw := filepath.Join(tmp, "pw")
	os.WriteFile(pw, []byte("carol's long password\n"), 0o600)
	laptop := filepath.Join(tmp, "laptop")
	who := decode[map[string]string](t, mustRun(t, nil, "phonex", "enroll", "--qr-image", cardFile, "--profile", laptop, "--device", "laptop", "--password-file", pw, "--json"))
	if who["identity"] != "carol@example.org/laptop" {
		t.Fatalf("enrolled from the card: %v", who)
	}
	// A second account, made with the command, to message.
	erin := filepath.Join(tmp, "erin")
	mustRun(t, nil, "phonex", "enroll", "erin@example.org", "--profile", erin, "--server", server, "--ca-fingerprint", fp,
		"--code", erinAdd["code"], "--device", "phone", "--password-file", pw)
	mustRun(t, nil, "phonex", "contacts", "add", "erin@example.org", "--profile", laptop, "--password-file", pw)
	mustRun(t, nil, "phonex", "contacts", "add", "carol@example.org", "--profile", erin, "--password-file", pw)

	// The device appears on the account's page.
	step("device list", chromedp.Navigate(base+"/accounts/carol@example.org"), chromedp.WaitVisible(chromedp.ID("devices")), shot("03-account-devices"))
	if d := text("#devices"); !strings.Contains(d, "carol@example.org/laptop") || !strings.Contains(d, "active") {
		t.Fatalf("device not listed: %q", d)
	}
	if s := text("#summary"); !strings.Contains(s, "1 PhoneX devices") {
		t.Fatalf("summary: %q", s)
	}

	// While the device listens it is registered, on its page and in the
	// live state.
	if r := text(`tr[data-device="carol@example.org/laptop"] .registered`); r != "no" {
		t.Fatalf("registered before listen: %q", r)
	}
	listen := exec.Command(filepath.Join(bin, "phonex"), "listen", "--for", "60s", "--profile", laptop, "--password-file", pw)
	if err := listen.Start(); err != nil {
		t.Fatal(err)
	}
	stopListen := func() {
		if listen.ProcessState == nil {
			listen.Process.Kill()
			listen.Wait()
		}
	}
	defer stopListen()
	registered := ""
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && registered != "yes"; time.Sleep(500 * time.Millisecond) {
		step("reload", chromedp.Navigate(base+"/accounts/carol@example.org"), chromedp.WaitVisible(chromedp.ID("devices")))
		registered = text(`tr[data-device="carol@example.org/laptop"] .registered`)
	}
	if registered != "yes" {
		t.Fatalf("listening device not shown registered: %q", registered)
	}
	step("live state with the device", chromedp.Navigate(base+"/live"), chromedp.WaitVisible(chromedp.ID("live")), shot("04-live-state"))
	if r := text("#live-registrations"); r != "1" {
		t.Fatalf("live registrations: %q", r)
	}
	stopListen()
	step("back to the device", chromedp.Navigate(base+"/accounts/carol@example.org"), chromedp.WaitVisible(chromedp.ID("devices")))

	// A quota changed on the page is enforced by the running node: a
	// message rate of one per 100 s with a burst of one.
	setPolicy := func(key, value string) {
		t.Helper()
		// From a page without a result shown, so the wait below sees this
		// change's.
		step("policy "+key,
			chromedp.Navigate(base+"/accounts/carol@example.org"),
			chromedp.WaitVisible(chromedp.ID("account-policy")),
			chromedp.SetValue(chromedp.ID("policy-key"), key),
			chromedp.SendKeys(chromedp.ID("policy-value"), value),
			chromedp.Click(chromedp.ID("policy-set")))
		waitLocation("done=policy")
		if v, src := text(`tr[data-key="`+key+`"] .value`), text(`tr[data-key="`+key+`"] .source`); v != value || src != "account" {
			t.Fatalf("%s after setting it: %q from %q", key, v, src)
		}
	}
	send := func(msg string) result {
		return run(t, nil, "phonex", "send", "erin@example.org", msg, "--profile", laptop, "--password-file", pw)
	}
	if r := send("before the quota"); r.code != 0 {
		t.Fatalf("send: %d %s", r.code, r.err)
	}
	setPolicy("message_burst", "1")
	setPolicy("message_rate", "0.01")
	step("policy on the page", shot("03b-account-policy"))
	time.Sleep(time.Second) // nodes poll the policy generation every 250 ms
	refused := false
	for i := 0; i < 3 && !refused; i++ {
		r := send("under the quota")
		refused = r.code != 0 && strings.Contains(strings.ToLower(r.err), "rate limit")
	}
	if !refused {
		t.Fatal("the message rate set in the panel was not enforced")
	}

	// Revoke it; the device is refused from then on.
	step("revoke", chromedp.Navigate(base+"/accounts/carol@example.org"), chromedp.WaitVisible(chromedp.ID("devices")),
		chromedp.Click(chromedp.CSS(`button[aria-label="Revoke carol@example.org/laptop"]`)))
	waitLocation("done=revoke")
	if st := text(`tr[data-device="carol@example.org/laptop"] .status`); st != "revoked" {
		t.Fatalf("device status after revoke: %q", st)
	}
	if r := run(t, nil, "phonex", "whoami", "--profile", laptop, "--password-file", pw); r.code == 0 || !strings.Contains(r.err, "revoked") {
		t.Fatalf("revoked device: %d %q", r.code, r.err)
	}

	// A request from the panel's own page without the form token is
	// refused (the page runs no script: the test evaluates one).
	status, err := chromedp.Run(within(), chromedp.Evaluate[int](`fetch("/accounts/dave@example.org/disable", {method: "POST", body: new URLSearchParams({x: "1"})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil || status != http.StatusForbidden {
		t.Fatalf("post without token: %d %v", status, err)
	}
	// A forged form on another site, posted by the signed-in browser, is
	// refused too.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	evil := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/accounts/dave@example.org/disable"><input name="csrf" value="guess"></form><script>document.getElementById("f").submit()</script>`, base)
	})}
	go evil.Serve(ln)
	defer evil.Close()
	step("forged cross-site form", chromedp.Navigate("http://"+ln.Addr().String()+"/"), chromedp.Sleep(2*time.Second), shot("08-forged-request-refused"))
	if loc := location(); !strings.HasPrefix(loc, base) {
		t.Fatalf("the forged form was not posted: at %s", loc)
	}
	users := decode[[]map[string]any](t, mustRun(t, nil, "phonexd", "user", "list", "--data", data, "--json"))
	for _, u := range users {
		if u["user"] == "dave@example.org" && u["status"] != "pending" {
			t.Fatalf("forged request changed dave: %v", u)
		}
	}

	// The live state reads the node's own metrics: the message sent and
	// the ones the rate refused.
	step("live state with metrics", chromedp.Navigate(base+"/live"), chromedp.WaitVisible(chromedp.ID("metrics")), shot("04b-live-metrics"))
	var accepted, refusedN float64
	if _, err := fmt.Sscanf(text("#metrics-messages"), "%g / %g", &accepted, &refusedN); err != nil || accepted < 1 || refusedN < 1 {
		t.Fatalf("metrics on the live state: %q %v", text("#metrics-messages"), err)
	}

	// The other main pages, and the audit trail of what was done.
	step("accounts", chromedp.Navigate(base+"/accounts"), chromedp.WaitVisible(chromedp.ID("accounts")), shot("05-accounts"))
	step("policies", chromedp.Navigate(base+"/policies"), chromedp.WaitVisible(chromedp.ID("policy-defaults")), shot("05b-policies"))
	step("groups", chromedp.Navigate(base+"/groups"), chromedp.SendKeys(chromedp.ID("group"), "staff"), chromedp.Click(chromedp.ID("create-group")),
		chromedp.WaitVisible(chromedp.ID("members")), chromedp.SendKeys(chromedp.ID("member"), "erin"), chromedp.Click(chromedp.ID("add-member")),
		chromedp.WaitVisible(chromedp.CSS(`#members a[href="/accounts/erin@example.org"]`)), shot("05c-group"))
	step("removal page", chromedp.Navigate(base+"/accounts/carol@example.org/remove"), chromedp.WaitVisible(chromedp.ID("will-lose")), shot("06-remove-confirmation"))
	step("audit", chromedp.Navigate(base+"/audit"), chromedp.WaitVisible(chromedp.ID("audit")), shot("07-audit-log"))
	audit := text("#audit")
	for _, want := range []string{"admin.signin", "user.add", "policy.set", "device.revoke", "admin.refused-csrf", "group.add-member"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit log lacks %s:\n%s", want, audit)
		}
	}
	// Sign out: the panel asks to sign in again.
	step("sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("signin")),
		chromedp.Navigate(base+"/accounts"), chromedp.WaitVisible(chromedp.ID("signin")))
}
