package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store"
)

func TestPeers(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	p := store.Peer{Domain: "b.example", CA: []byte{1}, CASHA256: "aa", API: "h:1", SIP: "h:2", Added: time.Now()}
	if err := db.AddPeer(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := db.AddPeer(ctx, p); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second add: %v", err)
	}
	if err := db.PeerPresented(ctx, "b.example", "bb", time.Now()); err != nil {
		t.Fatal(err)
	}
	got, err := db.Peer(ctx, "b.example")
	if err != nil || got.Presented != "bb" || got.CASHA256 != "aa" {
		t.Fatalf("peer: %+v %v", got, err)
	}
	p.CA, p.CASHA256 = []byte{2}, "cc"
	if err := db.UpdatePeer(ctx, p); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Peer(ctx, "b.example"); got.Presented != "" || got.CASHA256 != "cc" {
		t.Fatalf("accepted: %+v", got)
	}
	if err := db.UpdatePeer(ctx, store.Peer{Domain: "c.example"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update unknown: %v", err)
	}
	if err := db.RemovePeer(ctx, "b.example"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Peer(ctx, "b.example"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("removed: %v", err)
	}
}

func TestOutbound(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	msg := func(body string) store.Outbound {
		return store.Outbound{Domain: "b.example", SenderCert: []byte{1}, Message: store.Message{Sender: "a@a.example", SenderDevice: "d",
			Recipient: "b@b.example", ContentType: "t", Body: []byte(body), Created: time.Now()}}
	}
	id1, err := db.QueueOutbound(ctx, msg("12345"), 8)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.QueueOutbound(ctx, msg("6789"), 8); !errors.Is(err, store.ErrStorageFull) {
		t.Fatalf("over the quota: %v", err)
	}
	if _, err := db.QueueOutbound(ctx, msg("678"), 8); err != nil {
		t.Fatal(err)
	}
	os, err := db.OutboundFor(ctx, "b.example", 10)
	if err != nil || len(os) != 2 || os[0].ID != id1 || string(os[1].Body) != "678" || string(os[0].SenderCert) != "\x01" {
		t.Fatalf("queued: %+v %v", os, err)
	}
	if ds, _ := db.OutboundDomains(ctx); len(ds) != 1 || ds[0] != "b.example" {
		t.Fatalf("domains %v", ds)
	}
	if err := db.OutboundDone(ctx, id1); err != nil {
		t.Fatal(err)
	}
	if os, _ := db.OutboundFor(ctx, "b.example", 10); len(os) != 1 {
		t.Fatalf("after done: %d", len(os))
	}
}

// TestAcceptForwarded: a forward repeated with the same origin id stores
// nothing again; the same id from another origin is another message.
func TestAcceptForwarded(t *testing.T) {
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
	if _, err := db.AcceptForwarded(ctx, "a.example", 8, m, ts, 3); !errors.Is(err, store.ErrStorageFull) {
		t.Fatalf("over the quota: %v", err)
	}
	ps, err := db.Pending(ctx, d.ID, 10)
	if err != nil || len(ps) != 2 || ps[0].Sender != "alpha@a.example" {
		t.Fatalf("pending: %+v %v", ps, err)
	}
	// The refused one left no origin record: it can come again.
	if _, err := db.AcceptForwarded(ctx, "a.example", 8, m, ts, 0); err != nil {
		t.Fatal(err)
	}
}
