package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/store"
)

// Key kinds in the store.
const (
	kindKEM       = "kem"
	kindSigned    = "signed"
	kindOneTime   = "onetime"
	kindPQSigned  = "pq-signed"
	kindPQOneTime = "pq-onetime"
)

func encodeKey(k api.Prekey) store.Prekey {
	b, _ := json.Marshal(k)
	return store.Prekey{ID: k.ID, Data: b}
}

func decodeKey(k store.Prekey) (*api.Prekey, error) {
	var out api.Prekey
	if err := json.Unmarshal(k.Data, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func checkKeys(keys ...api.Prekey) error {
	if len(keys) > api.MaxPrekeysPerPut {
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "at most %d keys per upload", api.MaxPrekeysPerPut)
	}
	for _, k := range keys {
		if len(k.Data) == 0 || len(k.Data) > api.MaxPrekeyData || len(k.Sig) > 1024 || k.ID < 0 {
			return errorf(http.StatusBadRequest, api.CodeBadRequest, "malformed key %d", k.ID)
		}
	}
	return nil
}

// putKeys stores what a device publishes.
func (n *Node) putKeys(ctx context.Context, r *http.Request, c *caller) (any, error) {
	var req api.Prekeys
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	single := map[string]*api.Prekey{kindKEM: req.KEM, kindSigned: req.Signed, kindPQSigned: req.PQSigned}
	for kind, k := range single {
		if k == nil {
			continue
		}
		if err := checkKeys(*k); err != nil {
			return nil, err
		}
		if err := n.st.PutPrekeys(ctx, c.device.ID, kind, []store.Prekey{encodeKey(*k)}); err != nil {
			return nil, err
		}
	}
	for kind, ks := range map[string][]api.Prekey{kindOneTime: req.OneTime, kindPQOneTime: req.PQOneTime} {
		if err := checkKeys(ks...); err != nil {
			return nil, err
		}
		var enc []store.Prekey
		for _, k := range ks {
			enc = append(enc, encodeKey(k))
		}
		if err := n.st.PutPrekeys(ctx, c.device.ID, kind, enc); err != nil {
			return nil, err
		}
	}
	if req.Capabilities != nil {
		for _, cp := range req.Capabilities {
			if len(cp) > 32 || strings.ContainsAny(cp, ", ") {
				return nil, errorf(http.StatusBadRequest, api.CodeBadRequest, "malformed capability %q", cp)
			}
		}
		if len(req.Capabilities) > 32 {
			return nil, errorf(http.StatusBadRequest, api.CodeBadRequest, "too many capabilities")
		}
		if err := n.st.SetDeviceCaps(ctx, c.device.ID, strings.Join(req.Capabilities, ",")); err != nil {
			return nil, err
		}
	}
	return n.countKeys(ctx, c.device.ID)
}

func (n *Node) countKeys(ctx context.Context, deviceID int64) (api.PrekeyCount, error) {
	var out api.PrekeyCount
	var err error
	if out.OneTime, err = n.st.CountPrekeys(ctx, deviceID, kindOneTime); err != nil {
		return out, err
	}
	out.PQOneTime, err = n.st.CountPrekeys(ctx, deviceID, kindPQOneTime)
	return out, err
}

func (n *Node) keyCount(ctx context.Context, r *http.Request, c *caller) (any, error) {
	return n.countKeys(ctx, c.device.ID)
}

// getKeys hands out the bundles of every device of an account: to the
// account's own devices, and to accounts the owner has on its contact list.
// Each one-time key goes to one requester only.
func (n *Node) getKeys(ctx context.Context, r *http.Request, c *caller) (any, error) {
	acct, err := ident.ParseAccount(r.PathValue("user"))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err)
	}
	if acct.Domain != n.cfg.Domain {
		return nil, errorf(http.StatusBadRequest, api.CodeFederation, "%s is not an account of this cluster; federation is not supported yet", acct)
	}
	owner, err := n.st.Account(ctx, acct.String())
	if errors.Is(err, store.ErrNotFound) || (err == nil && owner.Status == store.StatusPending) {
		return nil, errorf(http.StatusNotFound, api.CodeUnknownUser, "no account %s on this cluster", acct)
	}
	if err != nil {
		return nil, err
	}
	if owner.ID != c.account.ID {
		ok, err := n.st.HasContact(ctx, owner.Name, c.account.Name)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errorf(http.StatusForbidden, api.CodeNotAllowed, "%s has not added you to their contacts", owner.Name)
		}
	}
	ds, err := n.st.Devices(ctx, owner.ID)
	if err != nil {
		return nil, err
	}
	consume := map[string]bool{}
	if v := r.URL.Query().Get("consume"); v != "" {
		for _, name := range strings.Split(v, ",") {
			consume[name] = true
		}
	}
	out := []api.Bundle{}
	for _, d := range ds {
		if d.Status != store.StatusActive || d.Suite == SuiteSIP {
			continue
		}
		b := api.Bundle{Device: owner.Name + "/" + d.Name, Cert: d.Cert, KexCert: d.KexCert, Capabilities: []string{}}
		if d.Caps != "" {
			b.Capabilities = strings.Split(d.Caps, ",")
		}
		for _, x := range []struct {
			kind    string
			consume bool
			dst     **api.Prekey
		}{{kindKEM, false, &b.KEM}, {kindSigned, false, &b.Signed}, {kindPQSigned, false, &b.PQSigned},
			{kindOneTime, true, &b.OneTime}, {kindPQOneTime, true, &b.PQOneTime}} {
			if x.consume && (d.ID == c.device.ID || !consume[d.Name]) {
				continue // one-time keys only for sessions being started
			}
			k, err := n.st.TakePrekey(ctx, d.ID, x.kind, x.consume)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if *x.dst, err = decodeKey(k); err != nil {
				return nil, err
			}
		}
		out = append(out, b)
	}
	return out, nil
}
