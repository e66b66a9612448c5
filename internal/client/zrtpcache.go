package client

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/phonex/phonex/internal/sipua"
	"github.com/phonex/phonex/internal/zrtp"
)

// zrtpStore keeps the ZRTP state of calls in the profile's encrypted
// database, so that a stolen device yields no retained secret and trust
// flags cannot be set without the password (docs/security.md). Each profile
// has its own ZID (RFC 6189 §4.9), so two profiles on one machine can call
// each other.
type zrtpStore struct{ db *localDB }

// ZRTPStore is the profile's store of ZRTP secrets for calls.
func (p *Profile) ZRTPStore() sipua.SecretStore { return zrtpStore{p.db} }

var _ sipua.SecretStore = zrtpStore{}

// ZID implements sipua.SecretStore.
func (s zrtpStore) ZID() (zrtp.ZID, error) {
	ctx := context.Background()
	var z zrtp.ZID
	var b []byte
	err := s.db.db.QueryRowContext(ctx, `SELECT zid FROM zrtp_self WHERE id=1`).Scan(&b)
	switch {
	case err == nil && len(b) == len(z):
		copy(z[:], b)
		return z, nil
	case err == nil:
		return z, fmt.Errorf("ZRTP identity: stored ZID has %d bytes", len(b))
	case !errors.Is(err, sql.ErrNoRows):
		return z, fmt.Errorf("ZRTP identity: %w", err)
	}
	if _, err := rand.Read(z[:]); err != nil {
		return z, fmt.Errorf("ZRTP identity: %w", err)
	}
	// Two processes of one profile may race: the first ZID stays.
	if _, err := s.db.db.ExecContext(ctx, `INSERT INTO zrtp_self(id, zid) VALUES(1, ?) ON CONFLICT(id) DO NOTHING`, z[:]); err != nil {
		return z, fmt.Errorf("ZRTP identity: %w", err)
	}
	return s.ZID()
}

// Peer implements sipua.SecretStore.
func (s zrtpStore) Peer(peer zrtp.ZID) (sipua.PeerRecord, bool, error) {
	var r sipua.PeerRecord
	var b []byte
	err := s.db.db.QueryRowContext(context.Background(), `SELECT record FROM zrtp_peers WHERE zid=?`, peer.String()).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("ZRTP peer %s: %w", peer, err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, false, fmt.Errorf("ZRTP peer %s: %w", peer, err)
	}
	return r, true, nil
}

// PutPeer implements sipua.SecretStore.
func (s zrtpStore) PutPeer(peer zrtp.ZID, r sipua.PeerRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = s.db.db.ExecContext(context.Background(), `INSERT INTO zrtp_peers(zid, record, updated) VALUES(?,?,?)
		ON CONFLICT(zid) DO UPDATE SET record=excluded.record, updated=excluded.updated`, peer.String(), b, time.Now().Unix())
	if err != nil {
		return fmt.Errorf("ZRTP peer %s: save: %w", peer, err)
	}
	return nil
}

// Peers implements sipua.SecretStore.
func (s zrtpStore) Peers() (map[zrtp.ZID]sipua.PeerRecord, error) {
	rows, err := s.db.db.QueryContext(context.Background(), `SELECT zid, record FROM zrtp_peers`)
	if err != nil {
		return nil, fmt.Errorf("ZRTP peers: %w", err)
	}
	defer rows.Close()
	out := map[zrtp.ZID]sipua.PeerRecord{}
	for rows.Next() {
		var id string
		var b []byte
		if err := rows.Scan(&id, &b); err != nil {
			return nil, fmt.Errorf("ZRTP peers: %w", err)
		}
		var z zrtp.ZID
		var r sipua.PeerRecord
		d, err := hex.DecodeString(id)
		if err != nil || len(d) != len(z) || json.Unmarshal(b, &r) != nil {
			continue // a damaged row hides that peer only
		}
		copy(z[:], d)
		out[z] = r
	}
	return out, rows.Err()
}
