package adminweb

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/server"
	"github.com/phonex/phonex/internal/server/adminauth"
	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/totp"
)

const testPassword = "correct horse battery"

// clock is a settable time shared by the panel and its sign-in service.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	t     testing.TB
	panel *Panel
	adm   *server.Admin
	st    store.Store
	auth  *adminauth.Service
	srv   *httptest.Server
	clk   *clock
	key   []byte // root's TOTP key
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	cfg := server.Defaults(filepath.Join(t.TempDir(), "data"))
	cfg.Domain = "example.org"
	if _, err := server.Init(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	adm, err := server.OpenAdmin(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { adm.Close() })
	clk := &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	auth := adminauth.NewService(adm.Store(), cfg.Domain)
	auth.Now = clk.now
	if _, err := auth.Add(ctx, "root", testPassword); err != nil {
		t.Fatal(err)
	}
	a, _ := adm.Store().AdminAccount(ctx, "root")
	p, err := New(adm, auth, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	p.now = clk.now
	srv := httptest.NewTLSServer(p.Handler())
	t.Cleanup(srv.Close)
	return &fixture{t: t, panel: p, adm: adm, st: adm.Store(), auth: auth, srv: srv, clk: clk, key: a.TOTPSecret}
}

// client is a browser-like client: cookies, no redirects followed.
func (f *fixture) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (f *fixture) code() string { return totp.Code(f.key, f.clk.now()) }

func (f *fixture) post(c *http.Client, path string, form url.Values, hdr ...string) (*http.Response, string) {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func (f *fixture) get(c *http.Client, path string) (*http.Response, string) {
	f.t.Helper()
	resp, err := c.Get(f.srv.URL + path)
	if err != nil {
		f.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn signs root in and returns the client and the session's form token.
func (f *fixture) signIn() (*http.Client, string) {
	f.t.Helper()
	c := f.client()
	resp, body := f.post(c, "/login", url.Values{"name": {"root"}, "password": {testPassword}, "code": {f.code()}})
	if resp.StatusCode != http.StatusSeeOther {
		f.t.Fatalf("sign in: %d %s", resp.StatusCode, body)
	}
	f.clk.add(totp.Period) // the next sign-in needs the next code
	_, body = f.get(c, "/accounts")
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		f.t.Fatalf("no form token on the accounts page: %s", body)
	}
	return c, m[1]
}

func TestSignIn(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	resp, _ := f.get(c, "/accounts")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("unsigned: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	cases := []struct {
		name, user, pw, code string
		status               int
	}{
		{"missing code", "root", testPassword, "", http.StatusBadRequest},
		{"wrong password", "root", "wrong password!!", f.code(), http.StatusUnauthorized},
		{"wrong code", "root", testPassword, "000000", http.StatusUnauthorized},
		{"unknown name", "nobody", testPassword, f.code(), http.StatusUnauthorized},
		{"long name", strings.Repeat("a", 65), testPassword, f.code(), http.StatusBadRequest},
		{"good", "root", testPassword, f.code(), http.StatusSeeOther},
		{"the same code again", "root", testPassword, f.code(), http.StatusUnauthorized},
	}
	for _, tc := range cases {
		resp, body := f.post(c, "/login", url.Values{"name": {tc.user}, "password": {tc.pw}, "code": {tc.code}, "next": {"//evil.example/"}})
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d: %s", tc.name, resp.StatusCode, tc.status, body)
		}
		if tc.status == http.StatusUnauthorized && !strings.Contains(body, adminauth.ErrSignIn.Error()) {
			t.Errorf("%s: no generic refusal: %s", tc.name, body)
		}
		if tc.status == http.StatusSeeOther {
			if loc := resp.Header.Get("Location"); loc != "/accounts" {
				t.Errorf("redirect to %q: an open redirect", loc)
			}
			sc := resp.Header.Get("Set-Cookie")
			for _, want := range []string{CookieName + "=", "Path=/", "HttpOnly", "Secure", "SameSite=Strict"} {
				if !strings.Contains(sc, want) {
					t.Errorf("cookie %q lacks %s", sc, want)
				}
			}
			if strings.Contains(sc, "Domain=") {
				t.Errorf("cookie %q has a Domain", sc)
			}
		}
	}
	// Signed in: the pages answer, with the security headers.
	for _, path := range []string{"/accounts", "/live", "/audit", "/live/chart.svg?series=waiting"} {
		resp, body := f.get(c, path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		for k, v := range securityHeaders {
			if resp.Header.Get(k) != v {
				t.Errorf("%s: %s = %q", path, k, resp.Header.Get(k))
			}
		}
		if strings.Contains(body, "<script") || strings.Contains(body, " style=") {
			t.Errorf("%s: inline script or style", path)
		}
	}
	if _, body := f.get(c, "/audit"); !strings.Contains(body, "admin.signin-refused") || !strings.Contains(body, ">admin.signin<") {
		t.Errorf("audit lacks the sign-ins: %s", body)
	}
}

func TestLockout(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	for i := 0; i < f.auth.LockAfter; i++ {
		f.post(c, "/login", url.Values{"name": {"root"}, "password": {"not the password"}, "code": {f.code()}})
		f.clk.add(2 * time.Second)
	}
	// Locked: even the right password and code are refused.
	if resp, _ := f.post(c, "/login", url.Values{"name": {"root"}, "password": {testPassword}, "code": {f.code()}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("locked sign-in: %d", resp.StatusCode)
	}
	f.clk.add(f.auth.LockFor + totp.Period)
	if resp, _ := f.post(c, "/login", url.Values{"name": {"root"}, "password": {testPassword}, "code": {f.code()}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the lock-out: %d", resp.StatusCode)
	}
	// The source limit: a burst of attempts from one address is slowed.
	seen429 := false
	for range 20 {
		if resp, _ := f.post(c, "/login", url.Values{"name": {"nobody"}, "password": {"x"}, "code": {"123456"}}); resp.StatusCode == http.StatusTooManyRequests {
			seen429 = true
			break
		}
	}
	if !seen429 {
		t.Error("no rate limit per source address")
	}
}

func TestSessionExpiry(t *testing.T) {
	f := newFixture(t)
	c, _ := f.signIn()
	f.clk.add(f.auth.IdleTimeout - time.Second)
	if resp, _ := f.get(c, "/accounts"); resp.StatusCode != http.StatusOK {
		t.Fatalf("within the idle time: %d", resp.StatusCode)
	}
	f.clk.add(f.auth.IdleTimeout + time.Second)
	if resp, _ := f.get(c, "/accounts"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("idle session: %d", resp.StatusCode)
	}
	// Absolute age: used every few minutes, it still ends at MaxAge.
	c, _ = f.signIn()
	for el := time.Duration(0); el < f.auth.MaxAge; el += 10 * time.Minute {
		f.clk.add(10 * time.Minute)
		resp, _ := f.get(c, "/accounts")
		if want := el+10*time.Minute+totp.Period <= f.auth.MaxAge; (resp.StatusCode == http.StatusOK) != want {
			t.Fatalf("at %v: %d", el, resp.StatusCode)
		}
	}
	// Sign-out ends the session on the node, not only in the browser.
	c, tok := f.signIn()
	jarCookies := c.Jar.Cookies(mustURL(f.srv.URL))
	f.post(c, "/logout", url.Values{"csrf": {tok}})
	c2 := f.client()
	c2.Jar.SetCookies(mustURL(f.srv.URL), jarCookies)
	if resp, _ := f.get(c2, "/accounts"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("session after sign-out: %d", resp.StatusCode)
	}
}

func mustURL(s string) *url.URL { u, _ := url.Parse(s); return u }

func TestCSRF(t *testing.T) {
	f := newFixture(t)
	c, tok := f.signIn()
	cases := []struct {
		name   string
		form   url.Values
		hdr    []string
		status int
	}{
		{"no token", url.Values{"user": {"a1"}}, nil, http.StatusForbidden},
		{"wrong token", url.Values{"user": {"a2"}, "csrf": {tok[:len(tok)-1] + "x"}}, nil, http.StatusForbidden},
		{"token of another session", url.Values{"user": {"a3"}, "csrf": {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}, nil, http.StatusForbidden},
		{"other origin", url.Values{"user": {"a4"}, "csrf": {tok}}, []string{"Origin", "https://evil.example"}, http.StatusForbidden},
		{"cross-site fetch", url.Values{"user": {"a5"}, "csrf": {tok}}, []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"good", url.Values{"user": {"a6"}, "csrf": {tok}}, nil, http.StatusCreated},
	}
	for _, tc := range cases {
		resp, body := f.post(c, "/accounts", tc.form, tc.hdr...)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d: %.200s", tc.name, resp.StatusCode, tc.status, body)
		}
	}
	accts, _ := f.st.Accounts(context.Background())
	if len(accts) != 1 || accts[0].Name != "a6@example.org" {
		t.Fatalf("accounts: %+v", accts)
	}
	// A cross-origin sign-in (login CSRF) is refused too.
	if resp, _ := f.post(f.client(), "/login", url.Values{"name": {"root"}, "password": {testPassword}, "code": {f.code()}}, "Origin", "https://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin sign-in: %d", resp.StatusCode)
	}
}

func TestAccountActions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c, tok := f.signIn()
	resp, body := f.post(c, "/accounts", url.Values{"user": {"Alice"}, "expires": {"24h"}, "csrf": {tok}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	code := regexp.MustCompile(`id="activation-code">([A-Z2-7-]+)<`).FindStringSubmatch(body)
	if code == nil || !strings.Contains(body, "phonex enroll alice@example.org --server ") {
		t.Fatalf("no activation code shown: %s", body)
	}
	// The shown code is the stored one: it claims.
	rec, _ := f.st.Account(ctx, "alice@example.org")
	if _, err := f.st.ClaimCode(ctx, server.CodeHash(code[1]), rec.ID, "s", time.Now().Add(time.Minute), time.Now()); err != nil {
		t.Fatalf("shown code: %v", err)
	}
	if resp, _ := f.post(c, "/accounts", url.Values{"user": {"alice"}, "csrf": {tok}}); resp.StatusCode != http.StatusConflict {
		t.Errorf("second create: %d", resp.StatusCode)
	}
	bob, _ := f.st.CreateAccount(ctx, "bob@example.org", time.Now())
	f.st.SetAccountStatus(ctx, bob.Name, store.StatusActive)
	steps := []struct {
		path   string
		form   url.Values
		status int
		check  func() bool
	}{
		{"/accounts/alice@example.org/disable", nil, http.StatusSeeOther, func() bool { a, _ := f.st.Account(ctx, "alice@example.org"); return a.Status == store.StatusDisabled }},
		{"/accounts/alice@example.org/enable", nil, http.StatusSeeOther, func() bool { a, _ := f.st.Account(ctx, "alice@example.org"); return a.Status == store.StatusPending }},
		{"/accounts/alice@example.org/unlock", nil, http.StatusSeeOther, nil},
		{"/accounts/alice@example.org/phones", url.Values{"name": {"desk"}}, http.StatusCreated, func() bool { _, err := f.st.DeviceByName(ctx, "alice@example.org", "desk"); return err == nil }},
		{"/accounts/alice@example.org/phones", url.Values{"name": {"bad name!"}}, http.StatusBadRequest, nil},
		{"/accounts/nobody@example.org/disable", nil, http.StatusNotFound, nil},
		{"/accounts/alice@other.org/disable", nil, http.StatusBadRequest, nil},
		{"/accounts/alice@example.org/frobnicate", nil, http.StatusNotFound, nil},
		{"/devices/alice@example.org/desk/unlock", nil, http.StatusSeeOther, nil},
		{"/devices/alice@example.org/desk/revoke", nil, http.StatusSeeOther, func() bool {
			d, _ := f.st.DeviceByName(ctx, "alice@example.org", "desk")
			return d.Status == store.StatusRevoked
		}},
		{"/devices/alice@example.org/nope/revoke", nil, http.StatusNotFound, nil},
		{"/accounts/alice@example.org/remove", url.Values{"confirm": {"alice"}}, http.StatusBadRequest, nil},
		{"/accounts/alice@example.org/contacts", url.Values{"contact": {"bob"}, "op": {"add"}}, http.StatusSeeOther, func() bool {
			ok, _ := f.st.HasContact(ctx, "alice@example.org", "bob@example.org")
			return ok
		}},
		{"/accounts/alice@example.org/contacts", url.Values{"contact": {"nobody"}, "op": {"add"}}, http.StatusBadRequest, nil},
		{"/accounts/alice@example.org/contacts", url.Values{"contact": {"bob"}, "op": {"list"}}, http.StatusBadRequest, nil},
		{"/accounts/alice@example.org/contacts", url.Values{"contact": {"bob@example.org"}, "op": {"remove"}}, http.StatusSeeOther, func() bool {
			ok, _ := f.st.HasContact(ctx, "alice@example.org", "bob@example.org")
			return !ok
		}},
		{"/accounts/alice@example.org/contacts", url.Values{"contact": {"bob@example.org"}, "op": {"remove"}}, http.StatusBadRequest, nil},
	}
	for _, s := range steps {
		form := url.Values{"csrf": {tok}}
		for k, v := range s.form {
			form[k] = v
		}
		resp, body := f.post(c, s.path, form)
		if resp.StatusCode != s.status {
			t.Errorf("%s %v: %d, want %d: %.300s", s.path, s.form, resp.StatusCode, s.status, body)
		}
		if s.check != nil && !s.check() {
			t.Errorf("%s: not done", s.path)
		}
	}
	// The device page shows the phone, and its credentials were shown once.
	if _, body := f.get(c, "/accounts/alice@example.org"); !strings.Contains(body, "alice@example.org/desk") || strings.Contains(body, "phone-password") || !strings.Contains(body, `class="registered">-<`) {
		t.Errorf("account page: %s", body)
	}
	// The removal page names what is lost.
	if _, body := f.get(c, "/accounts/alice@example.org/remove"); !strings.Contains(body, "1 standard phones") || !strings.Contains(body, "contacts") {
		t.Errorf("removal page: %s", body)
	}
	// Removal needs a fresh sign-in.
	f.clk.add(f.panel.FreshFor + time.Second)
	resp, _ = f.post(c, "/accounts/alice@example.org/remove", url.Values{"csrf": {tok}, "confirm": {"alice@example.org"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/reauth") {
		t.Fatalf("stale removal: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := f.st.Account(ctx, "alice@example.org"); err != nil {
		t.Fatal("removed without a fresh sign-in")
	}
	resp, _ = f.post(c, "/reauth", url.Values{"csrf": {tok}, "password": {testPassword}, "code": {f.code()}, "next": {"/accounts/alice@example.org/remove"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("reauth: %d", resp.StatusCode)
	}
	// The fresh session has a new token; the old one is gone.
	if resp, _ := f.post(c, "/accounts/alice@example.org/remove", url.Values{"csrf": {tok}, "confirm": {"alice@example.org"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("old token after reauth: %d", resp.StatusCode)
	}
	_, body = f.get(c, "/accounts/alice@example.org/remove")
	tok = csrfRE.FindStringSubmatch(body)[1]
	if resp, _ := f.post(c, "/accounts/alice@example.org/remove", url.Values{"csrf": {tok}, "confirm": {"alice@example.org"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("removal: %d", resp.StatusCode)
	}
	if _, err := f.st.Account(ctx, "alice@example.org"); err == nil {
		t.Fatal("not removed")
	}
	_, body = f.get(c, "/audit")
	for _, a := range []string{"user.add", "user.disable", "user.enable", "device.add-sip", "device.unlock", "device.revoke", "contacts.add", "contacts.remove", "admin.reauth", "user.remove"} {
		if !strings.Contains(body, ">"+a+"<") {
			t.Errorf("audit lacks %s", a)
		}
	}
	if strings.Contains(body, code[1]) || strings.Contains(body, "bob@") {
		t.Error("the audit log shows the activation code or a contact")
	}
}

func TestAccountPages(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i := range 120 {
		if _, err := f.st.CreateAccount(ctx, "u"+string(rune('a'+i%26))+strings.Repeat("x", i/26)+"@example.org", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := f.signIn()
	rows := func(body string) int { return strings.Count(body, `<td><a href="/accounts/`) }
	next := regexp.MustCompile(`href="(/accounts\?[^"]*)" rel="next"`)
	_, body := f.get(c, "/accounts")
	if rows(body) != PageSize || !strings.Contains(body, "50 shown of 120 accounts") || strings.Contains(body, `rel="first"`) {
		t.Fatalf("first page: %d rows\n%s", rows(body), body)
	}
	seen := rows(body)
	for page := 2; ; page++ {
		m := next.FindStringSubmatch(body)
		if m == nil {
			break
		}
		_, body = f.get(c, strings.ReplaceAll(m[1], "&amp;", "&"))
		if !strings.Contains(body, `rel="first"`) {
			t.Errorf("page %d without a link to the first", page)
		}
		seen += rows(body)
	}
	if seen != 120 {
		t.Errorf("paged through %d accounts, want 120", seen)
	}
	for _, tc := range []struct {
		query string
		rows  int
		want  []string
	}{
		{"?q=uaxxxx", 1, []string{"1 shown of 1 accounts matching"}},
		{"?q=%3Cscript%3E", 0, []string{"No accounts match", "&lt;script&gt;"}},
		{"?after=zzz", 0, []string{`rel="first"`}},
	} {
		resp, body := f.get(c, "/accounts"+tc.query)
		if resp.StatusCode != http.StatusOK || rows(body) != tc.rows {
			t.Errorf("%s: %d, %d rows, want %d", tc.query, resp.StatusCode, rows(body), tc.rows)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: lacks %q", tc.query, w)
			}
		}
	}
}

func TestPoliciesAndGroups(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, n := range []string{"alice@example.org", "bob@example.org"} {
		a, _ := f.st.CreateAccount(ctx, n, time.Now())
		f.st.SetAccountStatus(ctx, a.Name, store.StatusActive)
	}
	c, tok := f.signIn()
	if resp, body := f.get(c, "/policies"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "message_rate") {
		t.Fatalf("policies page: %d", resp.StatusCode)
	}
	effective := func(account, key string) (string, string) {
		ss, err := f.adm.Operator().ShowPolicy(ctx, account, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ss {
			if s.Key == key {
				return s.Value, s.Source
			}
		}
		return "", ""
	}
	steps := []struct {
		path   string
		form   url.Values
		status int
	}{
		{"/policies", url.Values{"scope": {"account"}, "name": {"alice"}, "key": {"message_rate"}, "value": {"0.5"}, "op": {"set"}}, http.StatusSeeOther},
		{"/policies", url.Values{"scope": {"account"}, "name": {"alice"}, "key": {"no_such_key"}, "value": {"1"}}, http.StatusBadRequest},
		{"/policies", url.Values{"scope": {"account"}, "name": {"alice"}, "key": {"message_rate"}, "value": {"fast"}}, http.StatusBadRequest},
		{"/policies", url.Values{"scope": {"planet"}, "name": {"alice"}, "key": {"message_rate"}, "value": {"1"}}, http.StatusBadRequest},
		{"/policies", url.Values{"scope": {"group"}, "name": {"nogroup"}, "key": {"message_rate"}, "value": {"1"}}, http.StatusNotFound},
		{"/groups", url.Values{"group": {"Sales"}}, http.StatusSeeOther},
		{"/groups", url.Values{"group": {"sales"}}, http.StatusConflict},
		{"/groups", url.Values{"group": {"bad name!"}}, http.StatusBadRequest},
		{"/groups/sales/add-member", url.Values{"account": {"alice"}}, http.StatusSeeOther},
		{"/groups/sales/add-member", url.Values{"account": {"bob@example.org"}}, http.StatusSeeOther},
		{"/groups/sales/add-member", url.Values{"account": {"nobody"}}, http.StatusNotFound},
		{"/groups/sales/provision", nil, http.StatusOK},
		{"/policies", url.Values{"scope": {"group"}, "name": {"sales"}, "key": {"max_stored_bytes"}, "value": {"1000000"}}, http.StatusSeeOther},
		{"/groups/sales/remove-member", url.Values{"account": {"bob"}}, http.StatusSeeOther},
		{"/groups/sales/frobnicate", nil, http.StatusNotFound},
	}
	for _, s := range steps {
		form := url.Values{"csrf": {tok}}
		for k, v := range s.form {
			form[k] = v
		}
		if resp, body := f.post(c, s.path, form); resp.StatusCode != s.status {
			t.Errorf("%s %v: %d, want %d: %.300s", s.path, s.form, resp.StatusCode, s.status, body)
		}
	}
	if v, src := effective("alice@example.org", "message_rate"); v != "0.5" || src != "account" {
		t.Errorf("alice's message_rate: %s from %s", v, src)
	}
	if v, src := effective("alice@example.org", "max_stored_bytes"); v != "1000000" || src != "group:sales" {
		t.Errorf("alice's max_stored_bytes: %s from %s", v, src)
	}
	if ok, _ := f.st.HasContact(ctx, "bob@example.org", "alice@example.org"); !ok {
		t.Error("provisioning did not add alice to bob's contacts")
	}
	// The account page shows where each value comes from; reset goes back.
	if _, body := f.get(c, "/accounts/alice@example.org"); !strings.Contains(body, `<tr data-key="message_rate"><td><code title=`) || !strings.Contains(body, `<td class="source">account</td>`) {
		t.Errorf("account page lacks its policy")
	}
	f.post(c, "/policies", url.Values{"csrf": {tok}, "scope": {"account"}, "name": {"alice@example.org"}, "key": {"message_rate"}, "op": {"reset"}, "value": {"9"}})
	if _, src := effective("alice@example.org", "message_rate"); src != "default" {
		t.Errorf("after reset: from %s", src)
	}
	// Removing the group needs its name and a fresh sign-in.
	if resp, _ := f.post(c, "/groups/sales/remove", url.Values{"csrf": {tok}, "confirm": {"sale"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("removal without the name: %d", resp.StatusCode)
	}
	f.clk.add(f.panel.FreshFor + time.Second)
	if resp, _ := f.post(c, "/groups/sales/remove", url.Values{"csrf": {tok}, "confirm": {"sales"}}); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/reauth") {
		t.Errorf("stale removal: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	f.post(c, "/reauth", url.Values{"csrf": {tok}, "password": {testPassword}, "code": {f.code()}, "next": {"/groups/sales"}})
	_, body := f.get(c, "/groups/sales")
	tok = csrfRE.FindStringSubmatch(body)[1]
	if resp, _ := f.post(c, "/groups/sales/remove", url.Values{"csrf": {tok}, "confirm": {"sales"}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("removal: %d", resp.StatusCode)
	}
	_, body = f.get(c, "/audit")
	for _, a := range []string{"policy.set", "group.add", "group.add-member", "group.remove-member", "group.provision", "group.remove"} {
		if !strings.Contains(body, ">"+a+"<") {
			t.Errorf("audit lacks %s", a)
		}
	}
}
