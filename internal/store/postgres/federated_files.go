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

var _ store.FederatedFiles = (*DB)(nil)

func (s *DB) CreateOutboundFile(ctx context.Context, f store.StoredFile, targets []store.FileTarget, remote []store.RemoteFileTarget, domain string, lim store.FileLimits) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
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
		if _, err := tx.Exec(ctx, `INSERT INTO files(id, sender_account, sender_device, recipient_account, remote_recipient, size, header, received, state, created, expires)
			VALUES($1,$2,$3,NULL,$4,$5,$6,0,$7,$8,$9)`, f.ID, f.SenderAccount, f.SenderDevice, f.Recipient, f.Size, f.Header, f.State, unix(f.Created), unix(f.Expires)); err != nil {
			return err
		}
		for _, t := range targets {
			if _, err := tx.Exec(ctx, `INSERT INTO file_targets(file_id, device_id, slot_id, nonce2) VALUES($1,$2,$3,$4)`, f.ID, t.DeviceID, t.SlotID, t.Nonce2); err != nil {
				return err
			}
		}
		for _, t := range remote {
			if _, err := tx.Exec(ctx, `INSERT INTO file_remote_targets(file_id, device, slot_id, nonce2) VALUES($1,$2,$3,$4)`, f.ID, t.Device, t.SlotID, t.Nonce2); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO file_forwards(file_id, domain, state) VALUES($1,$2,$3)`, f.ID, domain, store.ForwardWaiting)
		return err
	})
}

func scanForward(r scanner) (store.FileForward, error) {
	var fw store.FileForward
	err := r.Scan(&fw.FileID, &fw.Domain, &fw.State, &fw.RemoteID, &fw.Error)
	if errors.Is(err, pgx.ErrNoRows) {
		return fw, store.ErrNotFound
	}
	return fw, err
}

func (s *DB) FileForward(ctx context.Context, fileID string) (store.FileForward, error) {
	return scanForward(s.pool.QueryRow(ctx, `SELECT file_id, domain, state, remote_id, error FROM file_forwards WHERE file_id=$1`, fileID))
}

func (s *DB) WaitingForwards(ctx context.Context, limit int) ([]store.FileForward, error) {
	rows, err := s.pool.Query(ctx, `SELECT w.file_id, w.domain, w.state, w.remote_id, w.error FROM file_forwards w JOIN files f ON f.id=w.file_id
		WHERE w.state=$1 AND f.state!='uploading' ORDER BY f.created, f.id LIMIT $2`, store.ForwardWaiting, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.FileForward
	for rows.Next() {
		fw, err := scanForward(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, fw)
	}
	return out, rows.Err()
}

func (s *DB) SetFileForward(ctx context.Context, fw store.FileForward) error {
	return affected(s.pool.Exec(ctx, `UPDATE file_forwards SET state=$1, remote_id=$2, error=$3 WHERE file_id=$4`, fw.State, fw.RemoteID, fw.Error, fw.FileID))
}

func (s *DB) RemoteFileTargets(ctx context.Context, fileID string) ([]store.RemoteFileTarget, error) {
	rows, err := s.pool.Query(ctx, `SELECT device, slot_id, nonce2, COALESCE(acked,0) FROM file_remote_targets WHERE file_id=$1 ORDER BY device`, fileID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.RemoteFileTarget
	for rows.Next() {
		var t store.RemoteFileTarget
		var acked int64
		if err := rows.Scan(&t.Device, &t.SlotID, &t.Nonce2, &acked); err != nil {
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

func (s *DB) AckRemoteFileTarget(ctx context.Context, fileID, device string, at time.Time) error {
	return affected(s.pool.Exec(ctx, `UPDATE file_remote_targets SET acked=COALESCE(acked, $1) WHERE file_id=$2 AND device=$3`, unix(at), fileID, device))
}

func (s *DB) CreateInboundFile(ctx context.Context, f store.StoredFile, slots []store.SlotUse, taker int64, targets []store.FileTarget, lim store.FileLimits, now time.Time) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM files WHERE origin=$1 AND origin_id=$2`, f.Origin, f.OriginID).Scan(&one)
		if err == nil {
			return fmt.Errorf("file %s of %s: %w", f.OriginID, f.Origin, store.ErrExists)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if lim.PairCap > 0 {
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM files WHERE remote_account=$1 AND recipient_account=$2 AND state!='delivered'`,
				f.RemoteAccount, f.RecipientAccount).Scan(&n); err != nil {
				return err
			}
			if n >= lim.PairCap {
				return fmt.Errorf("%d files stored: %w", n, store.ErrPairCap)
			}
		}
		if lim.Quota > 0 {
			var used int64
			if err := tx.QueryRow(ctx, `SELECT COALESCE(SUM(size),0) FROM files WHERE remote_account=$1 AND state!='delivered'`,
				f.RemoteAccount).Scan(&used); err != nil {
				return err
			}
			if used+f.Size > lim.Quota {
				return &store.StorageFullError{}
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO files(id, sender_account, sender_device, recipient_account, remote_sender, remote_account, origin, origin_id,
			size, header, received, state, created, expires) VALUES($1,NULL,NULL,$2,$3,$4,$5,$6,$7,$8,0,$9,$10,$11)`,
			f.ID, f.RecipientAccount, f.RemoteSender, f.RemoteAccount, f.Origin, f.OriginID, f.Size, f.Header, f.State, unix(f.Created), unix(f.Expires)); err != nil {
			if isUnique(err) {
				return fmt.Errorf("file %s of %s: %w", f.OriginID, f.Origin, store.ErrExists)
			}
			return err
		}
		for _, u := range slots {
			sl, err := scanSlot(tx.QueryRow(ctx, `SELECT `+slotCols+` FROM file_slots WHERE device_id=$1 AND slot_id=$2`, u.DeviceID, u.SlotID))
			if err != nil {
				return &store.SlotError{SlotID: u.SlotID, Err: err}
			}
			if sl.Contact != f.RemoteAccount {
				return &store.SlotError{SlotID: u.SlotID, Err: store.ErrNotFound}
			}
			if err := slotRefusal(sl, taker, now, store.SlotProven); err != nil {
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

func (s *DB) InboundFile(ctx context.Context, origin, originID string) (store.StoredFile, error) {
	return scanFile(s.pool.QueryRow(ctx, `SELECT `+fileCols+fileFrom+` WHERE f.origin=$1 AND f.origin_id=$2`, origin, originID))
}
