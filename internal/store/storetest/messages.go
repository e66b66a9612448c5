package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store"
)

func init() {
	add("messages",
		test{"StoreAndForward", testStoreAndForward},
		test{"EnqueueQuotaIsAtomic", testEnqueueQuotaIsAtomic},
		test{"EnqueueQuotaPerTargetAccount", testEnqueueQuotaPerTargetAccount},
		test{"PendingTakesTurns", testPendingTakesTurns},
		test{"PendingMatchesModel", testPendingMatchesModel},
		test{"StoredBytesFollowsDeletes", testStoredBytesFollowsDeletes},
		test{"RevokedDeviceCopiesForgotten", testRevokedDeviceCopiesForgotten},
		test{"ConcurrentEnqueuePendingDelivered", testConcurrentFlow},
	)
}

func msg(sender, recipient string, body []byte) store.Message {
	return store.Message{Sender: sender, SenderDevice: "d", Recipient: recipient, ContentType: "t", Body: body, Created: time.Now()}
}

// A message queued for two devices is delivered to one, survives a
// reopen, and goes with its last delivery.
func testStoreAndForward(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	b, b1, b2 := twoDevices(t, db, "bravo@x.org")
	created := time.Unix(1_800_000_000, 42)
	m := store.Message{Sender: "alpha@x.org", SenderDevice: "a1", Recipient: "bravo@x.org", ContentType: "application/x-phonex",
		Body: []byte{0, 1, 2, 0xff, 'x'}, Created: created}
	targets := []store.Target{{DeviceID: b1.ID, AccountID: b.ID}, {DeviceID: b2.ID, AccountID: b.ID}}
	id, err := db.EnqueueMessage(ctx, m, targets, 0)
	if err != nil || id == 0 {
		t.Fatalf("enqueue: %d %v", id, err)
	}
	m2 := m
	m2.Body = []byte("second")
	db.EnqueueMessage(ctx, m2, targets[:1], 0)
	if n, _ := db.StoredBytes(ctx, b.ID); n != int64(2*len(m.Body)+len(m2.Body)) {
		t.Errorf("stored bytes %d", n)
	}
	// A delivery to a device that does not exist is refused and the
	// message with it.
	if _, err := db.EnqueueMessage(ctx, m, []store.Target{{DeviceID: 9999, AccountID: b.ID}}, 0); err == nil {
		t.Error("enqueue to a missing device accepted")
	}
	if n, _ := db.StoredBytes(ctx, b.ID); n != int64(2*len(m.Body)+len(m2.Body)) {
		t.Errorf("stored bytes %d after a refused message", n)
	}
	db.Close()

	db = open(t)
	p1, err := db.Pending(ctx, b1.ID, 10)
	if err != nil || len(p1) != 2 {
		t.Fatalf("pending for device one after reopen: %+v %v", p1, err)
	}
	if p1[0].MessageID != id || !bytes.Equal(p1[0].Body, m.Body) || !p1[0].Created.Equal(created) || p1[0].Sender != m.Sender ||
		p1[0].SenderDevice != "a1" || p1[0].ContentType != m.ContentType || p1[0].Recipient != m.Recipient ||
		string(p1[1].Body) != "second" || p1[0].Seq >= p1[1].Seq {
		t.Errorf("pending: %+v", p1)
	}
	if lim, _ := db.Pending(ctx, b1.ID, 1); len(lim) != 1 {
		t.Errorf("limit 1 gave %d", len(lim))
	}
	p2, _ := db.Pending(ctx, b2.ID, 10)
	if len(p2) != 1 || p2[0].MessageID != id {
		t.Fatalf("pending for device two: %+v", p2)
	}
	for _, d := range p1 {
		if err := db.Delivered(ctx, d.Seq); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Delivered(ctx, p1[0].Seq); err != nil {
		t.Errorf("second acknowledgement: %v", err)
	}
	// Device two's copy still has its body.
	if p2, _ := db.Pending(ctx, b2.ID, 10); len(p2) != 1 || !bytes.Equal(p2[0].Body, m.Body) {
		t.Errorf("device two after device one's deliveries: %+v", p2)
	}
	db.Delivered(ctx, p2[0].Seq)
	if n, _ := db.StoredBytes(ctx, b.ID); n != 0 {
		t.Errorf("after every delivery: %d bytes", n)
	}
	if p, _ := db.Pending(ctx, b2.ID, 10); len(p) != 0 {
		t.Errorf("after every delivery: %d pending", len(p))
	}
}

// Many senders racing for the last bytes of a quota: exactly as many fit as
// the quota allows, never more.
func testEnqueueQuotaIsAtomic(t *testing.T, open Opener) {
	ctx := context.Background()
	hs := []store.Store{open(t), open(t)}
	r := device(t, hs[0], "rcpt@x.org", "r1")
	const size, fits, tries = 1000, 7, 40
	body := make([]byte, size)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, full := 0, 0
	for i := 0; i < tries; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := hs[i%2].EnqueueMessage(ctx, msg(fmt.Sprintf("s%d@x.org", i), "rcpt@x.org", body),
				[]store.Target{{DeviceID: r.ID, AccountID: r.AccountID}}, fits*size)
			mu.Lock()
			defer mu.Unlock()
			var sf *store.StorageFullError
			switch {
			case err == nil:
				ok++
			case errors.As(err, &sf) && sf.AccountID == r.AccountID && errors.Is(err, store.ErrStorageFull):
				full++
			default:
				t.Errorf("enqueue %d: %v", i, err)
			}
		}(i)
	}
	wg.Wait()
	held, err := hs[0].StoredBytes(ctx, r.AccountID)
	if err != nil {
		t.Fatal(err)
	}
	if ok != fits || full != tries-fits || held != fits*size {
		t.Fatalf("accepted %d, refused %d, held %d bytes; want %d accepted, %d bytes", ok, full, held, fits, fits*size)
	}
}

