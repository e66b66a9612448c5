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
	add("files",
		test{"SlotsAndFileLifecycle", testFileLifecycle},
		test{"TakeFileSlotConcurrent", testTakeFileSlotConcurrent},
		test{"CreateFileLimits", testCreateFileLimits},
	)
}

func slot(id string, expires time.Time) store.FileSlot {
	return store.FileSlot{SlotID: id, Sealed: []byte("sealed-" + id), ProofHash: []byte("proof-" + id), Nonce2: []byte("n2-" + id), Expires: expires}
}

// A slot goes ready, taken, proven, used by a file; the file is stored,
// completed, listed for its target and acknowledged; then it expires and
// is deleted with its slot.
func testFileLifecycle(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	t0 := time.Unix(1_900_000_000, 0)
	r := device(t, db, "rcpt@x.org", "r1")
	s := device(t, db, "send@x.org", "s1")
	s2 := device(t, db, "send@x.org", "s2")
	n, err := db.AddFileSlots(ctx, r.ID, "send@x.org", []store.FileSlot{slot("a", t0.Add(time.Hour)), slot("b", t0.Add(time.Hour))}, 3, t0)
	if err != nil || n != 2 {
		t.Fatalf("add slots: %d %v", n, err)
	}
	if _, err := db.AddFileSlots(ctx, r.ID, "send@x.org", []store.FileSlot{slot("c", t0.Add(time.Hour)), slot("d", t0.Add(time.Hour))}, 3, t0); !errors.Is(err, store.ErrSlotsFull) {
		t.Fatalf("slots over the cap: %v", err)
	}
	if _, err := db.AddFileSlots(ctx, r.ID, "send@x.org", []store.FileSlot{slot("a", t0.Add(time.Hour))}, 3, t0); !errors.Is(err, store.ErrExists) {
		t.Fatalf("slot id twice: %v", err)
	}
	if cs, err := db.FileSlotCounts(ctx, r.ID, t0); err != nil || fmt.Sprint(cs) != "[{send@x.org 2 0}]" {
		t.Fatalf("counts: %v %v", cs, err)
	}
	sl, err := db.TakeFileSlot(ctx, r.ID, "send@x.org", s.ID, t0.Add(time.Minute), t0)
	if err != nil || sl.SlotID != "a" || sl.State != store.SlotTaken || sl.TakerDevice != s.ID || !sl.Expires.Equal(t0.Add(time.Minute)) || string(sl.Sealed) != "sealed-a" {
		t.Fatalf("take: %+v %v", sl, err)
	}
	if _, err := db.TakeFileSlot(ctx, r.ID, "other@x.org", s.ID, t0.Add(time.Minute), t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("take for another contact: %v", err)
	}
	if cs, _ := db.FileSlotCounts(ctx, r.ID, t0); fmt.Sprint(cs) != "[{send@x.org 1 1}]" {
		t.Fatalf("counts after a take: %v", cs)
	}
	if _, err := db.ProveFileSlot(ctx, r.ID, "a", s2.ID, t0); !errors.Is(err, store.ErrSlotNotYours) {
		t.Fatalf("prove by another device: %v", err)
	}
	if _, err := db.ProveFileSlot(ctx, r.ID, "b", s.ID, t0); !errors.Is(err, store.ErrSlotNotYours) {
		t.Fatalf("prove a slot never taken: %v", err)
	}
	for i := 0; i < 2; i++ {
		if n2, err := db.ProveFileSlot(ctx, r.ID, "a", s.ID, t0); err != nil || string(n2) != "n2-a" {
			t.Fatalf("prove %d: %q %v", i, n2, err)
		}
	}
	if _, err := db.ProveFileSlot(ctx, r.ID, "a", s.ID, t0.Add(2*time.Minute)); !errors.Is(err, store.ErrSlotExpired) {
		t.Fatalf("prove after the take's deadline: %v", err)
	}
	f := store.StoredFile{ID: "file1", SenderAccount: s.AccountID, SenderDevice: s.ID, RecipientAccount: r.AccountID, Size: 1000,
		Header: []byte("hdr"), State: "uploading", Created: t0, Expires: t0.Add(24 * time.Hour)}
	targets := []store.FileTarget{{DeviceID: r.ID, SlotID: "a", Nonce2: []byte("n2-a")}, {DeviceID: s2.ID}}
	bad := []store.SlotUse{{DeviceID: r.ID, SlotID: "a", Nonce2: []byte("n2-x")}}
	var se *store.SlotError
	if err := db.CreateFile(ctx, f, bad, targets, store.FileLimits{}, t0); !errors.As(err, &se) || se.SlotID != "a" || !errors.Is(err, store.ErrSlotNonce) {
		t.Fatalf("wrong nonce: %v", err)
	}
	if _, err := db.StoredFile(ctx, "file1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused file was stored: %v", err)
	}
	use := []store.SlotUse{{DeviceID: r.ID, SlotID: "a", Nonce2: []byte("n2-a")}}
	if err := db.CreateFile(ctx, f, use, targets, store.FileLimits{}, t0); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateFile(ctx, store.StoredFile{ID: "file2", SenderAccount: s.AccountID, SenderDevice: s.ID, RecipientAccount: r.AccountID,
		Header: []byte("h"), State: "uploading", Created: t0, Expires: t0.Add(time.Hour)}, use, nil, store.FileLimits{}, t0); !errors.Is(err, store.ErrSlotUsed) {
		t.Fatalf("slot used twice: %v", err)
	}
	if sl, _ := db.FileSlot(ctx, r.ID, "a"); sl.State != store.SlotUsed {
		t.Fatalf("slot after the upload: %+v", sl)
	}
	got, err := db.StoredFile(ctx, "file1")
	if err != nil || got.Sender != "send@x.org/s1" || got.Recipient != "rcpt@x.org" || got.Size != 1000 || string(got.Header) != "hdr" || !got.Expires.Equal(f.Expires) {
		t.Fatalf("stored file: %+v %v", got, err)
	}
	if in, _, _ := db.IncomingFiles(ctx, r.ID, t0); len(in) != 0 {
		t.Fatalf("an incomplete file listed as incoming: %+v", in)
	}
	if err := db.SetFileOffset(ctx, "file1", 1000); err != nil {
		t.Fatal(err)
	}
	if err := db.SetFileState(ctx, "file1", "complete"); err != nil {
		t.Fatal(err)
	}
	if err := db.SetFileState(ctx, "nofile", "complete"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("state of a missing file: %v", err)
	}
	in, ts, err := db.IncomingFiles(ctx, r.ID, t0)
	if err != nil || len(in) != 1 || in[0].Offset != 1000 || ts[0].SlotID != "a" || string(ts[0].Nonce2) != "n2-a" {
		t.Fatalf("incoming: %+v %+v %v", in, ts, err)
	}
	if out, err := db.OutgoingFiles(ctx, s.ID); err != nil || len(out) != 1 || out[0].ID != "file1" {
		t.Fatalf("outgoing: %+v %v", out, err)
	}
	if all, err := db.AckFile(ctx, "file1", r.ID, t0); err != nil || all {
		t.Fatalf("first ack: %v %v", all, err)
	}
	if all, err := db.AckFile(ctx, "file1", s2.ID, t0.Add(time.Second)); err != nil || !all {
		t.Fatalf("last ack: %v %v", all, err)
	}
	if _, err := db.AckFile(ctx, "file1", s.ID, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ack by a device not targeted: %v", err)
	}
	tg, err := db.FileTargets(ctx, "file1")
	if err != nil || len(tg) != 2 || tg[0].Acked == nil || !tg[0].Acked.Equal(t0) || tg[1].Device != "send@x.org/s2" {
		t.Fatalf("targets: %+v %v", tg, err)
	}
	if ids, err := db.ExpiredFiles(ctx, t0.Add(25*time.Hour), 10); err != nil || fmt.Sprint(ids) != "[file1]" {
		t.Fatalf("expired: %v %v", ids, err)
	}
	if err := db.DeleteFile(ctx, "file1"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.FileSlot(ctx, r.ID, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a used slot outlived its file: %v", err)
	}
	if n, err := db.DeleteExpiredSlots(ctx, t0.Add(2*time.Hour)); err != nil || n != 1 {
		t.Fatalf("expired slots deleted: %d %v", n, err)
	}
}

