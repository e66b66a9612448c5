package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store"
)

// PutKeys writes everything or nothing: an element the database refuses
// (a key without data) or a count over the cap rolls back every other part.
func TestPutKeysAtomic(t *testing.T) {
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
}