// Copies for the sender's own devices count against, and are checked
// against, the sender's account.
func testEnqueueQuotaPerTargetAccount(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	r := device(t, db, "rcpt@x.org", "r1")
	s2 := device(t, db, "send@x.org", "s2")
	s3 := device(t, db, "send@x.org", "s3")
	targets := []store.Target{{DeviceID: r.ID, AccountID: r.AccountID}, {DeviceID: s2.ID, AccountID: s2.AccountID}, {DeviceID: s3.ID, AccountID: s3.AccountID}}
	m := msg("send@x.org", "rcpt@x.org", make([]byte, 600))
	// The recipient's one copy fits in 1000 bytes, the sender's two do not.
	_, err := db.EnqueueMessage(ctx, m, targets, 1000)
	var sf *store.StorageFullError
	if !errors.As(err, &sf) || sf.AccountID != s2.AccountID {
		t.Fatalf("sender over quota: %v", err)
	}
	for _, a := range []int64{r.AccountID, s2.AccountID} {
		if n, _ := db.StoredBytes(ctx, a); n != 0 {
			t.Fatalf("refused message left %d bytes for account %d", n, a)
		}
	}
	if _, err := db.EnqueueMessage(ctx, m, targets, 1200); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.StoredBytes(ctx, s2.AccountID); n != 1200 {
		t.Fatalf("sender holds %d bytes, want 1200", n)
	}
}

// One sender's backlog does not hold up another sender; each sender's
// copies keep their order.
func testPendingTakesTurns(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	r := device(t, db, "rcpt@x.org", "r1")
	tg := []store.Target{{DeviceID: r.ID, AccountID: r.AccountID}}
	put := func(sender string, n int) {
		for i := 0; i < n; i++ {
			if _, err := db.EnqueueMessage(ctx, msg(sender, "rcpt@x.org", []byte(fmt.Sprintf("%s %d", sender, i))), tg, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	put("a@x.org", 300)
	put("b@x.org", 2)
	put("c@x.org", 1)
	ds, err := db.Pending(ctx, r.ID, 6)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, string(d.Body))
	}
	want := []string{"a@x.org 0", "b@x.org 0", "c@x.org 0", "a@x.org 1", "b@x.org 1", "a@x.org 2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pending %q, want %q", got, want)
	}
	// Once delivered, the next turn starts from what is left.
	for _, d := range ds {
		if err := db.Delivered(ctx, d.Seq); err != nil {
			t.Fatal(err)
		}
	}
	ds, _ = db.Pending(ctx, r.ID, 3)
	if len(ds) != 3 || string(ds[0].Body) != "a@x.org 3" || string(ds[2].Body) != "a@x.org 5" {
		t.Fatalf("after delivery: %d copies, first %q", len(ds), ds[0].Body)
	}
}

