package postgres

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/phonex/phonex/internal/store"
)

var _ store.Files = (*DB)(nil)

// lock takes a transaction advisory lock on (what, id): the writes that
// count rows before adding one (slots per contact, files per pair) take
// turns per device or account across nodes.
func lock(ctx context.Context, tx pgx.Tx, what int32, id int64) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, what, int32(id))
	return err
}

func (s *DB) AddFileSlots(ctx context.Context, deviceID int64, contact string, slots []store.FileSlot, max int, now time.Time) (int, error) {
	var ready int
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if err := lock(ctx, tx, lockSlots, deviceID); err != nil {
			return err
		}
		// Expired ones make room, so a device can refill without the sweeper.
		if _, err := tx.Exec(ctx, `DELETE FROM file_slots WHERE device_id=$1 AND contact=$2 AND state IN ('ready','taken','proven') AND expires<=$3`,
			deviceID, contact, unix(now)); err != nil {
			return err
		}
		var held int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM file_slots WHERE device_id=$1 AND contact=$2 AND state IN ('ready','taken','proven')`,
			deviceID, contact).Scan(&held); err != nil {
			return err
		}
		if held+len(slots) > max {
			return fmt.Errorf("%d held, %d more: %w", held, len(slots), store.ErrSlotsFull)
		}
		for _, sl := range slots {
			_, err := tx.Exec(ctx, `INSERT INTO file_slots(device_id, contact, slot_id, sealed, proof_hash, nonce2, state, created, expires) VALUES($1,$2,$3,$4,$5,$6,'ready',$7,$8)`,
				deviceID, contact, sl.SlotID, sl.Sealed, sl.ProofHash, sl.Nonce2, unix(now), unix(sl.Expires))
			if isUnique(err) {
				return fmt.Errorf("slot %q: %w", sl.SlotID, store.ErrExists)
			}
			if err != nil {
				return err
			}
		}
		return tx.QueryRow(ctx, `SELECT COUNT(*) FROM file_slots WHERE device_id=$1 AND contact=$2 AND state='ready'`, deviceID, contact).Scan(&ready)
	})
	return ready, err
}

func (s *DB) FileSlotCounts(ctx context.Context, deviceID int64, now time.Time) ([]store.SlotCount, error) {
	rows, err := s.pool.Query(ctx, `SELECT contact, COUNT(*) FILTER (WHERE state='ready'), COUNT(*) FILTER (WHERE state IN ('taken','proven')) FROM file_slots
		WHERE device_id=$1 AND state IN ('ready','taken','proven') AND expires>$2 GROUP BY contact ORDER BY contact COLLATE "C"`, deviceID, unix(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.SlotCount
	for rows.Next() {
		var c store.SlotCount
		if err := rows.Scan(&c.Contact, &c.Ready, &c.Taken); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

const slotCols = `device_id, contact, slot_id, sealed, proof_hash, state, COALESCE(taker_device,0), nonce2, created, expires`

func scanSlot(r scanner) (store.FileSlot, error) {
	var sl store.FileSlot
	var created, expires int64
	err := r.Scan(&sl.DeviceID, &sl.Contact, &sl.SlotID, &sl.Sealed, &sl.ProofHash, &sl.State, &sl.TakerDevice, &sl.Nonce2, &created, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return sl, store.ErrNotFound
	}
	sl.Created, sl.Expires = fromUnix(created), fromUnix(expires)
	return sl, err
}

// TakeFileSlot locks the slot it takes; SKIP LOCKED lets a concurrent
// taker pass over a slot being taken to the next one instead of waiting
// and then finding it gone.
func (s *DB) TakeFileSlot(ctx context.Context, deviceID int64, contact string, taker int64, takeUntil, now time.Time) (store.FileSlot, error) {
	var sl store.FileSlot
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		sl, err = scanSlot(tx.QueryRow(ctx, `SELECT `+slotCols+` FROM file_slots WHERE device_id=$1 AND contact=$2 AND state='ready' AND expires>$3
			ORDER BY created, slot_id LIMIT 1 FOR UPDATE SKIP LOCKED`, deviceID, contact, unix(now)))
		if err != nil {
			return err
		}
		// The take's deadline never outlives the slot itself.
		until := takeUntil
		if until.After(sl.Expires) {
			until = sl.Expires
		}
		sl.State, sl.TakerDevice, sl.Expires = store.SlotTaken, taker, until
		_, err = tx.Exec(ctx, `UPDATE file_slots SET state='taken', taker_device=$1, expires=$2 WHERE device_id=$3 AND slot_id=$4`,
			taker, unix(until), deviceID, sl.SlotID)
		return err
	})
	return sl, err
}

func (s *DB) FileSlot(ctx context.Context, deviceID int64, slotID string) (store.FileSlot, error) {
	return scanSlot(s.pool.QueryRow(ctx, `SELECT `+slotCols+` FROM file_slots WHERE device_id=$1 AND slot_id=$2`, deviceID, slotID))
}

// slotRefusal says why a slot cannot move on from its state.
func slotRefusal(sl store.FileSlot, taker int64, now time.Time, want string) error {
	switch {
	case sl.State == store.SlotUsed:
		return store.ErrSlotUsed
	case sl.State == store.SlotReady:
		return store.ErrSlotNotProven
	case sl.TakerDevice != taker:
		return store.ErrSlotNotYours
	case !now.Before(sl.Expires):
		return store.ErrSlotExpired
	case want == store.SlotProven && sl.State != store.SlotProven:
		return store.ErrSlotNotProven
	}
	return nil
}

func (s *DB) ProveFileSlot(ctx context.Context, deviceID int64, slotID string, taker int64, now time.Time) ([]byte, error) {
	var out []byte
	err := s.tx(ctx, func(tx pgx.Tx) error {
		sl, err := scanSlot(tx.QueryRow(ctx, `SELECT `+slotCols+` FROM file_slots WHERE device_id=$1 AND slot_id=$2 FOR UPDATE`, deviceID, slotID))
		if err != nil {
			return err
		}
		if sl.State == store.SlotReady {
			return store.ErrSlotNotYours // never handed out: nobody may prove it
		}
		if err := slotRefusal(sl, taker, now, ""); err != nil {
			return err
		}
		out = sl.Nonce2
		if sl.State == store.SlotProven {
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE file_slots SET state='proven' WHERE device_id=$1 AND slot_id=$2`, deviceID, slotID)
		return err
	})
	return out, err
}

