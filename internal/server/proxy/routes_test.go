package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/store/sqlite"
)

// TestRouteCacheInvalidation: after a message has put its route in the
// cache, each change to what routing reads takes effect for the very next
// message, whether the node's API made it or an admin command in another
// process (a second handle on the data file).
func TestRouteCacheInvalidation(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		change func(r *rig, st *sqlite.DB) error
		code   int
		copies map[string]int // new copies per device, "account/device"
	}{
		{name: "recipient removes the sender", code: 403, change: func(r *rig, st *sqlite.DB) error {
			return st.RemoveContact(ctx, r.accountID("bravo"), "alpha@"+domain)
		}},
		{name: "sender removes the recipient", code: 403, change: func(r *rig, st *sqlite.DB) error {
			return st.RemoveContact(ctx, r.accountID("alpha"), "bravo@"+domain)
		}},
		{name: "recipient's device revoked", code: 200, copies: map[string]int{"bravo/b1": 1, "bravo/b2": 0, "alpha/a2": 1},
			change: func(r *rig, st *sqlite.DB) error {
				return st.SetDeviceStatus(ctx, r.deviceID("bravo", "b2"), store.StatusRevoked)
			}},
		{name: "sender's other device revoked", code: 200, copies: map[string]int{"bravo/b1": 1, "bravo/b2": 1, "alpha/a2": 0},
			change: func(r *rig, st *sqlite.DB) error {
				return st.SetDeviceStatus(ctx, r.deviceID("alpha", "a2"), store.StatusRevoked)
			}},
		{name: "every device of the recipient revoked", code: 480, change: func(r *rig, st *sqlite.DB) error {
			if err := st.SetDeviceStatus(ctx, r.deviceID("bravo", "b1"), store.StatusRevoked); err != nil {
				return err
			}
			return st.SetDeviceStatus(ctx, r.deviceID("bravo", "b2"), store.StatusRevoked)
		}},
		{name: "recipient disabled", code: 480, change: func(r *rig, st *sqlite.DB) error {
			return st.SetAccountStatus(ctx, "bravo@"+domain, store.StatusDisabled)
		}},
		{name: "recipient deleted", code: 404, change: func(r *rig, st *sqlite.DB) error {
			return st.DeleteAccount(ctx, "bravo@"+domain)
		}},
		{name: "recipient adds a device", code: 200, copies: map[string]int{"bravo/b1": 1, "bravo/b2": 1, "bravo/b3": 1, "alpha/a2": 1},
			change: func(r *rig, st *sqlite.DB) error {
				_, err := st.CreateDevice(ctx, store.Device{AccountID: r.accountID("bravo"), Name: "b3", Handle: "bravo/b3", Suite: "ec", Serial: "01",
					Cert: []byte{1}, NotAfter: time.Now().Add(time.Hour), SealedOPRF: []byte{1}, Created: time.Now()})
				return err
			}},
	}
	for _, other := range []bool{false, true} {
		for _, tc := range tests {
			name := "node/" + tc.name
			if other {
				name = "admin process/" + tc.name
			}
			t.Run(name, func(t *testing.T) {
				r, _ := newRig(t, nil)
				r.account("alpha", "a1", "a2")
				r.account("bravo", "b1", "b2")
				r.friends("alpha", "bravo")
				a1 := r.dev("alpha", "a1")
				if res := a1.send("bravo", "warm"); res.StatusCode != 200 {
					t.Fatalf("first message: %d %s", res.StatusCode, res.Reason)
				}
				st := r.db
				if other {
					var err error
					if st, err = sqlite.Open(ctx, r.path); err != nil {
						t.Fatal(err)
					}
					defer st.Close()
				}
				if err := tc.change(r, st); err != nil {
					t.Fatal(err)
				}
				before := r.pendingByDevice()
				if res := a1.send("bravo", "after"); res.StatusCode != tc.code {
					t.Fatalf("after the change: %d %s, want %d", res.StatusCode, res.Reason, tc.code)
				}
				after := r.pendingByDevice()
				for dev, n := range after {
					if got, want := n-before[dev], tc.copies[dev]; got != want {
						t.Errorf("%s: %d new copies, want %d", dev, got, want)
					}
				}
			})
		}
	}
}

func (r *rig) accountID(name string) int64 {
	r.t.Helper()
	a, err := r.db.Account(context.Background(), name+"@"+domain)
	if err != nil {
		r.t.Fatal(err)
	}
	return a.ID
}

// pendingByDevice counts the stored copies of every device of every
// account, by "account/device".
func (r *rig) pendingByDevice() map[string]int {
	r.t.Helper()
	ctx := context.Background()
	as, err := r.db.Accounts(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]int{}
	for _, a := range as {
		ds, err := r.db.Devices(ctx, a.ID)
		if err != nil {
			r.t.Fatal(err)
		}
		for _, d := range ds {
			ps, err := r.db.Pending(ctx, d.ID, 1000)
			if err != nil {
				r.t.Fatal(err)
			}
			out[user(a.Name)+"/"+d.Name] = len(ps)
		}
	}
	return out
}
