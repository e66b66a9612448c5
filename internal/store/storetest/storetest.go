// Package storetest is the conformance suite of store.Store: one set of
// tests of every method's contract (results, sentinel errors, atomicity
// under concurrency) that each implementation runs against itself, so the
// embedded SQLite store and the PostgreSQL store cannot drift apart.
package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store"
)

// Opener opens a store for test t. The first call in a test returns a
// store on a fresh, empty database; later calls in the same test open
// another handle on that same database, as another process (an admin
// command, another node) or a restarted node would. The implementation
// closes what it opened when t ends; a test may close a handle earlier.
type Opener func(t *testing.T) store.Store

type test struct {
	name string
	run  func(t *testing.T, open Opener)
}

// tests is filled by the files of the suite, one group each.
var tests []test

func add(group string, ts ...test) {
	for _, c := range ts {
		c.name = group + "/" + c.name
		tests = append(tests, c)
	}
}

// Run runs the whole suite, each test in a subtest of its own with a
// fresh database.
func Run(t *testing.T, open Opener) {
	for _, c := range tests {
		t.Run(c.name, func(t *testing.T) { c.run(t, open) })
	}
}

// device makes an account (if new) with one active device.
func device(t testing.TB, db store.Store, account, name string) store.Device {
	t.Helper()
	ctx := context.Background()
	a, err := db.Account(ctx, account)
	if errors.Is(err, store.ErrNotFound) {
		a, err = db.CreateAccount(ctx, account, time.Now())
	}
	if err != nil {
		t.Fatal(err)
	}
	d, err := db.CreateDevice(ctx, store.Device{AccountID: a.ID, Name: name, Handle: account + "/" + name, Suite: "ec", Serial: "01",
		Cert: []byte{1}, NotAfter: time.Now().Add(time.Hour), SealedOPRF: []byte{1}, Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	d.Account = account
	return d
}

// twoDevices makes an account with two devices.
func twoDevices(t *testing.T, db store.Store, name string) (store.Account, store.Device, store.Device) {
	t.Helper()
	ctx := context.Background()
	a, err := db.CreateAccount(ctx, name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var ds [2]store.Device
	for i, n := range []string{"one", "two"} {
		ds[i], err = db.CreateDevice(ctx, store.Device{AccountID: a.ID, Name: n, Handle: name + n, Suite: "ec", Serial: "01",
			Cert: []byte{1}, SealedOPRF: []byte{2}, NotAfter: time.Now().Add(time.Hour), Created: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
	}
	return a, ds[0], ds[1]
}

func seqs(ds []store.Delivery) []int64 {
	var out []int64
	for _, d := range ds {
		out = append(out, d.Seq)
	}
	return out
}
