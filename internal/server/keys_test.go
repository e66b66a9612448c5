package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/store"
)

// keyNode is a node with accounts alpha (devices a1, a2, a3) and bravo
// (device b1), each on the other's contact list. The handlers are called
// directly with the caller the TLS layer would have authenticated.
type keyNode struct {
	n       *Node
	callers map[string]*caller
}

func newKeyNode(t *testing.T) *keyNode {
	t.Helper()
	ctx := context.Background()
	cfg := Defaults(t.TempDir())
	cfg.Domain = "example.org"
	if _, err := Init(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	n, err := Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	k := &keyNode{n: n, callers: map[string]*caller{}}
	now := time.Now()
	for user, devs := range map[string][]string{"alpha@example.org": {"a1", "a2", "a3"}, "bravo@example.org": {"b1"}} {
		a, err := n.st.CreateAccount(ctx, user, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.st.SetAccountStatus(ctx, user, store.StatusActive); err != nil {
			t.Fatal(err)
		}
		a.Status = store.StatusActive
		for _, name := range devs {
			d, err := n.st.CreateDevice(ctx, store.Device{AccountID: a.ID, Name: name, Handle: "h-" + name, Suite: "ec", Serial: name,
				Cert: []byte{1}, SealedOPRF: []byte{1}, NotAfter: now.Add(time.Hour), Status: store.StatusActive, Created: now})
			if err != nil {
				t.Fatal(err)
			}
			k.callers[name] = &caller{account: a, device: d}
		}
	}
	for _, c := range [][3]string{{"a1", "bravo@example.org"}, {"b1", "alpha@example.org"}} {
		if err := n.st.AddContact(ctx, k.callers[c[0]].account.ID, c[1], now); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

func (k *keyNode) put(dev string, up api.Prekeys) error {
	b, _ := json.Marshal(up)
	r := httptest.NewRequest("PUT", api.PathKeys, bytes.NewReader(b))
	_, err := k.n.putKeys(context.Background(), r, k.callers[dev])
	return err
}

func (k *keyNode) get(dev, user, consume string) ([]api.Bundle, error) {
	r := httptest.NewRequest("GET", api.PathKeys+"/"+user+"?consume="+consume, nil)
	r.SetPathValue("user", user)
	out, err := k.n.getKeys(context.Background(), r, k.callers[dev])
	if err != nil {
		return nil, err
	}
	return out.([]api.Bundle), nil
}

func (k *keyNode) count(t *testing.T, dev, kind string) int {
	t.Helper()
	n, err := k.n.st.CountPrekeys(context.Background(), k.callers[dev].device.ID, kind)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func oneTime(from, n int) []api.Prekey {
	var out []api.Prekey
	for i := range n {
		out = append(out, api.Prekey{ID: int64(from + i), Data: []byte{byte(i), 1}})
	}
	return out
}

func badRequest(err error) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Status == http.StatusBadRequest
}

// A publication is stored all or nothing: a malformed element, or one
// one-time key beyond the per-device cap, leaves every part unstored.
func TestPutKeysAllOrNothing(t *testing.T) {
	k := newKeyNode(t)
	signed := &api.Prekey{ID: 1, Data: []byte("spk"), Sig: []byte("sig")}
	kem := &api.Prekey{ID: 1, Data: []byte("kem"), Sig: []byte("sig")}
	cases := []struct {
		name string
		up   api.Prekeys
	}{
		{"malformed one-time key", api.Prekeys{Signed: signed, KEM: kem, OneTime: append(oneTime(1, 5), api.Prekey{ID: 9})}},
		{"malformed pq key", api.Prekeys{Signed: signed, OneTime: oneTime(1, 5), PQOneTime: []api.Prekey{{ID: -1, Data: []byte{1}}}}},
		{"bad capability", api.Prekeys{Signed: signed, OneTime: oneTime(1, 5), Capabilities: []string{"3.1.4", "a b"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := k.put("a1", c.up); !badRequest(err) {
				t.Fatalf("got %v, want a bad request", err)
			}
			for _, kind := range []string{kindSigned, kindKEM, kindOneTime, kindPQOneTime} {
				if n := k.count(t, "a1", kind); n != 0 {
					t.Errorf("%d %s keys stored from a refused upload", n, kind)
				}
			}
		})
	}
	t.Run("over the cap", func(t *testing.T) {
		for i := 0; i < api.MaxStoredPrekeys; i += api.MaxPrekeysPerPut {
			if err := k.put("a2", api.Prekeys{OneTime: oneTime(i, api.MaxPrekeysPerPut)}); err != nil {
				t.Fatal(err)
			}
		}
		err := k.put("a2", api.Prekeys{Signed: signed, OneTime: oneTime(api.MaxStoredPrekeys, 1)})
		if !badRequest(err) {
			t.Fatalf("one key beyond the cap: %v, want a bad request", err)
		}
		if n := k.count(t, "a2", kindOneTime); n != api.MaxStoredPrekeys {
			t.Errorf("%d one-time keys stored, want the cap %d", n, api.MaxStoredPrekeys)
		}
		if n := k.count(t, "a2", kindSigned); n != 0 {
			t.Errorf("the signed prekey of a refused upload was stored")
		}
	})
}

// A rotated signed prekey replaces the old one on the cluster: the old one
// is never handed out again.
func TestSignedPrekeyRotationReplaces(t *testing.T) {
	k := newKeyNode(t)
	for id := int64(1); id <= 3; id++ {
		if err := k.put("b1", api.Prekeys{Signed: &api.Prekey{ID: id, Data: fmt.Appendf(nil, "spk %d", id)},
			PQSigned: &api.Prekey{ID: id, Data: fmt.Appendf(nil, "pq %d", id)}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, kind := range []string{kindSigned, kindPQSigned} {
		if n := k.count(t, "b1", kind); n != 1 {
			t.Errorf("%d %s keys kept, want only the current one", n, kind)
		}
	}
	bs, err := k.get("a1", "bravo@example.org", "")
	if err != nil || len(bs) != 1 || bs[0].Signed == nil || bs[0].Signed.ID != 3 || bs[0].PQSigned.ID != 3 {
		t.Fatalf("bundle %+v, %v: want the id-3 keys", bs, err)
	}
}

// One requesting device gets a few one-time keys of a target per window;
// all requesters together get a bounded number; beyond, bundles come
// without one-time keys and the target's supply stays.
func TestOneTimeHandoutLimited(t *testing.T) {
	k := newKeyNode(t)
	if err := k.put("b1", api.Prekeys{Signed: &api.Prekey{ID: 1, Data: []byte("spk")}, OneTime: oneTime(1, 100), PQOneTime: oneTime(1, 100)}); err != nil {
		t.Fatal(err)
	}
	handedTo := func(dev string, times int) (got int) {
		t.Helper()
		for range times {
			bs, err := k.get(dev, "bravo@example.org", "b1")
			if err != nil || len(bs) != 1 || bs[0].Signed == nil {
				t.Fatalf("bundle %+v, %v", bs, err)
			}
			if bs[0].OneTime != nil {
				got++
			}
		}
		return got
	}
	if got := handedTo("a1", 20); got != handoutPerPair {
		t.Fatalf("one requester got %d one-time keys in a window, want %d", got, handoutPerPair)
	}
	if n := k.count(t, "b1", kindOneTime); n != 100-handoutPerPair {
		t.Errorf("%d one-time keys left, want %d", n, 100-handoutPerPair)
	}
	// Another device of alpha has its own allowance; the target's total cap
	// stops the two together.
	k.n.handouts.mu.Lock()
	k.n.handouts.perTarget = handoutPerPair + 2
	k.n.handouts.mu.Unlock()
	if got := handedTo("a2", 20); got != 2 {
		t.Fatalf("second requester got %d, want 2 (target cap)", got)
	}
	// The window passes.
	k.n.now = func() time.Time { return time.Now().Add(handoutWindow + time.Minute) }
	if got := handedTo("a3", 1); got != 1 {
		t.Fatal("no one-time key after the window passed")
	}
}
