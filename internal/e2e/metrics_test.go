package e2e

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/freeport"
)

// scrape reads a Prometheus text exposition into series -> value.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("scrape: %s", res.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape line %q: %v", l, err)
		}
		out[l[:i]] = v
	}
	return out
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// setConf replaces one setting in a data directory's phonexd.conf.
func setConf(t *testing.T, data, key, value string) {
	t.Helper()
	p := filepath.Join(data, "phonexd.conf")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	found := false
	for _, l := range strings.Split(string(b), "\n") {
		if k, _, ok := strings.Cut(l, "="); ok && strings.TrimSpace(k) == key {
			l, found = key+" = "+value, true
		}
		out = append(out, l)
	}
	if !found {
		out = append(out, key+" = "+value)
	}
	if err := os.WriteFile(p, []byte(strings.Join(out, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestMetricsScrape: a real phonexd's metrics listener (metrics_addr in
// phonexd.conf) answers health checks, and its counters move as devices
// register and messages flow, with no account name in any series.
func TestMetricsScrape(t *testing.T) {
	c := newCluster(t)
	maddr := freeport.Addr(t)
	setConf(t, c.data, "metrics_addr", maddr)
	c.n = serveOn(t, c.data, freeport.Addr(t), freeport.Addr(t))
	for _, p := range []string{"/healthz", "/readyz"} {
		if code := httpStatus(t, "http://"+maddr+p); code != 200 {
			t.Fatalf("%s: %d", p, code)
		}
	}
	c.device("alpha", "a1", true)
	c.device("bravo", "b1", true)
	c.mustPx("alpha/a1", "contacts", "add", "bravo@example.org")
	c.mustPx("bravo/b1", "contacts", "add", "alpha@example.org")

	before := scrape(t, maddr)
	// Sent while b1 is offline, so the node stores the copies; a device
	// online and idle would take them before the sender's 200, unstored.
	const n = 3
	for i := range n {
		c.mustPx("alpha/a1", "send", "bravo@example.org", "metered "+strconv.Itoa(i))
	}
	b1 := c.listen("bravo/b1")
	waitFor(t, "b1 registered", 30*time.Second, func() bool { return b1.has("ready", "") })
	m := scrape(t, maddr)
	if m[`phonex_sip_registrations_total{kind="device"}`] <= before[`phonex_sip_registrations_total{kind="device"}`] ||
		m[`phonex_sip_connections{kind="device"}`] < 1 {
		t.Fatalf("registration not counted: registrations %v -> %v, connections %v", before[`phonex_sip_registrations_total{kind="device"}`],
			m[`phonex_sip_registrations_total{kind="device"}`], m[`phonex_sip_connections{kind="device"}`])
	}

	waitFor(t, "b1 gets the messages", 15*time.Second, func() bool { return len(b1.texts(all)) == n })
	c.mustPx("alpha/a1", "send", "bravo@example.org", "metered online")
	waitFor(t, "b1 gets the one sent while online", 15*time.Second, func() bool { return len(b1.texts(all)) == n+1 })
	// A disabled recipient: the session with it exists, so the refusal
	// comes from the SIP proxy (480), not from a key fetch.
	mustRun(t, nil, "phonexd", "user", "disable", "--data", c.data, "bravo@example.org")
	if r := c.px("alpha/a1", "send", "bravo@example.org", "to a disabled account"); r.code == 0 {
		t.Fatal("a message to a disabled account was accepted")
	}
	moved := func(series string, by float64) bool { return m[series]-before[series] >= by }
	allMoved := func() bool {
		return moved(`phonex_messages_total{stage="accepted"}`, n+1) && moved(`phonex_messages_total{stage="stored"}`, n) &&
			moved(`phonex_messages_total{stage="delivered"}`, n+1) && moved(`phonex_message_delivery_seconds_count`, n+1) &&
			moved(`phonex_messages_refused_total{reason="unavailable"}`, 1) && moved(`phonex_store_operation_seconds_count{op="enqueue"}`, n)
	}
	// Deliveries are counted as devices answer, after the sender's 200.
	for deadline := time.Now().Add(10 * time.Second); !allMoved() && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		m = scrape(t, maddr)
	}
	ok := allMoved()
	for _, k := range []string{`phonex_sip_registrations_total{kind="device"}`, `phonex_messages_total{stage="accepted"}`, `phonex_messages_total{stage="stored"}`, `phonex_messages_total{stage="delivered"}`,
		`phonex_message_delivery_seconds_count`, `phonex_messages_refused_total{reason="unavailable"}`, `phonex_store_operation_seconds_count{op="enqueue"}`} {
		t.Logf("%s: %v -> %v", k, before[k], m[k])
	}
	if !ok {
		t.Fatal("counters did not move as the messages flowed")
	}
	if _, ok := m["phonex_pending_deliveries"]; !ok {
		t.Error("no queue depth series")
	}
	if m["process_cpu_seconds_total"] <= 0 {
		t.Error("no process CPU time")
	}
	for s := range m {
		for _, name := range []string{"alpha", "bravo", "example.org"} {
			if strings.Contains(s, name) {
				t.Errorf("series %s names a user", s)
			}
		}
	}
}
