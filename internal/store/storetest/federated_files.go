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
	add("federated_files",
		test{"OutboundFile", testOutboundFile},
		test{"InboundFile", testInboundFile},
	)
}

// On the sender's node: a file for an account of a peer cluster, with the
// sender's other device as a local target and the remote devices to
// forward to; the forward's state; remote deliveries; the quota.
func testOutboundFile(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	t0 := time.Unix(1_900_000_000, 0)
	s := device(t, db, "send@x.org", "s1")
	s2 := device(t, db, "send@x.org", "s2")
	f := store.StoredFile{ID: "out1", SenderAccount: s.AccountID, SenderDevice: s.ID, Recipient: "rcpt@peer.example", Size: 1000,
		Header: []byte("hdr"), State: "uploading", Created: t0, Expires: t0.Add(24 * time.Hour)}
	remote := []store.RemoteFileTarget{{Device: "rcpt@peer.example/r1", SlotID: "sa", Nonce2: []byte("n2-a")},
		{Device: "rcpt@peer.example/r2", SlotID: "sb", Nonce2: []byte("n2-b")}}
	if err := db.CreateOutboundFile(ctx, f, []store.FileTarget{{DeviceID: s2.ID}}, remote, "peer.example", store.FileLimits{Quota: 1500}); err != nil {
		t.Fatal(err)
	}
	g := f
	g.ID = "out2"
	if err := db.CreateOutboundFile(ctx, g, nil, remote, "peer.example", store.FileLimits{Quota: 1500}); !errors.Is(err, store.ErrStorageFull) {
		t.Fatalf("over the quota: %v", err)
	}
	if _, err := db.StoredFile(ctx, "out2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused file was stored: %v", err)
	}
	got, err := db.StoredFile(ctx, "out1")
	if err != nil || got.Recipient != "rcpt@peer.example" || got.RecipientAccount != 0 || got.Sender != "send@x.org/s1" || got.SenderDevice != s.ID {
		t.Fatalf("stored: %+v %v", got, err)
	}
	if og, err := db.OutgoingFiles(ctx, s.ID); err != nil || len(og) != 1 || og[0].Recipient != "rcpt@peer.example" {
		t.Fatalf("outgoing: %+v %v", og, err)
	}
	fw, err := db.FileForward(ctx, "out1")
	if err != nil || fw.Domain != "peer.example" || fw.State != store.ForwardWaiting || fw.RemoteID != "" {
		t.Fatalf("forward: %+v %v", fw, err)
	}
	if ws, err := db.WaitingForwards(ctx, 10); err != nil || len(ws) != 0 {
		t.Fatalf("an upload in progress waits to be forwarded: %+v %v", ws, err)
	}
	if err := db.SetFileState(ctx, "out1", "complete"); err != nil {
		t.Fatal(err)
	}
	if ws, err := db.WaitingForwards(ctx, 10); err != nil || len(ws) != 1 || ws[0].FileID != "out1" {
		t.Fatalf("waiting forwards: %+v %v", ws, err)
	}
	fw.State, fw.RemoteID = store.ForwardSent, "theirs1"
	if err := db.SetFileForward(ctx, fw); err != nil {
		t.Fatal(err)
	}
	if fw2, _ := db.FileForward(ctx, "out1"); fw2 != fw {
		t.Fatalf("forward after the update: %+v", fw2)
	}
	if ws, _ := db.WaitingForwards(ctx, 10); len(ws) != 0 {
		t.Fatalf("a sent forward still waits: %+v", ws)
	}
	at := t0.Add(time.Minute)
	if err := db.AckRemoteFileTarget(ctx, "out1", "rcpt@peer.example/r2", at); err != nil {
		t.Fatal(err)
	}
	if err := db.AckRemoteFileTarget(ctx, "out1", "rcpt@peer.example/r2", at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.AckRemoteFileTarget(ctx, "out1", "rcpt@peer.example/r9", at); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ack of a device the file is not for: %v", err)
	}
	rts, err := db.RemoteFileTargets(ctx, "out1")
	if err != nil || len(rts) != 2 || rts[0].Acked != nil || rts[1].Acked == nil || !rts[1].Acked.Equal(at) || rts[1].SlotID != "sb" || string(rts[1].Nonce2) != "n2-b" {
		t.Fatalf("remote targets: %+v %v", rts, err)
	}
	if ts, err := db.FileTargets(ctx, "out1"); err != nil || len(ts) != 1 || ts[0].DeviceID != s2.ID {
		t.Fatalf("local targets: %+v %v", ts, err)
	}
	if err := db.DeleteFile(ctx, "out1"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.FileForward(ctx, "out1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the forward outlived its file: %v", err)
	}
	if rts, _ := db.RemoteFileTargets(ctx, "out1"); len(rts) != 0 {
		t.Fatalf("remote targets outlived their file: %+v", rts)
	}
}

