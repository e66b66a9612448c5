package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/phonex/phonex/internal/store/sqlite"
)

// TestPresenceMemoryPerSubscription bounds what the node keeps for one
// subscription (the agent's record, the dialog, the maps): 10,000
// subscriptions of 2000 watcher devices to five accounts, made through the
// SUBSCRIBE handler, the NOTIFYs answered at once. Measured 843-875 bytes;
// the bound is the goal, 2 KiB.
func TestPresenceMemoryPerSubscription(t *testing.T) {
	if testing.Short() {
		t.Skip("makes 10,000 subscriptions")
	}
	const devices, targets = 2000, 5
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r := &rig{t: t, st: db, db: db}
	r.account("fan")
	for i := range targets {
		r.account(fmt.Sprint("t", i))
		r.friends("fan", fmt.Sprint("t", i))
	}
	p, err := New(Config{Domain: domain, Store: db, Auth: certAuth{db}, NonceKey: []byte("k"), TLS: &tls.Config{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.ctx = ctx
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p.ln = newPeerListener(ln, &tls.Config{}, Limits{}, true, p.log)
	p.presence.send = func(context.Context, *subDialog, []byte, string) (func() error, error) {
		return func() error { return nil }, nil
	}
	// Each watcher device is authenticated on its own connection, as after
	// its TLS handshake; that is the connection's memory, not the
	// subscriptions'.
	cert := &x509.Certificate{}
	srcs := make([]string, devices)
	for i := range devices {
		srcs[i] = fmt.Sprintf("127.0.%d.%d:5061", i/250, i%250+1)
		p.ln.conns[srcs[i]] = &peerConn{cert: cert}
		p.auth[srcs[i]] = authEntry{cert: cert, id: Identity{AccountID: 1, DeviceID: int64(i + 1), Account: "fan@" + domain, Device: fmt.Sprint("w", i)},
			at: time.Now().Add(time.Hour)}
	}
	subscribe := func(i, target int) {
		to := sip.Uri{Scheme: "sip", User: fmt.Sprint("t", target), Host: domain}
		req := sip.NewRequest(sip.SUBSCRIBE, to)
		from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "fan", Host: domain}, Params: sip.NewParams()}
		from.Params.Add("tag", fmt.Sprintf("w%d-%d", i, target))
		req.AppendHeader(from)
		req.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
		cid := sip.CallIDHeader(fmt.Sprintf("sub-%d-%d@example.org", i, target))
		req.AppendHeader(&cid)
		req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.SUBSCRIBE})
		contact := &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "fan", Host: domain, UriParams: sip.NewParams()}}
		contact.Address.UriParams.Add("transport", "tls")
		req.AppendHeader(contact)
		req.AppendHeader(sip.NewHeader("Event", "presence"))
		req.AppendHeader(sip.NewHeader("Expires", "3600"))
		req.SetSource(srcs[i])
		tx := &answerTx{}
		p.onSubscribe(req, tx)
		if len(tx.sent) != 1 || tx.sent[0].StatusCode != 200 {
			t.Fatalf("SUBSCRIBE %d to t%d: %v", i, target, tx.sent)
		}
	}
	heap := func() uint64 {
		// The NOTIFY goroutines end once they have sent; then collect.
		time.Sleep(200 * time.Millisecond)
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	// One subscription each first, so the maps' first growth and the
	// accounts' records are not counted against the rest.
	for i := range devices {
		subscribe(i, 0)
	}
	before := heap()
	for i := range devices {
		for target := 1; target < targets; target++ {
			subscribe(i, target)
		}
	}
	after := heap()
	n := devices * (targets - 1)
	if subs, _ := p.pres.Counts(); subs != devices*targets {
		t.Fatalf("%d subscriptions held, want %d", subs, devices*targets)
	}
	per := float64(after-before) / float64(n)
	t.Logf("%.0f bytes per subscription (%d subscriptions measured, %d held)", per, n, devices*targets)
	if per > 2048 {
		t.Fatalf("%.0f bytes per subscription, over 2 KiB", per)
	}
	runtime.KeepAlive(p)
}
