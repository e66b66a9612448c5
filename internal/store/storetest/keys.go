package storetest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store"
)

func init() {
	add("keys",
		test{"SIPCredentialsAndPrekeys", testSIPCredentialsAndPrekeys},
		test{"PhoneLogins", testPhoneLogins},
		test{"PutKeysAtomic", testPutKeysAtomic},
		test{"TakePrekeyConcurrent", testTakePrekeyConcurrent},
	)
}

func testSIPCredentialsAndPrekeys(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	_, d1, d2 := twoDevices(t, db, "sippy@x.org")
	ha1 := []byte{0xde, 0xad, 0xbe, 0xef}
	if err := db.SetSIPCredential(ctx, d1.ID, "sippy", ha1); err != nil {
		t.Fatal(err)
	}
	if err := db.SetSIPCredential(ctx, d2.ID, "sippy", ha1); !errors.Is(err, store.ErrExists) {
		t.Errorf("username taken twice: %v", err)
	}
	dev, got, err := db.SIPCredential(ctx, "sippy")
	if err != nil || dev.ID != d1.ID || dev.Account != "sippy@x.org" || !bytes.Equal(got, ha1) {
		t.Errorf("credential: %+v %x %v", dev, got, err)
	}
	if _, _, err := db.SIPCredential(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing username: %v", err)
	}

	one := []store.Prekey{{ID: 3, Data: []byte("c")}, {ID: 1, Data: []byte("a")}, {ID: 2, Data: []byte("b")}}
	if err := db.PutKeys(ctx, d1.ID, store.KeyUpload{Add: map[string][]store.Prekey{"onetime": one}}); err != nil {
		t.Fatal(err)
	}
	db.PutKeys(ctx, d1.ID, store.KeyUpload{Replace: map[string]store.Prekey{"signed": {ID: 1, Data: []byte("s1")}}})
	// Rotation replaces the signed key.
	db.PutKeys(ctx, d1.ID, store.KeyUpload{Replace: map[string]store.Prekey{"signed": {ID: 2, Data: []byte("s2'")}}})
	if n, _ := db.CountPrekeys(ctx, d1.ID, "onetime"); n != 3 {
		t.Errorf("%d one-time keys", n)
	}
	if n, _ := db.CountPrekeys(ctx, d1.ID, "signed"); n != 1 {
		t.Errorf("%d signed keys after rotation", n)
	}
	// One-time keys go oldest first, once each.
	for _, want := range []string{"a", "b", "c"} {
		k, err := db.TakePrekey(ctx, d1.ID, "onetime", true)
		if err != nil || string(k.Data) != want {
			t.Errorf("take one-time: %+v %v, want %q", k, err, want)
		}
	}
	if _, err := db.TakePrekey(ctx, d1.ID, "onetime", true); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("one-time keys exhausted: %v", err)
	}
	// The signed key is the newest and stays.
	for i := 0; i < 2; i++ {
		if k, err := db.TakePrekey(ctx, d1.ID, "signed", false); err != nil || k.ID != 2 || string(k.Data) != "s2'" {
			t.Errorf("signed key: %+v %v", k, err)
		}
	}
	if n, _ := db.CountPrekeys(ctx, d2.ID, "signed"); n != 0 {
		t.Errorf("another device's keys: %d", n)
	}
	if err := db.PutKeys(ctx, 9999, store.KeyUpload{Add: map[string][]store.Prekey{"onetime": one}}); err == nil {
		t.Error("prekeys for a missing device accepted")
	}
}

// A phone's login by its account's user name, and a per-device SIP
// credential of the same name, are both found, lowest device first.
func testPhoneLogins(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	_, d1, d2 := twoDevices(t, db, "phone@x.org")
	if err := db.SetPhoneLogin(ctx, d2.ID, "phone", []byte("ha1-two")); err != nil {
		t.Fatal(err)
	}
	if err := db.SetPhoneLogin(ctx, d2.ID, "phone", []byte("again")); !errors.Is(err, store.ErrExists) {
		t.Errorf("second login of one device: %v", err)
	}
	if err := db.SetSIPCredential(ctx, d1.ID, "phone", []byte("ha1-one")); err != nil {
		t.Fatal(err)
	}
	ls, err := db.PhoneLogins(ctx, "phone")
	if err != nil || len(ls) != 2 || ls[0].Device.ID != d1.ID || string(ls[0].HA1) != "ha1-one" ||
		ls[1].Device.ID != d2.ID || string(ls[1].HA1) != "ha1-two" || ls[1].Device.Account != "phone@x.org" {
		t.Fatalf("phone logins: %+v %v", ls, err)
	}
	if ls, err := db.PhoneLogins(ctx, "nobody"); err != nil || len(ls) != 0 {
		t.Fatalf("logins of an unknown name: %+v %v", ls, err)
	}
}

