package directory

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/e164"
	"github.com/phonex/phonex/internal/store"
)

var errWrongCode = errors.New("wrong code")

// begin starts a claim: a code for the number goes to every active device
// of the account as a notice, standing in for an SMS to the number.
func (s *Service) begin(ctx context.Context, r *http.Request, c Caller) (any, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	number, err := ParseClaimBegin(body)
	if err != nil {
		return nil, badRequest(err)
	}
	devs, err := s.activeDevices(ctx, c.AccountID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	id, code := newID(), newCode()
	cl := store.DirClaim{ID: id, E164: number, AccountID: c.AccountID, DeviceID: c.DeviceID, CodeHash: codeHash(id, code),
		Created: now, Expires: now.Add(s.lim.ClaimTTL)}
	notices := make([]store.DirNotice, len(devs))
	for i, d := range devs {
		notices[i] = store.DirNotice{DeviceID: d.ID, Kind: store.DirNoticeCode, E164: number, Ref: id, Code: code,
			FromDevice: c.Device, Created: now, Expires: cl.Expires}
	}
	switch err := s.st.CreateDirClaim(ctx, cl, notices, s.lim.MaxOpen, now); {
	case errors.Is(err, store.ErrNumberTaken):
		return nil, apiErr(http.StatusConflict, api.CodeNumberTaken, "%s is published by another account", number)
	case errors.Is(err, store.ErrClaimsOpen):
		return nil, &api.Error{Status: http.StatusTooManyRequests, Code: api.CodeBusy, RetryAfter: s.lim.ClaimTTL.Seconds(),
			Message: "too many number claims in progress for this account; finish one or wait for them to expire"}
	case err != nil:
		return nil, err
	}
	return api.DirClaimBegun{Claim: id, Number: number, Devices: len(devs), Expires: cl.Expires}, nil
}

// prove answers a claim: a right code publishes the number at once, or,
// when the account publishes it already and this device's key is not
// among the published ones, schedules a replacement after the delay and
// tells the account's other devices.
func (s *Service) prove(ctx context.Context, r *http.Request, c Caller) (any, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	code, err := ParseClaimProve(body)
	if err != nil {
		return nil, badRequest(err)
	}
	id := r.PathValue("id")
	now := s.now()
	cl, err := s.st.ProveDirClaim(ctx, id, c.DeviceID, s.lim.MaxAttempts, now, func(cl store.DirClaim) error {
		if subtle.ConstantTimeCompare(cl.CodeHash, codeHash(cl.ID, code)) != 1 {
			return errWrongCode
		}
		return nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, apiErr(http.StatusNotFound, api.CodeClaimUnknown, "no open claim %s of this device (expired or answered?); start again", id)
	case errors.Is(err, store.ErrClaimAttempts):
		return nil, apiErr(http.StatusForbidden, api.CodeClaimLocked, "too many wrong codes: the claim is void; start again")
	case errors.Is(err, errWrongCode):
		return nil, apiErr(http.StatusForbidden, api.CodeCodeInvalid, "wrong code; %d tries left", s.lim.MaxAttempts-cl.Attempts)
	case err != nil:
		return nil, err
	}
	devs, err := s.activeDevices(ctx, c.AccountID)
	if err != nil {
		return nil, err
	}
	keys := make([]store.DirKey, len(devs))
	var mine store.DirKey
	for i, d := range devs {
		keys[i] = store.DirKey{Device: d.Name, Cert: d.Cert}
		if d.ID == c.DeviceID {
			mine = keys[i]
		}
	}
	cur, err := s.st.DirEntry(ctx, cl.E164)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err == nil && cur.AccountID == c.AccountID && !published(cur.Keys, mine) {
		return s.replace(ctx, c, cur, keys, devs, now)
	}
	e := store.DirEntry{E164: cl.E164, Hash: e164.Hash(cl.E164), AccountID: c.AccountID, AOR: c.Account, Keys: keys, Published: now}
	if err := s.st.PublishDir(ctx, e); errors.Is(err, store.ErrNumberTaken) {
		return nil, apiErr(http.StatusConflict, api.CodeNumberTaken, "%s is published by another account", cl.E164)
	} else if err != nil {
		return nil, err
	}
	s.changed(ctx)
	return api.DirPublication{State: api.DirPublished, Entry: entryOut(e, nil)}, nil
}

// published reports whether k's device and key are among the published
// keys. The key, not the certificate, is compared: a renewal keeps the
// device's key and issues a new certificate, and a renewed device is not a
// new one.
func published(keys []store.DirKey, k store.DirKey) bool {
	if len(k.Cert) == 0 {
		return false
	}
	for _, p := range keys {
		if p.Device == k.Device && bytes.Equal(publicKey(p.Cert), publicKey(k.Cert)) {
			return true
		}
	}
	return false
}

// publicKey is a certificate's SubjectPublicKeyInfo, or the bytes
// themselves when they are no certificate.
func publicKey(der []byte) []byte {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return der
	}
	return c.RawSubjectPublicKeyInfo
}

func (s *Service) replace(ctx context.Context, c Caller, cur store.DirEntry, active []store.DirKey, devs []store.Device, now time.Time) (any, error) {
	// The seed's lost phone: the published keys are discarded, and the
	// account's other active keys (the new device's among them) replace
	// them.
	var keys []store.DirKey
	for _, k := range active {
		if !published(cur.Keys, k) {
			keys = append(keys, k)
		}
	}
	rep := store.DirReplacement{ID: newID(), E164: cur.E164, AccountID: c.AccountID, DeviceID: c.DeviceID, AOR: c.Account, Keys: keys,
		Requested: now, Effective: now.Add(s.lim.ReplaceDelay)}
	var notices []store.DirNotice
	for _, d := range devs {
		if d.ID == c.DeviceID {
			continue
		}
		// The notice outlives the switch by a week, so a device that was
		// offline during the delay still learns of it.
		notices = append(notices, store.DirNotice{DeviceID: d.ID, Kind: store.DirNoticeReplacement, E164: cur.E164, Ref: rep.ID,
			FromDevice: c.Device, Effective: rep.Effective, Created: now, Expires: rep.Effective.Add(7 * 24 * time.Hour)})
	}
	if err := s.st.AddDirReplacement(ctx, rep, notices); err != nil {
		return nil, err
	}
	s.log.Info("directory key replacement scheduled", "replacement", rep.ID, "effective", rep.Effective)
	return api.DirPublication{State: api.DirReplacementPending, Entry: entryOut(cur, &rep)}, nil
}

func (s *Service) activeDevices(ctx context.Context, accountID int64) ([]store.Device, error) {
	ds, err := s.st.Devices(ctx, accountID)
	if err != nil {
		return nil, err
	}
	var out []store.Device
	for _, d := range ds {
		if d.Status == store.StatusActive && len(d.Cert) > 0 {
			out = append(out, d)
		}
	}
	return out, nil
}

func keysOut(ks []store.DirKey) []api.DirKey {
	out := make([]api.DirKey, len(ks))
	for i, k := range ks {
		out[i] = api.DirKey{Device: k.Device, Cert: k.Cert}
	}
	return out
}

func entryOut(e store.DirEntry, rep *store.DirReplacement) api.DirEntry {
	out := api.DirEntry{Number: e.E164, AOR: e.AOR, Keys: keysOut(e.Keys), Published: e.Published.UTC()}
	if rep != nil {
		out.Pending = &api.DirPending{Replacement: rep.ID, Effective: rep.Effective.UTC(), Keys: keysOut(rep.Keys)}
	}
	return out
}

// notices hands this device its notices once.
func (s *Service) notices(ctx context.Context, r *http.Request, c Caller) (any, error) {
	ns, err := s.st.TakeDirNotices(ctx, c.DeviceID, r.URL.Query().Get("ref"), s.now())
	if err != nil {
		return nil, err
	}
	out := api.DirNotices{Notices: []api.DirNotice{}}
	for _, n := range ns {
		o := api.DirNotice{Kind: n.Kind, Number: n.E164, Ref: n.Ref, Code: n.Code, FromDevice: n.FromDevice, Created: n.Created.UTC()}
		if !n.Effective.IsZero() {
			t := n.Effective.UTC()
			o.Effective = &t
		}
		out.Notices = append(out.Notices, o)
	}
	return out, nil
}

// cancel withdraws a pending replacement: from a device whose key is
// published (the one the lost phone would not be), or the one that asked.
func (s *Service) cancel(ctx context.Context, r *http.Request, c Caller) (any, error) {
	id := r.PathValue("id")
	rep, err := s.st.DirReplacement(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && rep.AccountID != c.AccountID) {
		return nil, apiErr(http.StatusNotFound, api.CodeNotFound, "no pending replacement %s for this account (already published?)", id)
	}
	if err != nil {
		return nil, err
	}
	cur, err := s.st.DirEntry(ctx, rep.E164)
	if err != nil {
		return nil, err
	}
	devs, err := s.activeDevices(ctx, c.AccountID)
	if err != nil {
		return nil, err
	}
	var mine store.DirKey
	for _, d := range devs {
		if d.ID == c.DeviceID {
			mine = store.DirKey{Device: d.Name, Cert: d.Cert}
		}
	}
	if rep.DeviceID != c.DeviceID && !published(cur.Keys, mine) {
		return nil, apiErr(http.StatusForbidden, api.CodeNotAllowed, "only a device whose key is published can cancel a replacement")
	}
	if err := s.st.DeleteDirReplacement(ctx, id); errors.Is(err, store.ErrNotFound) {
		return nil, apiErr(http.StatusNotFound, api.CodeNotFound, "no pending replacement %s for this account (already published?)", id)
	} else if err != nil {
		return nil, err
	}
	s.log.Info("directory key replacement cancelled", "replacement", id)
	return map[string]string{"cancelled": id}, nil
}

// spend counts n queries against the device's budget.
func (s *Service) spend(ctx context.Context, c Caller, n int) error {
	now := s.now()
	end, err := s.st.SpendDirBudget(ctx, c.DeviceID, n, s.lim.QueryBudget, s.lim.QueryWindow, now)
	if errors.Is(err, store.ErrBudget) {
		return &api.Error{Status: http.StatusTooManyRequests, Code: api.CodeThrottled, RetryAfter: max(end.Sub(now).Seconds(), 1),
			Message: "this device's directory queries are spent for now; try again later"}
	}
	return err
}

// withPending adds each entry's pending replacement, publishing those
// whose delay has passed and the sweeper has not reached yet.
func (s *Service) withPending(ctx context.Context, es []store.DirEntry) ([]api.DirEntry, error) {
	out := make([]api.DirEntry, 0, len(es))
	now := s.now()
	for _, e := range es {
		rep, err := s.st.DirReplacementFor(ctx, e.E164)
		switch {
		case errors.Is(err, store.ErrNotFound):
			out = append(out, entryOut(e, nil))
			continue
		case err != nil:
			return nil, err
		}
		if now.Before(rep.Effective) {
			out = append(out, entryOut(e, &rep))
			continue
		}
		if err := s.sweep(ctx); err != nil {
			return nil, err
		}
		if e, err = s.st.DirEntry(ctx, e.E164); err != nil {
			return nil, err
		}
		out = append(out, entryOut(e, nil))
	}
	return out, nil
}

// lookup finds a number or the numbers of a SIP address. Nothing about
// the query is logged or stored.
func (s *Service) lookup(ctx context.Context, r *http.Request, c Caller) (any, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	q, err := ParseLookup(body)
	if err != nil {
		return nil, badRequest(err)
	}
	if err := s.spend(ctx, c, 1); err != nil {
		return nil, err
	}
	var es []store.DirEntry
	if q.Number != "" {
		e, err := s.st.DirEntry(ctx, q.Number)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if err == nil {
			es = append(es, e)
		}
	} else if es, err = s.st.DirEntriesByAOR(ctx, q.AOR); err != nil {
		return nil, err
	}
	if len(es) == 0 {
		return nil, apiErr(http.StatusNotFound, api.CodeNotFound, "not published in this directory")
	}
	out, err := s.withPending(ctx, es)
	return api.DirEntries{Entries: out}, err
}

// discover answers the hashes that match a published number.
func (s *Service) discover(ctx context.Context, r *http.Request, c Caller) (any, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	hashes, err := ParseDiscover(body)
	if err != nil {
		return nil, badRequest(err)
	}
	if err := s.spend(ctx, c, len(hashes)); err != nil {
		return nil, err
	}
	es, err := s.st.DirEntriesByHash(ctx, hashes)
	if err != nil {
		return nil, err
	}
	entries, err := s.withPending(ctx, es)
	if err != nil {
		return nil, err
	}
	out := api.DirDiscovered{Matches: []api.DirMatch{}}
	for i, e := range entries {
		out.Matches = append(out.Matches, api.DirMatch{Hash: es[i].Hash, DirEntry: e})
	}
	return out, nil
}

// sweep publishes due replacements and forgets expired claims and notices.
func (s *Service) sweep(ctx context.Context) error {
	now := s.now()
	changed, err := s.st.ApplyDueDirReplacements(ctx, now)
	if err != nil {
		return err
	}
	if len(changed) > 0 {
		s.log.Info("directory key replacements published", "count", len(changed))
		s.changed(ctx)
	}
	return s.st.DeleteExpiredDir(ctx, now)
}

// changed gives Changed every entry when they differ from what it was
// given last: publications made through this node, and those of other
// nodes sharing the store, which the sweeper finds.
func (s *Service) changed(ctx context.Context) {
	if s.Changed == nil {
		return
	}
	es, err := s.st.DirEntries(ctx)
	if err != nil {
		s.log.Error("directory entries for the zone", "err", err)
		return
	}
	h := sha256.New()
	for _, e := range es {
		fmt.Fprintf(h, "%q %q %d\n", e.E164, e.AOR, len(e.Keys))
		for _, k := range e.Keys {
			fmt.Fprintf(h, "%q %x\n", k.Device, k.Cert)
		}
	}
	sum := h.Sum(nil)
	s.mu.Lock()
	same := bytes.Equal(sum, s.pushed)
	s.pushed = sum
	s.mu.Unlock()
	if !same {
		s.Changed(ctx, es)
	}
}

// Run sweeps every interval until ctx ends.
func (s *Service) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	s.changed(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("directory sweep", "err", err)
			}
			s.changed(ctx)
		}
	}
}
