package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store"
)

func init() {
	add("federation",
		test{"Peers", testPeers},
		test{"Outbound", testOutbound},
		test{"AcceptForwarded", testAcceptForwarded},
		test{"AcceptForwardedConcurrent", testAcceptForwardedConcurrent},
		test{"LeaseOutbound", testLeaseOutbound},
	)
}

// A peer is pinned once (ErrExists after), a presented CA is recorded
// beside the pin and cleared when a new CA is accepted, and an unknown
// peer is ErrNotFound everywhere; an admin handle sees what the node
// wrote.
func testPeers(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	admin := open(t)
	p := store.Peer{Domain: "b.example", CA: []byte{1}, CASHA256: "aa", API: "h:1", SIP: "h:2", Added: time.Now()}
	if err := admin.AddPeer(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := admin.AddPeer(ctx, p); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second add: %v", err)
	}
	if err := db.PeerPresented(ctx, "b.example", "bb", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := db.PeerAttempt(ctx, "b.example", "connection refused", time.Now()); err != nil {
		t.Fatal(err)
	}
	got, err := admin.Peer(ctx, "b.example")
	if err != nil || got.Presented != "bb" || got.CASHA256 != "aa" || got.LastError != "connection refused" || got.FailedAt.IsZero() {
		t.Fatalf("peer: %+v %v", got, err)
	}
	if err := db.PeerAttempt(ctx, "b.example", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	p.CA, p.CASHA256 = []byte{2}, "cc"
	if err := admin.UpdatePeer(ctx, p); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Peer(ctx, "b.example"); got.Presented != "" || got.CASHA256 != "cc" || string(got.CA) != "\x02" || got.LastError != "" || got.DeliveredAt.IsZero() {
		t.Fatalf("accepted: %+v", got)
	}
	if ps, err := db.Peers(ctx); err != nil || len(ps) != 1 || ps[0].Domain != "b.example" {
		t.Fatalf("peers: %+v %v", ps, err)
	}
	if err := admin.UpdatePeer(ctx, store.Peer{Domain: "c.example"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update unknown: %v", err)
	}
	if err := admin.RemovePeer(ctx, "b.example"); err != nil {
		t.Fatal(err)
	}
	if err := admin.RemovePeer(ctx, "b.example"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
	if _, err := db.Peer(ctx, "b.example"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("removed: %v", err)
	}
}

func outbound(domain, body string) store.Outbound {
	return store.Outbound{Domain: domain, SenderCert: []byte{1}, Message: store.Message{Sender: "a@a.example", SenderDevice: "d",
		Recipient: "b@" + domain, ContentType: "t", Body: []byte(body), Created: time.Now()}}
}

// The queue keeps each domain's messages in order, counts them on the
// peer, refuses past the quota with ErrStorageFull, and forgets one when
// told.
func testOutbound(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	if err := db.AddPeer(ctx, store.Peer{Domain: "b.example", CA: []byte{1}, CASHA256: "aa", API: "h:1", SIP: "h:2", Added: time.Now()}); err != nil {
		t.Fatal(err)
	}
	id1, err := db.QueueOutbound(ctx, outbound("b.example", "12345"), 8)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.QueueOutbound(ctx, outbound("b.example", "6789"), 8); !errors.Is(err, store.ErrStorageFull) {
		t.Fatalf("over the quota: %v", err)
	}
	if _, err := db.QueueOutbound(ctx, outbound("b.example", "678"), 8); err != nil {
		t.Fatal(err)
	}
	if _, err := db.QueueOutbound(ctx, outbound("c.example", "other"), 8); err != nil {
		t.Fatalf("another domain's quota: %v", err)
	}
	os, err := db.OutboundFor(ctx, "b.example", 10)
	if err != nil || len(os) != 2 || os[0].ID != id1 || string(os[0].Body) != "12345" || string(os[1].Body) != "678" ||
		string(os[0].SenderCert) != "\x01" || os[0].Recipient != "b@b.example" || os[0].Created.IsZero() {
		t.Fatalf("queued: %+v %v", os, err)
	}
	if p, _ := db.Peer(ctx, "b.example"); p.Queued != 2 {
		t.Fatalf("peer counts %d queued", p.Queued)
	}
	if ds, _ := db.OutboundDomains(ctx); fmt.Sprint(ds) != "[b.example c.example]" {
		t.Fatalf("domains %v", ds)
	}
	if err := db.OutboundDone(ctx, id1); err != nil {
		t.Fatal(err)
	}
	if os, _ := db.OutboundFor(ctx, "b.example", 10); len(os) != 1 || string(os[0].Body) != "678" {
		t.Fatalf("after done: %+v", os)
	}
}

// A forward repeated with the same origin id stores nothing again; the
// same id from another origin is another message; a forward refused (for
// the quota) leaves no origin record, so it can come again.
func testAcceptForwarded(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	d := device(t, db, "bravo@b.example", "b1")
	m := store.Message{Sender: "alpha@a.example", SenderDevice: "a1", Recipient: d.Account, ContentType: "t", Body: []byte("hi"), Created: time.Now()}
	ts := []store.Target{{DeviceID: d.ID, AccountID: d.AccountID}}
	if _, err := db.AcceptForwarded(ctx, "a.example", 7, m, ts, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AcceptForwarded(ctx, "a.example", 7, m, ts, 0); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("repeat: %v", err)
	}
	if _, err := db.AcceptForwarded(ctx, "c.example", 7, m, ts, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AcceptForwarded(ctx, "a.example", 8, m, ts, 5); !errors.Is(err, store.ErrStorageFull) {
		t.Fatalf("over the quota: %v", err)
	}
	ps, err := db.Pending(ctx, d.ID, 10)
	if err != nil || len(ps) != 2 || ps[0].Sender != "alpha@a.example" || ps[0].SenderDevice != "a1" {
		t.Fatalf("pending: %+v %v", ps, err)
	}
	if n, _ := db.StoredBytes(ctx, d.AccountID); n != 4 {
		t.Fatalf("stored bytes %d, want 4", n)
	}
	if _, err := db.AcceptForwarded(ctx, "a.example", 8, m, ts, 0); err != nil {
		t.Fatal(err)
	}
}

// The same forward arriving twice at once (on two nodes, or a retry racing
// a slow commit) is stored once.
func testAcceptForwardedConcurrent(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	other := open(t)
	d := device(t, db, "bravo@b.example", "b1")
	ts := []store.Target{{DeviceID: d.ID, AccountID: d.AccountID}}
	const ids = 10
	var wg sync.WaitGroup
	errs := make(chan error, 4*ids)
	for i := int64(1); i <= ids; i++ {
		for _, h := range []store.Store{db, other, db, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := store.Message{Sender: "alpha@a.example", SenderDevice: "a1", Recipient: d.Account, ContentType: "t", Body: []byte(fmt.Sprint(i)), Created: time.Now()}
				if _, err := h.AcceptForwarded(ctx, "a.example", i, m, ts, 0); err != nil && !errors.Is(err, store.ErrDuplicate) {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ps, err := db.Pending(ctx, d.ID, 100)
	if err != nil || len(ps) != ids {
		t.Fatalf("stored %d copies, want %d (%v)", len(ps), ids, err)
	}
}

// One holder at a time sends a domain's queue: another gets the lease
// only once it ran out or was released; the holder renews its own; two
// nodes asking at once get one lease between them.
func testLeaseOutbound(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	other := open(t)
	now := time.Unix(1_800_000_000, 0)
	lease := func(h store.Store, holder string, at time.Time) bool {
		t.Helper()
		ok, err := h.LeaseOutbound(ctx, "b.example", holder, at.Add(time.Minute), at)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !lease(db, "n1", now) || lease(other, "n2", now.Add(time.Second)) {
		t.Fatal("first lease not exclusive")
	}
	if !lease(db, "n1", now.Add(30*time.Second)) {
		t.Fatal("the holder could not renew")
	}
	if lease(other, "n2", now.Add(80*time.Second)) {
		t.Fatal("taken before the renewed lease ran out")
	}
	if !lease(other, "n2", now.Add(100*time.Second)) {
		t.Fatal("not taken after it ran out")
	}
	if err := other.ReleaseOutbound(ctx, "b.example", "n2"); err != nil {
		t.Fatal(err)
	}
	if !lease(db, "n1", now.Add(101*time.Second)) {
		t.Fatal("not taken after release")
	}
	if other.ReleaseOutbound(ctx, "b.example", "n2") != nil || lease(other, "n2", now.Add(102*time.Second)) {
		t.Fatal("another holder's release ended the lease")
	}
	var wg sync.WaitGroup
	got := make(chan bool, 8)
	for i := range 8 {
		h := []store.Store{db, other}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := h.LeaseOutbound(ctx, "c.example", fmt.Sprint("h", i), now.Add(time.Minute), now)
			if err != nil {
				t.Error(err)
			}
			got <- ok
		}()
	}
	wg.Wait()
	close(got)
	n := 0
	for ok := range got {
		if ok {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d holders at once", n)
	}
}