// CreateFile holds the sender account's advisory lock while it counts and
// inserts, so two uploads cannot both pass the pair cap or the quota, and
// locks each slot it consumes.
func (s *DB) CreateFile(ctx context.Context, f store.StoredFile, slots []store.SlotUse, targets []store.FileTarget, lim store.FileLimits, now time.Time) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := lock(ctx, tx, lockFileSender, f.SenderAccount); err != nil {
			return err
		}
		if lim.PairCap > 0 {
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM files WHERE sender_account=$1 AND recipient_account=$2 AND state!='delivered'`,
				f.SenderAccount, f.RecipientAccount).Scan(&n); err != nil {
				return err
			}
			if n >= lim.PairCap {
				return fmt.Errorf("%d files stored: %w", n, store.ErrPairCap)
			}
		}
		if lim.Quota > 0 {
			var used int64
			if err := tx.QueryRow(ctx, `SELECT COALESCE(SUM(size),0) FROM files WHERE sender_account=$1 AND state!='delivered'`,
				f.SenderAccount).Scan(&used); err != nil {
				return err
			}
			if used+f.Size > lim.Quota {
				return &store.StorageFullError{AccountID: f.SenderAccount}
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO files(id, sender_account, sender_device, recipient_account, size, header, received, state, created, expires)
			VALUES($1,$2,$3,$4,$5,$6,0,$7,$8,$9)`, f.ID, f.SenderAccount, f.SenderDevice, f.RecipientAccount, f.Size, f.Header, f.State, unix(f.Created), unix(f.Expires)); err != nil {
			return err
		}
		for _, u := range slots {
			sl, err := scanSlot(tx.QueryRow(ctx, `SELECT `+slotCols+` FROM file_slots WHERE device_id=$1 AND slot_id=$2 FOR UPDATE`, u.DeviceID, u.SlotID))
			if err != nil {
				return &store.SlotError{SlotID: u.SlotID, Err: err}
			}
			if err := slotRefusal(sl, f.SenderDevice, now, store.SlotProven); err != nil {
				return &store.SlotError{SlotID: u.SlotID, Err: err}
			}
			if len(sl.Nonce2) == 0 || subtle.ConstantTimeCompare(sl.Nonce2, u.Nonce2) != 1 {
				return &store.SlotError{SlotID: u.SlotID, Err: store.ErrSlotNonce}
			}
			if _, err := tx.Exec(ctx, `UPDATE file_slots SET state='used', file_id=$1 WHERE device_id=$2 AND slot_id=$3`, f.ID, u.DeviceID, u.SlotID); err != nil {
				return err
			}
		}
		for _, t := range targets {
			if _, err := tx.Exec(ctx, `INSERT INTO file_targets(file_id, device_id, slot_id, nonce2) VALUES($1,$2,$3,$4)`, f.ID, t.DeviceID, t.SlotID, t.Nonce2); err != nil {
				return err
			}
		}
		return nil
	})
}

// A file of a peer cluster's sender, or for a peer cluster's recipient,
// names that side in its remote columns (migration 0018).
const fileCols = `f.id, COALESCE(f.sender_account,0), COALESCE(f.sender_device,0), COALESCE(sa.name || '/' || sd.name, f.remote_sender),
	COALESCE(f.recipient_account,0), COALESCE(ra.name, f.remote_recipient), f.size, f.header, f.received, f.state, f.created, f.expires,
	f.remote_sender, f.origin, f.origin_id, f.remote_account`
const fileFrom = ` FROM files f LEFT JOIN accounts sa ON sa.id=f.sender_account LEFT JOIN devices sd ON sd.id=f.sender_device LEFT JOIN accounts ra ON ra.id=f.recipient_account`

