package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store"
)

func init() {
	add("route",
		test{"RoutingGeneration", testRoutingGeneration},
		test{"RoutingGenerationConcurrent", testRoutingGenerationConcurrent},
		test{"Waiting", testWaiting},
	)
}

// Waiting gives the routing generation RoutingGeneration gives, and sees a
// stored copy for any device named until it is delivered, whichever handle
// stored it.
func testWaiting(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	other := open(t)
	r1 := device(t, db, "rcpt@x.org", "r1")
	r2 := device(t, db, "rcpt@x.org", "r2")
	q := device(t, db, "quiet@x.org", "q1")
	device(t, db, "sndr@x.org", "s1")
	check := func(what string, ids []int64, want bool) {
		t.Helper()
		gen, waiting, err := db.Waiting(ctx, ids)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		g, err := db.RoutingGeneration(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if gen != g || waiting != want {
			t.Fatalf("%s: generation %d (want %d), waiting %v (want %v)", what, gen, g, waiting, want)
		}
	}
	check("nothing stored", []int64{r1.ID, r2.ID}, false)
	check("no device", nil, false)
	if _, err := other.EnqueueMessage(ctx, msg("sndr@x.org", "rcpt@x.org", []byte("x")), []store.Target{{DeviceID: r2.ID, AccountID: r2.AccountID}}, 0); err != nil {
		t.Fatal(err)
	}
	check("r2 alone", []int64{r2.ID}, true)
	check("r2 among others", []int64{q.ID, r1.ID, r2.ID}, true)
	check("others", []int64{q.ID, r1.ID}, false)
	ds, err := db.Pending(ctx, r2.ID, 10)
	if err != nil || len(ds) != 1 {
		t.Fatalf("pending: %v %d", err, len(ds))
	}
	if err := db.Delivered(ctx, ds[0].Seq); err != nil {
		t.Fatal(err)
	}
	check("delivered", []int64{r2.ID}, false)
	before, _, err := db.Waiting(ctx, []int64{r1.ID})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.AddContact(ctx, r1.AccountID, "sndr@x.org", time.Now()); err != nil {
		t.Fatal(err)
	}
	check("after a routing change elsewhere", []int64{r1.ID}, false)
	if after, _, _ := db.Waiting(ctx, []int64{r1.ID}); after == before {
		t.Fatalf("generation %d unchanged by a contact added", after)
	}
}

// Every change to what message routing reads moves the generation, whether
// made through this handle or through another one on the same database (an
// admin command, another node), and a message routed under the old
// generation is refused with ErrStaleRoute, nothing stored; under the new
// one it is stored. Changes routing does not read (attempt counters,
// stored and delivered copies, certificates, keys) leave the generation
// alone, so a cache survives the message traffic.
func testRoutingGeneration(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	admin := open(t)
	r := device(t, db, "rcpt@x.org", "r1")
	s := device(t, db, "sndr@x.org", "s1")
	if err := db.AddContact(ctx, r.AccountID, "sndr@x.org", time.Now()); err != nil {
		t.Fatal(err)
	}
	send := func(gen int64) error {
		m := msg("sndr@x.org", "rcpt@x.org", []byte("x"))
		m.RouteGeneration = gen
		_, err := db.EnqueueMessage(ctx, m, []store.Target{{DeviceID: r.ID, AccountID: r.AccountID}}, 0)
		return err
	}
	gen := func() int64 {
		t.Helper()
		g, err := db.RoutingGeneration(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	n := 0
	changes := []struct {
		name    string
		routing bool
		change  func(store.Store) error
	}{
		{"contact removed", true, func(h store.Store) error { return h.RemoveContact(ctx, r.AccountID, "sndr@x.org") }},
		{"contact added", true, func(h store.Store) error { return h.AddContact(ctx, r.AccountID, "sndr@x.org", time.Now()) }},
		{"device revoked", true, func(h store.Store) error { return h.SetDeviceStatus(ctx, r.ID, store.StatusRevoked) }},
		{"device active again", true, func(h store.Store) error { return h.SetDeviceStatus(ctx, r.ID, store.StatusActive) }},
		{"device added", true, func(h store.Store) error {
			n++
			name := fmt.Sprintf("added%d", n)
			_, err := h.CreateDevice(ctx, store.Device{AccountID: s.AccountID, Name: name, Handle: name, Suite: "ec", Serial: "02",
				Cert: []byte{1}, SealedOPRF: []byte{1}, Created: time.Now()})
			return err
		}},
		{"account disabled", true, func(h store.Store) error { return h.SetAccountStatus(ctx, "rcpt@x.org", store.StatusDisabled) }},
		{"account enabled", true, func(h store.Store) error { return h.SetAccountStatus(ctx, "rcpt@x.org", store.StatusActive) }},
		{"account created", true, func(h store.Store) error { _, err := h.CreateAccount(ctx, "new@x.org", time.Now()); return err }},
		{"account deleted", true, func(h store.Store) error { return h.DeleteAccount(ctx, "new@x.org") }},
		{"message stored", false, func(h store.Store) error { return send(0) }},
		{"copy delivered", false, func(h store.Store) error {
			ds, err := h.Pending(ctx, r.ID, 1)
			if err != nil || len(ds) == 0 {
				return errors.Join(err, errors.New("nothing pending"))
			}
			return h.Delivered(ctx, ds[0].Seq)
		}},
		{"attempt counted", false, func(h store.Store) error {
			_, err := h.TryAttempt(ctx, time.Now(), []store.AttemptSubject{{Subject: store.SubjectDevice, ID: r.ID}, {Subject: store.SubjectAccount, ID: r.AccountID}},
				func([]store.Attempts) error { return nil })
			return err
		}},
		{"certificate renewed", false, func(h store.Store) error {
			return h.UpdateDeviceCert(ctx, r.ID, "03", []byte{2}, nil, time.Now().Add(time.Hour))
		}},
		{"capabilities set", false, func(h store.Store) error { return h.SetDeviceCaps(ctx, r.ID, "ratchet") }},
	}
	for _, via := range []struct {
		name string
		h    store.Store
	}{{"this handle", db}, {"another handle", admin}} {
		for _, c := range changes {
			t.Run(via.name+"/"+c.name, func(t *testing.T) {
				before := gen()
				if err := c.change(via.h); err != nil {
					t.Fatal(err)
				}
				after := gen()
				if moved := after != before; moved != c.routing {
					t.Fatalf("generation %d -> %d; routing fact: %v", before, after, c.routing)
				}
				if !c.routing {
					return
				}
				stored, _ := db.StoredBytes(ctx, r.AccountID)
				if err := send(before); !errors.Is(err, store.ErrStaleRoute) {
					t.Fatalf("routed under the old generation: %v, want ErrStaleRoute", err)
				}
				if n, _ := db.StoredBytes(ctx, r.AccountID); n != stored {
					t.Fatalf("a stale message was stored: %d -> %d bytes", stored, n)
				}
				if err := send(after); err != nil {
					t.Fatalf("routed under the new generation: %v", err)
				}
			})
		}
	}
}

// Messages stored at once are each checked against the generation.
func testRoutingGenerationConcurrent(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	r := device(t, db, "rcpt@x.org", "r1")
	g, err := db.RoutingGeneration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 40)
	for i := 0; i < cap(errs); i++ {
		gen := g
		if i%2 == 1 {
			gen = g - 1
		}
		go func() {
			m := msg("s@x.org", "rcpt@x.org", []byte("x"))
			m.RouteGeneration = gen
			_, err := db.EnqueueMessage(ctx, m, []store.Target{{DeviceID: r.ID, AccountID: r.AccountID}}, 0)
			errs <- err
		}()
	}
	stale := 0
	for i := 0; i < cap(errs); i++ {
		switch err := <-errs; {
		case errors.Is(err, store.ErrStaleRoute):
			stale++
		case err != nil:
			t.Fatal(err)
		}
	}
	if n, _ := db.StoredBytes(ctx, r.AccountID); stale != cap(errs)/2 || n != int64(cap(errs)/2) {
		t.Fatalf("%d stale, %d bytes stored; want %d and %d", stale, n, cap(errs)/2, cap(errs)/2)
	}
}
