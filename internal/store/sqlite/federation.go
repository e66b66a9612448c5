package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"time"

	"github.com/phonex/phonex/internal/store"
)

var _ store.Federation = (*DB)(nil)

// seenFor is how long the origin id of a forwarded message is kept.
const seenFor = 30 * 24 * time.Hour

const peerCols = `domain, ca, ca_sha256, api, sip, presented, presented_at, added, delivered_at, failed_at, last_error,
	(SELECT COUNT(*) FROM fed_outbound o WHERE o.domain=fed_peers.domain)`

func scanPeer(row interface{ Scan(...any) error }) (store.Peer, error) {
	var p store.Peer
	var presAt, added, delAt, failAt int64
	err := row.Scan(&p.Domain, &p.CA, &p.CASHA256, &p.API, &p.SIP, &p.Presented, &presAt, &added, &delAt, &failAt, &p.LastError, &p.Queued)
	p.PresentedAt, p.Added, p.DeliveredAt, p.FailedAt = fromUnix(presAt), fromUnix(added), fromUnix(delAt), fromUnix(failAt)
	return p, err
}

func (s *DB) AddPeer(ctx context.Context, p store.Peer) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO fed_peers(domain, ca, ca_sha256, api, sip, added) VALUES(?,?,?,?,?,?)`,
		p.Domain, p.CA, p.CASHA256, p.API, p.SIP, unix(p.Added))
	if isUnique(err) {
		return store.ErrExists
	}
	return err
}

func (s *DB) UpdatePeer(ctx context.Context, p store.Peer) error {
	res, err := s.db.ExecContext(ctx, `UPDATE fed_peers SET ca=?, ca_sha256=?, api=?, sip=?, presented='', presented_at=0 WHERE domain=?`,
		p.CA, p.CASHA256, p.API, p.SIP, p.Domain)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	return nil
}

func (s *DB) RemovePeer(ctx context.Context, domain string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM fed_peers WHERE domain=?`, domain)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	return nil
}

func (s *DB) Peer(ctx context.Context, domain string) (store.Peer, error) {
	p, err := scanPeer(s.db.QueryRowContext(ctx, `SELECT `+peerCols+` FROM fed_peers WHERE domain=?`, domain))
	if errors.Is(err, sql.ErrNoRows) {
		return p, store.ErrNotFound
	}
	return p, err
}

func (s *DB) Peers(ctx context.Context) ([]store.Peer, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+peerCols+` FROM fed_peers ORDER BY domain`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Peer
	for rows.Next() {
		p, err := scanPeer(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (s *DB) PeerPresented(ctx context.Context, domain, fingerprint string, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE fed_peers SET presented=?, presented_at=? WHERE domain=?`, fingerprint, unix(now), domain)
	return err
}

func (s *DB) PeerAttempt(ctx context.Context, domain, errText string, now time.Time) error {
	var err error
	if errText == "" {
		_, err = s.db.ExecContext(ctx, `UPDATE fed_peers SET delivered_at=?, last_error='' WHERE domain=?`, unix(now), domain)
	} else {
		_, err = s.db.ExecContext(ctx, `UPDATE fed_peers SET failed_at=?, last_error=? WHERE domain=?`, unix(now), errText, domain)
	}
	return err
}

func (s *DB) QueueOutbound(ctx context.Context, o store.Outbound, quota int64) (int64, error) {
	var id int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if quota > 0 {
			var held int64
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(LENGTH(body)), 0) FROM fed_outbound WHERE domain=?`, o.Domain).Scan(&held); err != nil {
				return err
			}
			if held+int64(len(o.Body)) > quota {
				return store.ErrStorageFull
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO fed_outbound(domain, sender, sender_dev, sender_cert, recipient, content_type, body, created) VALUES(?,?,?,?,?,?,?,?)`,
			o.Domain, o.Sender, o.SenderDevice, o.SenderCert, o.Recipient, o.ContentType, o.Body, unix(o.Created))
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
	return id, err
}

func (s *DB) OutboundFor(ctx context.Context, domain string, limit int) ([]store.Outbound, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, domain, sender, sender_dev, sender_cert, recipient, content_type, body, created
		FROM fed_outbound WHERE domain=? ORDER BY id LIMIT ?`, domain, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Outbound
	for rows.Next() {
		var o store.Outbound
		var created int64
		if err := rows.Scan(&o.ID, &o.Domain, &o.Sender, &o.SenderDevice, &o.SenderCert, &o.Recipient, &o.ContentType, &o.Body, &created); err != nil {
			return nil, err
		}
		o.Created = fromUnix(created)
		out = append(out, o)
	}
	return out, rows.Err()
}

func (s *DB) OutboundDone(ctx context.Context, id int64) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM fed_outbound WHERE id=?`, id)
	return err
}

func (s *DB) OutboundDomains(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT domain FROM fed_outbound ORDER BY domain`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func (s *DB) LeaseOutbound(ctx context.Context, domain, holder string, until, now time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO fed_leases(domain, holder, until) VALUES(?,?,?)
		ON CONFLICT(domain) DO UPDATE SET holder=excluded.holder, until=excluded.until WHERE fed_leases.holder=excluded.holder OR fed_leases.until<?`,
		domain, holder, unix(until), unix(now))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (s *DB) ReleaseOutbound(ctx context.Context, domain, holder string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM fed_leases WHERE domain=? AND holder=?`, domain, holder)
	return err
}

func (s *DB) AcceptForwarded(ctx context.Context, origin string, originID int64, m store.Message, targets []store.Target, quota int64) (int64, error) {
	var id int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		// A sender repeats a forward within its backoff (at most a
		// minute) after a lost answer; a month of origin ids is ample.
		if _, err := tx.ExecContext(ctx, `DELETE FROM fed_seen WHERE received<?`, unix(m.Created.Add(-seenFor))); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO fed_seen(origin, origin_id, received) VALUES(?,?,?)`, origin, originID, unix(m.Created)); isUnique(err) {
			return store.ErrDuplicate
		} else if err != nil {
			return err
		}
		if quota > 0 {
			adds := map[int64]int64{}
			for _, t := range targets {
				adds[t.AccountID] += int64(len(m.Body))
			}
			for acct, add := range adds {
				var held int64
				if err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT bytes FROM stored_bytes WHERE account_id=?), 0)`, acct).Scan(&held); err != nil {
					return err
				}
				if held+add > quota {
					return &store.StorageFullError{AccountID: acct}
				}
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO messages(sender, sender_dev, recipient, content_type, body, created) VALUES(?,?,?,?,?,?)`,
			m.Sender, m.SenderDevice, m.Recipient, m.ContentType, m.Body, unix(m.Created))
		if err != nil {
			return err
		}
		id, _ = res.LastInsertId()
		for _, t := range targets {
			if _, err := tx.ExecContext(ctx, `INSERT INTO deliveries(message_id, device_id, account_id, size, sender) VALUES(?,?,?,?,?)`, id, t.DeviceID, t.AccountID, len(m.Body), m.Sender); err != nil {
				return err
			}
		}
		return nil
	})
	return id, err
}
