package postgres

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/phonex/phonex/internal/store"
)

var _ store.Federation = (*DB)(nil)

// lockFedQueue serialises the quota check of one domain's queue
// (pg_advisory_xact_lock with the domain's hash as the second key).
const lockFedQueue int32 = 0x5058_0100

// seenFor is how long the origin id of a forwarded message is kept.
const seenFor = 30 * 24 * time.Hour

const peerCols = `domain, ca, ca_sha256, api, sip, presented, presented_at, added, delivered_at, failed_at, last_error,
	(SELECT COUNT(*) FROM fed_outbound o WHERE o.domain=fed_peers.domain)`

func scanPeer(row scanner) (store.Peer, error) {
	var p store.Peer
	var presAt, added, delAt, failAt int64
	err := row.Scan(&p.Domain, &p.CA, &p.CASHA256, &p.API, &p.SIP, &p.Presented, &presAt, &added, &delAt, &failAt, &p.LastError, &p.Queued)
	p.PresentedAt, p.Added, p.DeliveredAt, p.FailedAt = fromUnix(presAt), fromUnix(added), fromUnix(delAt), fromUnix(failAt)
	return p, err
}

func (s *DB) AddPeer(ctx context.Context, p store.Peer) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO fed_peers(domain, ca, ca_sha256, api, sip, added) VALUES($1,$2,$3,$4,$5,$6)`,
		p.Domain, p.CA, p.CASHA256, p.API, p.SIP, unix(p.Added))
	if isUnique(err) {
		return store.ErrExists
	}
	return err
}

func (s *DB) UpdatePeer(ctx context.Context, p store.Peer) error {
	return affected(s.pool.Exec(ctx, `UPDATE fed_peers SET ca=$1, ca_sha256=$2, api=$3, sip=$4, presented='', presented_at=0 WHERE domain=$5`,
		p.CA, p.CASHA256, p.API, p.SIP, p.Domain))
}

func (s *DB) RemovePeer(ctx context.Context, domain string) error {
	return affected(s.pool.Exec(ctx, `DELETE FROM fed_peers WHERE domain=$1`, domain))
}

func (s *DB) Peer(ctx context.Context, domain string) (store.Peer, error) {
	p, err := scanPeer(s.pool.QueryRow(ctx, `SELECT `+peerCols+` FROM fed_peers WHERE domain=$1`, domain))
	if errors.Is(err, pgx.ErrNoRows) {
		return p, store.ErrNotFound
	}
	return p, err
}

func (s *DB) Peers(ctx context.Context) ([]store.Peer, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+peerCols+` FROM fed_peers ORDER BY domain`)
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
	_, err := s.pool.Exec(ctx, `UPDATE fed_peers SET presented=$1, presented_at=$2 WHERE domain=$3`, fingerprint, unix(now), domain)
	return err
}

func (s *DB) PeerAttempt(ctx context.Context, domain, errText string, now time.Time) error {
	var err error
	if errText == "" {
		_, err = s.pool.Exec(ctx, `UPDATE fed_peers SET delivered_at=$1, last_error='' WHERE domain=$2`, unix(now), domain)
	} else {
		_, err = s.pool.Exec(ctx, `UPDATE fed_peers SET failed_at=$1, last_error=$2 WHERE domain=$3`, unix(now), errText, domain)
	}
	return err
}

func (s *DB) QueueOutbound(ctx context.Context, o store.Outbound, quota int64) (int64, error) {
	var id int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if quota > 0 {
			// Two nodes queueing for one domain at once must not both
			// pass a check that only one of them fits.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockFedQueue, o.Domain); err != nil {
				return err
			}
			var held int64
			if err := tx.QueryRow(ctx, `SELECT COALESCE(SUM(LENGTH(body)), 0) FROM fed_outbound WHERE domain=$1`, o.Domain).Scan(&held); err != nil {
				return err
			}
			if held+int64(len(o.Body)) > quota {
				return store.ErrStorageFull
			}
		}
		return tx.QueryRow(ctx, `INSERT INTO fed_outbound(domain, sender, sender_dev, sender_cert, recipient, content_type, body, created) VALUES($1,$2,$3,$4,$5,$6,$7,$8) RETURNING id`,
			o.Domain, o.Sender, o.SenderDevice, o.SenderCert, o.Recipient, o.ContentType, o.Body, unix(o.Created)).Scan(&id)
	})
	return id, err
}

func (s *DB) OutboundFor(ctx context.Context, domain string, limit int) ([]store.Outbound, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, domain, sender, sender_dev, sender_cert, recipient, content_type, body, created
		FROM fed_outbound WHERE domain=$1 ORDER BY id LIMIT $2`, domain, limit)
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
	_, err := s.pool.Exec(ctx, `DELETE FROM fed_outbound WHERE id=$1`, id)
	return err
}

