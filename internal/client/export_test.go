package client

import (
	"context"
	"errors"
	"time"

	"github.com/phonex/phonex/internal/ident"
)

// Test hooks for the external tests of this package.

// SetClock replaces the profile's clock.
func SetClock(p *Profile, now func() time.Time) { p.now = now }

// PublishPrekeys runs the prekey publication (rotation, refill, record).
func PublishPrekeys(ctx context.Context, p *Profile) error { return p.publishPrekeys(ctx) }

// PrekeyIDs lists the signed prekey ids whose private keys the device holds,
// and the current one.
func PrekeyIDs(ctx context.Context, p *Profile) (held []uint32, current uint32, err error) {
	rows, err := p.db.db.QueryContext(ctx, `SELECT id FROM ratchet_prekeys WHERE kind=? ORDER BY id`, kindSPK)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var id uint32
		if err := rows.Scan(&id); err != nil {
			return nil, 0, err
		}
		held = append(held, id)
	}
	current, _, err = p.currentSigned(ctx)
	return held, current, err
}

// BundleIDs returns, per device of acct, the signed prekey id of the bundle
// the cluster hands out and whether it verified (with the device's record).
func BundleIDs(ctx context.Context, p *Profile, acct string) (map[string]uint32, error) {
	a, err := ident.ParseAccount(acct)
	if err != nil {
		return nil, err
	}
	ds, err := p.bundles(ctx, a)
	if err != nil {
		return nil, err
	}
	out := map[string]uint32{}
	for _, d := range ds {
		if d.bundle != nil {
			out[d.id.String()] = d.bundle.SignedPrekeyID
		}
	}
	return out, nil
}

// ForgetSessions drops every ratchet session of the profile (a device that
// lost its state, or one that chose to downgrade).
func ForgetSessions(ctx context.Context, p *Profile) error {
	_, err := p.db.db.ExecContext(ctx, `DELETE FROM ratchet_sessions`)
	return err
}

// BundleHasOneTime fetches the bundle of device (consuming its one-time
// keys) and reports whether a verified one-time X25519 prekey came with it.
func BundleHasOneTime(ctx context.Context, p *Profile, device string) (bool, error) {
	d, err := ident.ParseDevice(device)
	if err != nil {
		return false, err
	}
	ds, err := p.bundles(ctx, d.Account, d.Name)
	if err != nil {
		return false, err
	}
	for _, pd := range ds {
		if pd.id == d && pd.bundle != nil {
			return pd.bundle.OneTimePrekey != nil, nil
		}
	}
	return false, errors.New("no bundle")
}

// RecordWithoutPrekeys reports whether the device would sign a capability
// record while it has no signed prekey.
func RecordWithoutPrekeys(ctx context.Context, p *Profile) (bool, error) {
	for _, q := range []string{`DELETE FROM ratchet_prekeys WHERE kind IN ('spk', 'pq-last')`, `DELETE FROM kv WHERE k IN ('spk-current', 'record-published')`} {
		if _, err := p.db.db.ExecContext(ctx, q); err != nil {
			return false, err
		}
	}
	rec, _, _, err := p.capabilityRecord(ctx)
	return rec != nil, err
}