// Pending against a model of its contract, for backlogs below, at and
// above the limit, from one to several senders: the n-th waiting copy of
// every sender before the (n+1)-th of any, ties in arrival order.
func testPendingMatchesModel(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 15; round++ {
		r := device(t, db, fmt.Sprintf("rcpt%d@x.org", round), "r1")
		tg := []store.Target{{DeviceID: r.ID, AccountID: r.AccountID}}
		n, senders := rng.IntN(12), 1+rng.IntN(4)
		type copy struct {
			body, sender string
			turn, order  int
		}
		var all []copy
		turns := map[string]int{}
		for i := 0; i < n; i++ {
			s := fmt.Sprintf("s%d@x.org", rng.IntN(senders))
			if _, err := db.EnqueueMessage(ctx, msg(s, "r", []byte(fmt.Sprint(i))), tg, 0); err != nil {
				t.Fatal(err)
			}
			turns[s]++
			all = append(all, copy{fmt.Sprint(i), s, turns[s], i})
		}
		sort.SliceStable(all, func(i, j int) bool { return all[i].turn < all[j].turn })
		for limit := 1; limit <= 12; limit++ {
			got, err := db.Pending(ctx, r.ID, limit)
			if err != nil {
				t.Fatal(err)
			}
			var want, have []string
			for i := 0; i < len(all) && i < limit; i++ {
				want = append(want, all[i].sender+":"+all[i].body)
			}
			for _, d := range got {
				have = append(have, d.Sender+":"+string(d.Body))
			}
			if fmt.Sprint(have) != fmt.Sprint(want) {
				t.Fatalf("%d copies from %d senders, limit %d: %v, want %v", n, senders, limit, have, want)
			}
		}
	}
}

// The per-account byte count follows every way a copy goes: delivered,
// its device's account removed.
func testStoredBytesFollowsDeletes(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	b1 := device(t, db, "bravo@x.org", "b1")
	b2 := device(t, db, "bravo@x.org", "b2")
	c1 := device(t, db, "carol@x.org", "c1")
	devs := map[int64][]int64{b1.AccountID: {b1.ID, b2.ID}, c1.AccountID: {c1.ID}}
	truth := func(acct int64) int64 {
		var n int64
		for _, d := range devs[acct] {
			ds, err := db.Pending(ctx, d, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range ds {
				n += int64(len(c.Body))
			}
		}
		return n
	}
	check := func(when string) {
		t.Helper()
		for _, a := range []int64{b1.AccountID, c1.AccountID} {
			if n, err := db.StoredBytes(ctx, a); err != nil || n != truth(a) {
				t.Fatalf("%s: account %d holds %d bytes by the count, %d by the copies (%v)", when, a, n, truth(a), err)
			}
		}
	}
	tg := []store.Target{{DeviceID: b1.ID, AccountID: b1.AccountID}, {DeviceID: b2.ID, AccountID: b2.AccountID}, {DeviceID: c1.ID, AccountID: c1.AccountID}}
	for i := 0; i < 5; i++ {
		if _, err := db.EnqueueMessage(ctx, msg("a@x.org", "bravo@x.org", make([]byte, 100+i)), tg, 0); err != nil {
			t.Fatal(err)
		}
	}
	check("stored")
	ds, _ := db.Pending(ctx, b1.ID, 2)
	for _, d := range ds {
		db.Delivered(ctx, d.Seq)
	}
	check("delivered")
	if err := db.DeleteAccount(ctx, "bravo@x.org"); err != nil {
		t.Fatal(err)
	}
	devs[b1.AccountID] = nil
	check("account removed")
	if n, _ := db.StoredBytes(ctx, b1.AccountID); n != 0 {
		t.Fatalf("removed account holds %d bytes", n)
	}
}

// Copies waiting for a revoked device are forgotten: it will never fetch
// them, and they would hold its account's storage for good.
func testRevokedDeviceCopiesForgotten(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	b1 := device(t, db, "bravo@x.org", "b1")
	b2 := device(t, db, "bravo@x.org", "b2")
	tg := []store.Target{{DeviceID: b1.ID, AccountID: b1.AccountID}, {DeviceID: b2.ID, AccountID: b2.AccountID}}
	shared, _ := db.EnqueueMessage(ctx, msg("a@x.org", "bravo@x.org", []byte("both")), tg, 0)
	db.EnqueueMessage(ctx, msg("a@x.org", "bravo@x.org", []byte("b2 only")), tg[1:], 0)
	if err := db.SetDeviceStatus(ctx, b2.ID, store.StatusRevoked); err != nil {
		t.Fatal(err)
	}
	if ds, _ := db.Pending(ctx, b2.ID, 10); len(ds) != 0 {
		t.Fatalf("%d copies left for the revoked device", len(ds))
	}
	if n, _ := db.StoredBytes(ctx, b1.AccountID); n != 4 {
		t.Fatalf("account holds %d bytes, want the 4 of b1's copy", n)
	}
	if ds, _ := db.Pending(ctx, b1.ID, 10); len(ds) != 1 || ds[0].MessageID != shared || string(ds[0].Body) != "both" {
		t.Fatalf("b1 pending %+v", ds)
	}
	if err := db.SetDeviceStatus(ctx, 9999, store.StatusRevoked); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoke a missing device: %v", err)
	}
}