// On the recipient's node: a file a peer's node pushed, from a device of
// its cluster that took and proved the slots; stored once per origin id,
// listed for its target with the remote sender, within the remote
// account's quota and pair cap.
func testInboundFile(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	t0 := time.Unix(1_900_000_000, 0)
	r := device(t, db, "rcpt@x.org", "r1")
	const taker = -12345 // a remote device's id
	if _, err := db.AddFileSlots(ctx, r.ID, "send@peer.example", []store.FileSlot{slot("a", t0.Add(time.Hour)), slot("b", t0.Add(time.Hour))}, 4, t0); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if _, err := db.TakeFileSlot(ctx, r.ID, "send@peer.example", taker, t0.Add(time.Minute), t0); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ProveFileSlot(ctx, r.ID, id, taker, t0); err != nil {
			t.Fatal(err)
		}
	}
	f := store.StoredFile{ID: "in1", RecipientAccount: r.AccountID, Size: 1000, Header: []byte("hdr"), State: "uploading",
		Created: t0, Expires: t0.Add(24 * time.Hour), RemoteSender: "send@peer.example/s1", RemoteAccount: "send@peer.example",
		Origin: "peer.example", OriginID: "theirs1"}
	use := func(id string) []store.SlotUse {
		return []store.SlotUse{{DeviceID: r.ID, SlotID: id, Nonce2: []byte("n2-" + id)}}
	}
	tgt := func(id string) []store.FileTarget {
		return []store.FileTarget{{DeviceID: r.ID, SlotID: id, Nonce2: []byte("n2-" + id)}}
	}
	var se *store.SlotError
	if err := db.CreateInboundFile(ctx, f, use("a"), -999, tgt("a"), store.FileLimits{}, t0); !errors.As(err, &se) || !errors.Is(err, store.ErrSlotNotYours) {
		t.Fatalf("a slot proven by another device: %v", err)
	}
	if err := db.CreateInboundFile(ctx, f, use("a"), taker, tgt("a"), store.FileLimits{Quota: 999}, t0); !errors.Is(err, store.ErrStorageFull) {
		t.Fatalf("over the quota: %v", err)
	}
	if err := db.CreateInboundFile(ctx, f, use("a"), taker, tgt("a"), store.FileLimits{Quota: 1500, PairCap: 1}, t0); err != nil {
		t.Fatal(err)
	}
	g := f
	g.ID = "in1-again"
	if err := db.CreateInboundFile(ctx, g, use("b"), taker, tgt("b"), store.FileLimits{}, t0); !errors.Is(err, store.ErrExists) {
		t.Fatalf("the same origin id twice: %v", err)
	}
	g.OriginID = "theirs2"
	if err := db.CreateInboundFile(ctx, g, use("b"), taker, tgt("b"), store.FileLimits{PairCap: 1}, t0); !errors.Is(err, store.ErrPairCap) {
		t.Fatalf("over the pair cap: %v", err)
	}
	if err := db.CreateInboundFile(ctx, g, use("a"), taker, tgt("a"), store.FileLimits{}, t0); !errors.Is(err, store.ErrSlotUsed) {
		t.Fatalf("a used slot again: %v", err)
	}
	got, err := db.InboundFile(ctx, "peer.example", "theirs1")
	if err != nil || got.ID != "in1" || got.Sender != "send@peer.example/s1" || got.SenderAccount != 0 || got.Recipient != "rcpt@x.org" ||
		got.RemoteSender != "send@peer.example/s1" || got.RemoteAccount != "send@peer.example" || got.Origin != "peer.example" {
		t.Fatalf("inbound: %+v %v", got, err)
	}
	if _, err := db.InboundFile(ctx, "other.example", "theirs1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another peer's id: %v", err)
	}
	if sl, _ := db.FileSlot(ctx, r.ID, "a"); sl.State != store.SlotUsed {
		t.Fatalf("slot after the file: %+v", sl)
	}
	if err := db.SetFileState(ctx, "in1", "complete"); err != nil {
		t.Fatal(err)
	}
	in, ts, err := db.IncomingFiles(ctx, r.ID, t0)
	if err != nil || len(in) != 1 || in[0].Sender != "send@peer.example/s1" || ts[0].SlotID != "a" {
		t.Fatalf("incoming: %+v %+v %v", in, ts, err)
	}
	if all, err := db.AckFile(ctx, "in1", r.ID, t0); err != nil || !all {
		t.Fatalf("ack: %v %v", all, err)
	}
	if ids, err := db.ExpiredFiles(ctx, t0.Add(25*time.Hour), 10); err != nil || len(ids) != 1 {
		t.Fatalf("expired: %v %v", ids, err)
	}
	if err := db.DeleteFile(ctx, "in1"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.FileSlot(ctx, r.ID, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the used slot outlived its file: %v", err)
	}

	// The same offer twice at once (a repeated forward): stored once.
	if _, err := db.AddFileSlots(ctx, r.ID, "send@peer.example", []store.FileSlot{slot("c", t0.Add(time.Hour))}, 4, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := db.TakeFileSlot(ctx, r.ID, "send@peer.example", taker, t0.Add(time.Minute), t0); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ProveFileSlot(ctx, r.ID, "c", taker, t0); err != nil {
		t.Fatal(err)
	}
	g.OriginID = "theirs3"
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := g
			h.ID = fmt.Sprintf("in3-%d", i)
			errs[i] = open(t).CreateInboundFile(ctx, h, use("c"), taker, tgt("c"), store.FileLimits{}, t0)
		}()
	}
	wg.Wait()
	ok, dup := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrExists):
			dup++
		default:
			t.Fatalf("the same offer at once: %v", err)
		}
	}
	if ok != 1 || dup != 1 {
		t.Fatalf("the same offer at once: %v", errs)
	}
}
