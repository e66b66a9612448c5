package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/phonex/phonex/internal/amp"
	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/keys"
	"github.com/phonex/phonex/internal/stp"
)

// Signed prekey rotation, as PQXDH §3.2 and X3DH §3.2 ask: the device
// uploads a new signed prekey (and last-resort ML-KEM prekey) "at some
// interval", keeps the previous private key "for some period of time, to
// handle messages using it that have been delayed in transit", then deletes
// it for forward secrecy. A message may wait on the cluster for up to the
// STP receive window, so that is the grace period.
var (
	PrekeyRotation = 7 * 24 * time.Hour
	PrekeyGrace    = stp.DefaultMaxAge
)

// kv keys of the signed prekey state.
const (
	kvSPKCurrent   = "spk-current"   // id of the current signed prekey and ML-KEM last-resort prekey
	kvSPKSince     = "spk-since"     // when it was made (unix ms)
	kvSPKUpload    = "spk-upload"    // its public halves as published (JSON)
	kvSPKPublished = "spk-published" // the id the cluster holds
	kvRetired      = "prekey-retired/"
	kvRecordState  = "record-published"
)

func kvGet(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, k string) (string, bool, error) {
	var v []byte
	err := q.QueryRowContext(ctx, `SELECT v FROM kv WHERE k=?`, k).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return string(v), err == nil, err
}

func kvPut(ctx context.Context, x interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, k, v string) error {
	_, err := x.ExecContext(ctx, `INSERT INTO kv(k, v) VALUES(?, ?) ON CONFLICT(k) DO UPDATE SET v=excluded.v`, k, []byte(v))
	return err
}

func kvInt(ctx context.Context, db *sql.DB, k string) (int64, error) {
	v, ok, err := kvGet(ctx, db, k)
	if err != nil || !ok {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// currentSigned returns the current signed prekey id and when it was made;
// 0 when there is none. Profiles from before rotation have id 1 with no
// recorded time: they are replaced at once.
func (p *Profile) currentSigned(ctx context.Context) (uint32, time.Time, error) {
	db := p.db.db
	id, err := kvInt(ctx, db, kvSPKCurrent)
	if err != nil {
		return 0, time.Time{}, err
	}
	if id == 0 {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM ratchet_prekeys WHERE kind=? AND id=?`, kindSPK, signedPrekeyID).Scan(&n); err != nil || n == 0 {
			return 0, time.Time{}, err
		}
		// Made before rotation: replace it now.
		if err := kvPut(ctx, db, kvSPKCurrent, "1"); err != nil {
			return 0, time.Time{}, err
		}
		return signedPrekeyID, time.Time{}, kvPut(ctx, db, kvSPKSince, "0")
	}
	since, err := kvInt(ctx, db, kvSPKSince)
	return uint32(id), time.UnixMilli(since), err
}

// retirePrekeys deletes the replaced signed prekeys whose grace period is
// over.
func (p *Profile) retirePrekeys(ctx context.Context) error {
	db := p.db.db
	rows, err := db.QueryContext(ctx, `SELECT k, v FROM kv WHERE k LIKE 'prekey-retired/%'`)
	if err != nil {
		return err
	}
	type retired struct {
		k  string
		id int64
		at int64
	}
	var due []retired
	for rows.Next() {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return err
		}
		id, err1 := strconv.ParseInt(strings.TrimPrefix(k, kvRetired), 10, 64)
		at, err2 := strconv.ParseInt(string(v), 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if p.now().Sub(time.UnixMilli(at)) >= PrekeyGrace {
			due = append(due, retired{k, id, at})
		}
	}
	rows.Close()
	for _, r := range due {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM ratchet_prekeys WHERE kind IN (?, ?) AND id=?`, kindSPK, kindPQLast, r.id)
		if err == nil {
			_, err = tx.ExecContext(ctx, `DELETE FROM kv WHERE k=?`, r.k)
		}
		if err == nil {
			err = tx.Commit()
		}
		tx.Rollback()
		if err != nil {
			return err
		}
	}
	return nil
}

// signedUpload is the published form of the current signed prekeys.
type signedUpload struct {
	Signed   *api.Prekey `json:"signed"`
	PQSigned *api.Prekey `json:"pq_signed"`
}

// capabilityRecord signs this device's record: what it speaks and its
// current signed prekeys. It returns nil when the cluster already holds
// the same statement.
func (p *Profile) capabilityRecord(ctx context.Context) (*api.Prekey, []string, string, error) {
	ik, err := p.identity()
	if err != nil {
		return nil, nil, "", err
	}
	cur, _, err := p.currentSigned(ctx)
	if err != nil {
		return nil, nil, "", err
	}
	caps := amp.Capabilities(ik != nil && cur != 0)
	if ik != nil && cur == 0 {
		// An ec-suite device signs no record without the ratchet: a
		// cluster could keep such a record and hand it out later to make
		// senders use key slots without a downgrade warning. Until its
		// prekeys exist it has no record, and senders count it capable.
		return nil, caps, "", nil
	}
	state := fmt.Sprintf("%s|%d", strings.Join(caps, ","), cur)
	if have, _, err := kvGet(ctx, p.db.db, kvRecordState); err != nil || have == state {
		return nil, caps, state, err
	}
	rec := &amp.CapabilityRecord{Device: p.Device.String(), Capabilities: caps, Issued: p.now(), SignedPrekey: cur, PQPrekey: cur}
	b, err := rec.Marshal()
	if err != nil {
		return nil, nil, "", err
	}
	sig, err := keys.Sign(p.Keys.Sign, b)
	if err != nil {
		return nil, nil, "", err
	}
	return &api.Prekey{ID: rec.Issued.UnixMilli(), Data: b, Sig: sig}, caps, state, nil
}

// verifyRecord checks a device's capability record against its
// certificate. Nil, with the reason, when it is missing or does not verify.
func verifyRecord(cert *x509.Certificate, dev string, k *api.Prekey) (*amp.CapabilityRecord, error) {
	if k == nil {
		return nil, errors.New("no capability record")
	}
	if err := keys.Verify(cert.PublicKey, k.Data, k.Sig); err != nil {
		return nil, fmt.Errorf("capability record: %w", err)
	}
	rec, err := amp.ParseCapabilityRecord(k.Data)
	if err != nil {
		return nil, err
	}
	if rec.Device != dev {
		return nil, fmt.Errorf("capability record names %q", rec.Device)
	}
	return rec, nil
}

// ratchetCapable reports whether a device takes part in the ratchet STP:
// as its signed record says, or, without a valid record, whenever it is an
// ec-suite device (every one publishes prekeys; a missing record is the
// cluster's doing).
func (d peerDevice) ratchetCapable() bool {
	if d.record != nil {
		return d.record.Ratchet()
	}
	_, ed := d.cert.PublicKey.(ed25519.PublicKey)
	_, isRSA := d.cert.PublicKey.(*rsa.PublicKey)
	return ed && !isRSA && d.kex != nil
}

func marshalUpload(u signedUpload) string {
	b, _ := json.Marshal(u)
	return string(b)
}