// Senders on two handles store messages for two devices of one account
// while each device's reader takes and acknowledges its copies: every copy
// arrives exactly once, each sender's in order, and nothing is left
// counted once both have read everything.
func testConcurrentFlow(t *testing.T, open Opener) {
	ctx := context.Background()
	hs := []store.Store{open(t), open(t)}
	r1 := device(t, hs[0], "rcpt@x.org", "r1")
	r2 := device(t, hs[0], "rcpt@x.org", "r2")
	tg := []store.Target{{DeviceID: r1.ID, AccountID: r1.AccountID}, {DeviceID: r2.ID, AccountID: r2.AccountID}}
	const senders, each = 8, 25
	var send sync.WaitGroup
	for s := 0; s < senders; s++ {
		send.Add(1)
		go func(s int) {
			defer send.Done()
			for i := 0; i < each; i++ {
				if _, err := hs[s%2].EnqueueMessage(ctx, msg(fmt.Sprintf("s%d@x.org", s), "rcpt@x.org", []byte(fmt.Sprint(i))), tg, 1<<30); err != nil {
					t.Error(err)
					return
				}
			}
		}(s)
	}
	done := make(chan struct{})
	go func() { send.Wait(); close(done) }()
	var read sync.WaitGroup
	for i, d := range []store.Device{r1, r2} {
		read.Add(1)
		go func(h store.Store, d store.Device) {
			defer read.Done()
			next := map[string]int{}
			seen := map[int64]bool{}
			got := 0
			for got < senders*each {
				finished := false
				select {
				case <-done:
					finished = true
				default:
				}
				ds, err := h.Pending(ctx, d.ID, 16)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ds) == 0 && finished {
					break
				}
				for _, c := range ds {
					if seen[c.Seq] {
						t.Errorf("device %s: copy %d read twice", d.Name, c.Seq)
						return
					}
					seen[c.Seq] = true
					if want := fmt.Sprint(next[c.Sender]); string(c.Body) != want {
						t.Errorf("device %s: %s sent %q next, want %q", d.Name, c.Sender, c.Body, want)
						return
					}
					next[c.Sender]++
					got++
					if err := h.Delivered(ctx, c.Seq); err != nil {
						t.Error(err)
						return
					}
				}
			}
			if got != senders*each {
				t.Errorf("device %s read %d copies, want %d", d.Name, got, senders*each)
			}
		}(hs[i], d)
	}
	read.Wait()
	if n, err := hs[0].StoredBytes(ctx, r1.AccountID); err != nil || n != 0 {
		t.Fatalf("%d bytes counted after every copy was read (%v)", n, err)
	}
}