// Takers racing for a device's slots each get a different one.
func testTakeFileSlotConcurrent(t *testing.T, open Opener) {
	ctx := context.Background()
	hs := []store.Store{open(t), open(t)}
	t0 := time.Now()
	r := device(t, hs[0], "rcpt@x.org", "r1")
	s := device(t, hs[0], "send@x.org", "s1")
	const n = 10
	var slots []store.FileSlot
	for i := 0; i < n; i++ {
		slots = append(slots, slot(fmt.Sprint(i), t0.Add(time.Hour)))
	}
	if _, err := hs[0].AddFileSlots(ctx, r.ID, "send@x.org", slots, n, t0); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string]bool{}
	notFound := 0
	var wg sync.WaitGroup
	for i := 0; i < n+4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sl, err := hs[i%2].TakeFileSlot(ctx, r.ID, "send@x.org", s.ID, t0.Add(time.Minute), t0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, store.ErrNotFound):
				notFound++
			case err != nil:
				t.Error(err)
			case got[sl.SlotID]:
				t.Errorf("slot %s taken twice", sl.SlotID)
			default:
				got[sl.SlotID] = true
			}
		}(i)
	}
	wg.Wait()
	if len(got) != n || notFound != 4 {
		t.Fatalf("%d slots taken, %d takers found none; want %d and 4", len(got), notFound, n)
	}
}

