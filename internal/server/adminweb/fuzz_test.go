package adminweb

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/server"
)

// FuzzForms posts arbitrary bodies, with a valid session and token, to
// every form handler: each answers with a status below 500 and never
// panics.
func FuzzForms(f *testing.F) {
	paths := []string{"/login", "/reauth", "/accounts", "/accounts/a@example.org/disable", "/accounts/a@example.org/enable",
		"/accounts/a@example.org/unlock", "/accounts/a@example.org/remove", "/accounts/a@example.org/phones", "/accounts/a@example.org/contacts",
		"/devices/a@example.org/p/unlock", "/devices/a@example.org/p/revoke", "/policies", "/groups", "/groups/g/add-member",
		"/groups/g/remove-member", "/groups/g/provision", "/groups/g/remove", "/logout"}
	for i := range paths {
		f.Add(uint8(i), "user=a&expires=1h")
		f.Add(uint8(i), "name=p&password=x&code=123456&next=/x")
		f.Add(uint8(i), "confirm=a%40example.org&expires=-5h&user=%00%ff")
		f.Add(uint8(i), "%zz&&==&user="+strings.Repeat("x", 300))
		f.Add(uint8(i), "scope=account&name=a&key=message_rate&value=1&group=g&account=a")
	}
	fx := newFixture(f)
	c, tok := fx.signIn()
	fx.post(c, "/accounts", url.Values{"user": {"a"}, "csrf": {tok}})
	fx.post(c, "/accounts/a@example.org/phones", url.Values{"name": {"p"}, "csrf": {tok}})
	fx.post(c, "/groups", url.Values{"group": {"g"}, "csrf": {tok}})
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		path := paths[int(which)%len(paths)]
		if path == "/logout" || path == "/reauth" {
			body = "" // keep the session for the next input
		}
		form, _ := url.ParseQuery(body)
		form.Set("csrf", tok)
		req, _ := http.NewRequest(http.MethodPost, fx.srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %q: %d", path, body, resp.StatusCode)
		}
		// Raw, maybe unparsable bodies too.
		req, _ = http.NewRequest(http.MethodPost, fx.srv.URL+path, strings.NewReader(body+"&csrf="+tok))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if r, err := c.Do(req); err == nil {
			r.Body.Close()
			if r.StatusCode >= 500 {
				t.Fatalf("raw %s %q: %d", path, body, r.StatusCode)
			}
		}
	})
}

// FuzzParse runs the form parsers alone: specific errors, no panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"user=a&expires=24h", "q=x&after=b", "name=a&password=b&code=1", "next=//x", "page=99999999999999999999", "expires=1ns"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, _ := url.ParseQuery(s)
		if l, err := parseLogin(v); err == nil && (l.Name == "" || !strings.HasPrefix(l.Next, "/") || strings.HasPrefix(l.Next, "//")) {
			t.Fatalf("parseLogin accepted %+v", l)
		}
		if c, err := parseCreate(v, "example.org"); err == nil && !strings.Contains(c.User, "@") {
			t.Fatalf("parseCreate accepted %+v", c)
		}
		if q := parseList(v); len(q.After) > 512 || len(q.Q) > 256 {
			t.Fatalf("parseList: %+v", q)
		}
		parsePhone(v)
		if pf, err := parsePolicy(v, "example.org"); err == nil && (pf.Account == "") == (pf.Group == "") {
			t.Fatalf("parsePolicy accepted %+v", pf)
		}
		parseGroupName(v)
		if c, _, err := parseContact(v, "example.org"); err == nil && !strings.Contains(c, "@") {
			t.Fatalf("parseContact accepted %q", c)
		}
	})
}

func TestParseTable(t *testing.T) {
	for _, c := range []struct {
		in   string
		user string
		ok   bool
	}{
		{"user=Alice", "alice@example.org", true},
		{"user=bob@example.org&expires=48h", "bob@example.org", true},
		{"user=", "", false},
		{"user=c&expires=30s", "", false},
		{"user=c&expires=forever", "", false},
		{"user=c&expires=2161h", "", false},
	} {
		v, _ := url.ParseQuery(c.in)
		got, err := parseCreate(v, "example.org")
		if (err == nil) != c.ok || (c.ok && got.User != c.user) {
			t.Errorf("%s: %+v %v", c.in, got, err)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"/accounts", "/accounts"}, {"//evil", "/d"}, {"https://evil", "/d"}, {"/\\evil", "/d"}, {"", "/d"}, {"/a\r\nb", "/d"},
	} {
		if got := safeNext(c.in, "/d"); got != c.want {
			t.Errorf("safeNext(%q) = %q", c.in, got)
		}
	}
}

func TestListenAddr(t *testing.T) {
	for _, c := range []struct {
		in, out string
		public  bool
	}{
		{":9443", "127.0.0.1:9443", false},
		{"127.0.0.1:9443", "127.0.0.1:9443", false},
		{"[::1]:9443", "[::1]:9443", false},
		{"localhost:9443", "localhost:9443", false},
		{"0.0.0.0:9443", "0.0.0.0:9443", true},
		{"10.1.2.3:9443", "10.1.2.3:9443", true},
		{"admin.example.org:9443", "admin.example.org:9443", true},
	} {
		if out, public := listenAddr(c.in); out != c.out || public != c.public {
			t.Errorf("%s: %s %v", c.in, out, public)
		}
	}
}

func TestChartRates(t *testing.T) {
	s := newSampler(4)
	t0 := time.Unix(1_800_000_000, 0)
	for i, v := range []float64{10, 40, 40, 5} { // the last: a restart
		s.add(sample{At: t0.Add(time.Duration(i) * 30 * time.Second), Live: server.Live{Counters: map[string]float64{"phonex_messages_total{stage=accepted}": v}}})
	}
	svg := string(s.svg("accepted"))
	// Increases per minute: 60, 0, 0 (a counter going down restarts).
	if !strings.Contains(svg, ">60<") || !strings.Contains(svg, "now 0<") || !strings.Contains(svg, "Messages accepted per minute") {
		t.Fatalf("rate chart: %s", svg)
	}
	// Five samples into a ring of four keeps the newest four, in order.
	s.add(sample{At: t0.Add(4 * 30 * time.Second)})
	if a := s.all(); len(a) != 4 || !a[0].At.Equal(t0.Add(30*time.Second)) || !a[3].At.Equal(t0.Add(120*time.Second)) {
		t.Fatalf("ring: %v", a)
	}
	if svg := string(s.svg("no such series")); !strings.Contains(svg, "Messages waiting") {
		t.Fatal("an unknown series is not the default one")
	}
}