func scanFile(r scanner) (store.StoredFile, error) {
	var f store.StoredFile
	var created, expires int64
	err := r.Scan(&f.ID, &f.SenderAccount, &f.SenderDevice, &f.Sender, &f.RecipientAccount, &f.Recipient, &f.Size, &f.Header, &f.Offset, &f.State, &created, &expires,
		&f.RemoteSender, &f.Origin, &f.OriginID, &f.RemoteAccount)
	if errors.Is(err, pgx.ErrNoRows) {
		return f, store.ErrNotFound
	}
	f.Created, f.Expires = fromUnix(created), fromUnix(expires)
	return f, err
}

func (s *DB) StoredFile(ctx context.Context, id string) (store.StoredFile, error) {
	return scanFile(s.pool.QueryRow(ctx, `SELECT `+fileCols+fileFrom+` WHERE f.id=$1`, id))
}

func (s *DB) FileTargets(ctx context.Context, id string) ([]store.FileTarget, error) {
	rows, err := s.pool.Query(ctx, `SELECT t.device_id, a.name || '/' || d.name, t.slot_id, t.nonce2, COALESCE(t.acked,0) FROM file_targets t
		JOIN devices d ON d.id=t.device_id JOIN accounts a ON a.id=d.account_id WHERE t.file_id=$1 ORDER BY t.device_id`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.FileTarget
	for rows.Next() {
		var t store.FileTarget
		var acked int64
		if err := rows.Scan(&t.DeviceID, &t.Device, &t.SlotID, &t.Nonce2, &acked); err != nil {
			return nil, err
		}
		if acked != 0 {
			at := fromUnix(acked)
			t.Acked = &at
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func (s *DB) SetFileOffset(ctx context.Context, id string, offset int64) error {
	return affected(s.pool.Exec(ctx, `UPDATE files SET received=$1 WHERE id=$2`, offset, id))
}

func (s *DB) SetFileState(ctx context.Context, id, state string) error {
	return affected(s.pool.Exec(ctx, `UPDATE files SET state=$1 WHERE id=$2`, state, id))
}

// AckFile locks the file's row first, so of two devices acknowledging at
// once the second counts after the first committed, and exactly one of
// them learns that every target has.
func (s *DB) AckFile(ctx context.Context, id string, deviceID int64, now time.Time) (bool, error) {
	var all bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM files WHERE id=$1 FOR UPDATE`, id).Scan(&one); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if err := affected(tx.Exec(ctx, `UPDATE file_targets SET acked=COALESCE(acked, $1) WHERE file_id=$2 AND device_id=$3`, unix(now), id, deviceID)); err != nil {
			return err
		}
		var left int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM file_targets WHERE file_id=$1 AND acked IS NULL`, id).Scan(&left); err != nil {
			return err
		}
		all = left == 0
		return nil
	})
	return all, err
}

func (s *DB) IncomingFiles(ctx context.Context, deviceID int64, now time.Time) ([]store.StoredFile, []store.FileTarget, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+fileCols+`, t.slot_id, t.nonce2`+fileFrom+` JOIN file_targets t ON t.file_id=f.id
		WHERE t.device_id=$1 AND t.acked IS NULL AND f.state='complete' AND f.expires>$2 ORDER BY f.created, f.id COLLATE "C"`, deviceID, unix(now))
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var fs []store.StoredFile
	var ts []store.FileTarget
	for rows.Next() {
		var f store.StoredFile
		t := store.FileTarget{DeviceID: deviceID}
		var created, expires int64
		if err := rows.Scan(&f.ID, &f.SenderAccount, &f.SenderDevice, &f.Sender, &f.RecipientAccount, &f.Recipient, &f.Size, &f.Header, &f.Offset, &f.State,
			&created, &expires, &f.RemoteSender, &f.Origin, &f.OriginID, &f.RemoteAccount, &t.SlotID, &t.Nonce2); err != nil {
			return nil, nil, err
		}
		f.Created, f.Expires = fromUnix(created), fromUnix(expires)
		fs, ts = append(fs, f), append(ts, t)
	}
	return fs, ts, rows.Err()
}

func (s *DB) OutgoingFiles(ctx context.Context, deviceID int64) ([]store.StoredFile, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+fileCols+fileFrom+` WHERE f.sender_device=$1 ORDER BY f.created, f.id COLLATE "C"`, deviceID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.StoredFile
	for rows.Next() {
		f, err := scanFile(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

func (s *DB) ExpiredFiles(ctx context.Context, now time.Time, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM files WHERE expires<=$1 ORDER BY expires LIMIT $2`, unix(now), limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func (s *DB) DeleteFile(ctx context.Context, id string) error {
	return affected(s.pool.Exec(ctx, `DELETE FROM files WHERE id=$1`, id))
}

func (s *DB) DeleteExpiredSlots(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM file_slots WHERE state IN ('ready','taken','proven') AND expires<=$1`, unix(now))
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}