// The pair cap and the sender's quota are checked in the transaction that
// stores the file, also when uploads race.
func testCreateFileLimits(t *testing.T, open Opener) {
	ctx := context.Background()
	hs := []store.Store{open(t), open(t)}
	t0 := time.Now()
	r := device(t, hs[0], "rcpt@x.org", "r1")
	s := device(t, hs[0], "send@x.org", "s1")
	file := func(i int, size int64) store.StoredFile {
		return store.StoredFile{ID: fmt.Sprint("f", i), SenderAccount: s.AccountID, SenderDevice: s.ID, RecipientAccount: r.AccountID, Size: size,
			Header: []byte("h"), State: "uploading", Created: t0, Expires: t0.Add(time.Hour)}
	}
	race := func(first int, lim store.FileLimits, size int64) (ok int, refused []error) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := 0; i < 12; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				err := hs[i%2].CreateFile(ctx, file(first+i, size), nil, []store.FileTarget{{DeviceID: r.ID}}, lim, t0)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					ok++
				} else {
					refused = append(refused, err)
				}
			}(i)
		}
		wg.Wait()
		return ok, refused
	}
	ok, refused := race(0, store.FileLimits{PairCap: 5}, 10)
	if ok != 5 || len(refused) != 7 || !errors.Is(refused[0], store.ErrPairCap) {
		t.Fatalf("pair cap 5: %d stored, refused %v", ok, refused)
	}
	// Delivered files no longer count.
	for i := 0; i < 12; i++ {
		hs[0].SetFileState(ctx, fmt.Sprint("f", i), "delivered")
	}
	ok, refused = race(100, store.FileLimits{Quota: 3500}, 1000)
	var sf *store.StorageFullError
	if ok != 3 || len(refused) != 9 || !errors.As(refused[0], &sf) || sf.AccountID != s.AccountID {
		t.Fatalf("quota of 3.5 files: %d stored, refused %v", ok, refused)
	}
}