func (s *DB) OutboundDomains(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT domain FROM fed_outbound ORDER BY domain`)
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
	tag, err := s.pool.Exec(ctx, `INSERT INTO fed_leases(domain, holder, until) VALUES($1,$2,$3)
		ON CONFLICT(domain) DO UPDATE SET holder=excluded.holder, until=excluded.until WHERE fed_leases.holder=excluded.holder OR fed_leases.until<$4`,
		domain, holder, unix(until), unix(now))
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

func (s *DB) ReleaseOutbound(ctx context.Context, domain, holder string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM fed_leases WHERE domain=$1 AND holder=$2`, domain, holder)
	return err
}

func (s *DB) AcceptForwarded(ctx context.Context, origin string, originID int64, m store.Message, targets []store.Target, quota int64) (int64, error) {
	adds := map[int64]int64{}
	var accts []int64
	for _, t := range targets {
		if _, ok := adds[t.AccountID]; !ok {
			accts = append(accts, t.AccountID)
		}
		adds[t.AccountID] += int64(len(m.Body))
	}
	var id int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		// A sender repeats a forward within its backoff (at most a
		// minute) after a lost answer; a month of origin ids is ample.
		if _, err := tx.Exec(ctx, `DELETE FROM fed_seen WHERE received<$1`, unix(m.Created.Add(-seenFor))); err != nil {
			return err
		}
		// ON CONFLICT: a unique violation would abort the transaction. A
		// concurrent forward of the same id waits on the row's lock and
		// then finds it.
		tag, err := tx.Exec(ctx, `INSERT INTO fed_seen(origin, origin_id, received) VALUES($1,$2,$3) ON CONFLICT DO NOTHING`, origin, originID, unix(m.Created))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrDuplicate
		}
		if quota > 0 {
			sorted := append([]int64(nil), accts...)
			sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
			held := map[int64]int64{}
			for _, acct := range sorted {
				if _, err := tx.Exec(ctx, `INSERT INTO stored_bytes(account_id, bytes) VALUES($1, 0) ON CONFLICT DO NOTHING`, acct); err != nil {
					return err
				}
				var n int64
				if err := tx.QueryRow(ctx, `SELECT bytes FROM stored_bytes WHERE account_id=$1 FOR UPDATE`, acct).Scan(&n); err != nil {
					return err
				}
				held[acct] = n
			}
			for _, acct := range accts {
				if held[acct]+adds[acct] > quota {
					return &store.StorageFullError{AccountID: acct}
				}
			}
		}
		if err := tx.QueryRow(ctx, `INSERT INTO messages(sender, sender_dev, recipient, content_type, body, created) VALUES($1,$2,$3,$4,$5,$6) RETURNING id`,
			m.Sender, m.SenderDevice, m.Recipient, m.ContentType, m.Body, unix(m.Created)).Scan(&id); err != nil {
			return err
		}
		// In account order, as the quota check locks (see EnqueueMessage).
		ordered := append([]store.Target(nil), targets...)
		sort.SliceStable(ordered, func(i, j int) bool { return ordered[i].AccountID < ordered[j].AccountID })
		var b pgx.Batch
		for _, t := range ordered {
			b.Queue(`INSERT INTO deliveries(message_id, device_id, account_id, size, sender) VALUES($1,$2,$3,$4,$5)`, id, t.DeviceID, t.AccountID, len(m.Body), m.Sender)
		}
		return tx.SendBatch(ctx, &b).Close()
	})
	return id, err
}
