package postgres

import (
	"context"
	"sort"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/phonex/phonex/internal/store"
)

// EnqueueMessage decides and writes in one transaction. What it decides
// from is locked until the commit: the routing generation's row with FOR
// SHARE (a routing change, which updates that row, waits for the message,
// or the message waits for it and reads its new value), and each target
// account's byte count with FOR UPDATE, in account order, so concurrent
// messages for one account take turns at the quota check. The checks go
// to the server as one batch and the body with its copies as one
// statement: four round trips with BEGIN and COMMIT.
func (s *DB) EnqueueMessage(ctx context.Context, m store.Message, targets []store.Target, quota int64) (int64, error) {
	adds := map[int64]int64{}
	var accts []int64
	for _, t := range targets {
		if _, ok := adds[t.AccountID]; !ok {
			accts = append(accts, t.AccountID)
		}
		adds[t.AccountID] += int64(len(m.Body))
	}
	sorted := append([]int64(nil), accts...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	// Copies in account order too: the insert trigger updates each
	// account's byte count, and two messages updating two counts in
	// opposite orders would deadlock.
	ordered := append([]store.Target(nil), targets...)
	sort.SliceStable(ordered, func(i, j int) bool { return ordered[i].AccountID < ordered[j].AccountID })
	devs, owners := make([]int64, len(ordered)), make([]int64, len(ordered))
	for i, t := range ordered {
		devs[i], owners[i] = t.DeviceID, t.AccountID
	}
	var id int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var b pgx.Batch
		var gen int64
		if m.RouteGeneration != 0 {
			b.Queue(`SELECT n FROM routing_generation WHERE id=1 FOR SHARE`).QueryRow(func(r pgx.Row) error { return r.Scan(&gen) })
		}
		held := map[int64]int64{}
		if quota > 0 {
			for _, acct := range sorted {
				// The row must exist to be locked; the insert trigger
				// keeps it from then on.
				b.Queue(`INSERT INTO stored_bytes(account_id, bytes) VALUES($1, 0) ON CONFLICT DO NOTHING`, acct)
				b.Queue(`SELECT bytes FROM stored_bytes WHERE account_id=$1 FOR UPDATE`, acct).QueryRow(func(r pgx.Row) error {
					var n int64
					err := r.Scan(&n)
					held[acct] = n
					return err
				})
			}
		}
		if b.Len() > 0 {
			if err := tx.SendBatch(ctx, &b).Close(); err != nil {
				return err
			}
		}
		if m.RouteGeneration != 0 && gen != m.RouteGeneration {
			return store.ErrStaleRoute
		}
		// Refuse naming the first account (in target order) over.
		for _, acct := range accts {
			if quota > 0 && held[acct]+adds[acct] > quota {
				return &store.StorageFullError{AccountID: acct}
			}
		}
		if len(targets) == 0 {
			return tx.QueryRow(ctx, `INSERT INTO messages(sender, sender_dev, recipient, content_type, body, created) VALUES($1,$2,$3,$4,$5,$6) RETURNING id`,
				m.Sender, m.SenderDevice, m.Recipient, m.ContentType, m.Body, unix(m.Created)).Scan(&id)
		}
		rows, err := tx.Query(ctx, `WITH m AS (
				INSERT INTO messages(sender, sender_dev, recipient, content_type, body, created) VALUES($1,$2,$3,$4,$5,$6) RETURNING id)
			INSERT INTO deliveries(message_id, device_id, account_id, size, sender)
			SELECT m.id, t.dev, t.acct, $7, $1 FROM m, unnest($8::bigint[], $9::bigint[]) WITH ORDINALITY AS t(dev, acct, ord) ORDER BY t.ord
			RETURNING message_id`,
			m.Sender, m.SenderDevice, m.Recipient, m.ContentType, m.Body, unix(m.Created), int64(len(m.Body)), devs, owners)
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		return rows.Err()
	})
	return id, err
}

// Pending takes the senders in turns: for each sender of the device's
// copies (a skip scan over deliveries_device_sender), its first limit
// copies with their turn number, then the first limit of all by turn and
// arrival.
func (s *DB) Pending(ctx context.Context, deviceID int64, limit int) ([]store.Delivery, error) {
	rows, err := s.pool.Query(ctx, `WITH RECURSIVE
		snd(sender) AS (
			SELECT MIN(sender) FROM deliveries WHERE device_id=$1
			UNION ALL
			SELECT (SELECT MIN(sender) FROM deliveries WHERE device_id=$1 AND sender>snd.sender) FROM snd WHERE snd.sender IS NOT NULL),
		f AS (
			SELECT x.seq, x.turn FROM snd CROSS JOIN LATERAL (
				SELECT y.seq, ROW_NUMBER() OVER (ORDER BY y.seq) AS turn FROM (
					SELECT seq FROM deliveries WHERE device_id=$1 AND sender=snd.sender ORDER BY seq LIMIT $2) y) x
			WHERE snd.sender IS NOT NULL
			ORDER BY x.turn, x.seq LIMIT $2)
		SELECT d.seq, m.id, m.sender, m.sender_dev, m.recipient, m.content_type, m.body, m.created
		FROM f JOIN deliveries d ON d.seq=f.seq JOIN messages m ON m.id=d.message_id
		ORDER BY f.turn, f.seq`, deviceID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Delivery
	for rows.Next() {
		var d store.Delivery
		var created int64
		if err := rows.Scan(&d.Seq, &d.MessageID, &d.Sender, &d.SenderDevice, &d.Recipient, &d.ContentType, &d.Body, &created); err != nil {
			return nil, err
		}
		d.Created = fromUnix(created)
		out = append(out, d)
	}
	return out, rows.Err()
}

// Delivered forgets a copy in one round trip: the trigger
// deliveries_forget_message (0012) removes the body with its last copy, and
// a delete of a copy already forgotten changes nothing, so acknowledging
// twice is harmless. Its commit does not wait for the WAL flush
// (synchronous_commit off for this transaction only): a crash may undo the
// last acknowledgements, and those copies are delivered again, which
// devices drop as duplicates, as after a crash between a device's answer
// and the acknowledgement. A stored message's commit always waits.
func (s *DB) Delivered(ctx context.Context, seq int64) error {
	// One simple-protocol string (an integer formatted in, nothing a
	// caller controls) carries the transaction in one round trip.
	q := `BEGIN; SET LOCAL synchronous_commit TO off; DELETE FROM deliveries WHERE seq=` + strconv.FormatInt(seq, 10) + `; COMMIT`
	var err error
	for try := 0; try < 5; try++ {
		if _, err = s.pool.Exec(ctx, q); !retryable(err) {
			return err
		}
	}
	return err
}

func (s *DB) StoredBytes(ctx context.Context, accountID int64) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT COALESCE((SELECT bytes FROM stored_bytes WHERE account_id=$1), 0)`, accountID).Scan(&n)
	return n, err
}