// PutKeys writes everything or nothing: an element the database refuses
// (a key without data) or a count over the cap rolls back every other part.
func testPutKeysAtomic(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	now := time.Now()
	a, err := db.CreateAccount(ctx, "alpha@x.org", now)
	if err != nil {
		t.Fatal(err)
	}
	d, err := db.CreateDevice(ctx, store.Device{AccountID: a.ID, Name: "a1", Handle: "h", Suite: "ec", Serial: "1", Cert: []byte{1},
		SealedOPRF: []byte{1}, NotAfter: now.Add(time.Hour), Status: store.StatusActive, Created: now})
	if err != nil {
		t.Fatal(err)
	}
	caps := "3.1.4"
	good := store.KeyUpload{
		Replace: map[string]store.Prekey{"signed": {ID: 2, Data: []byte("spk")}},
		Add:     map[string][]store.Prekey{"onetime": {{ID: 1, Data: []byte{1}}, {ID: 2, Data: []byte{2}}}},
		Caps:    &caps,
	}
	cases := []struct {
		name string
		up   store.KeyUpload
		want error
	}{
		{"element without data", store.KeyUpload{Replace: good.Replace, Caps: good.Caps,
			Add: map[string][]store.Prekey{"onetime": {{ID: 1, Data: []byte{1}}, {ID: 2, Data: nil}}}}, nil},
		{"over the cap", store.KeyUpload{Replace: good.Replace, Add: good.Add, Caps: good.Caps, MaxPerKind: 1}, store.ErrTooManyKeys},
	}
	for _, c := range cases {
		err := db.PutKeys(ctx, d.ID, c.up)
		if err == nil || c.want != nil && !errors.Is(err, c.want) {
			t.Fatalf("%s: %v, want an error (%v)", c.name, err, c.want)
		}
		for _, kind := range []string{"signed", "onetime"} {
			if n, _ := db.CountPrekeys(ctx, d.ID, kind); n != 0 {
				t.Errorf("%s: %d %s keys stored", c.name, n, kind)
			}
		}
		if got, _ := db.DeviceByName(ctx, "alpha@x.org", "a1"); got.Caps != "" {
			t.Errorf("%s: capabilities %q stored", c.name, got.Caps)
		}
	}
	if err := db.PutKeys(ctx, d.ID, good); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.CountPrekeys(ctx, d.ID, "onetime"); n != 2 {
		t.Errorf("%d one-time keys after a good upload, want 2", n)
	}
	if got, _ := db.DeviceByName(ctx, "alpha@x.org", "a1"); got.Caps != caps {
		t.Errorf("capabilities %q after a good upload", got.Caps)
	}
}

// Contacts fetching keys at once from two handles each get a different
// one-time key, and no key twice.
func testTakePrekeyConcurrent(t *testing.T, open Opener) {
	ctx := context.Background()
	hs := []store.Store{open(t), open(t)}
	d := device(t, hs[0], "alpha@x.org", "a1")
	const n = 30
	var ks []store.Prekey
	for i := 1; i <= n; i++ {
		ks = append(ks, store.Prekey{ID: int64(i), Data: []byte{byte(i)}})
	}
	if err := hs[0].PutKeys(ctx, d.ID, store.KeyUpload{Add: map[string][]store.Prekey{"onetime": ks}}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[int64]int{}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			k, err := hs[i%2].TakePrekey(ctx, d.ID, "onetime", true)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			got[k.ID]++
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	if len(got) != n {
		t.Fatalf("%d different keys handed out to %d takers: %v", len(got), n, got)
	}
	if left, _ := hs[0].CountPrekeys(ctx, d.ID, "onetime"); left != 0 {
		t.Fatalf("%d keys left", left)
	}
}
