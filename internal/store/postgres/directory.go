package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/phonex/phonex/internal/store"
)

var _ store.Directory = (*DB)(nil)

// lockDirClaims serialises the claims of one account across nodes, so
// the cap on open claims is counted by one writer at a time.
const lockDirClaims int32 = 0x5058_0101

func (s *DB) CreateDirClaim(ctx context.Context, c store.DirClaim, notices []store.DirNotice, maxOpen int, now time.Time) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := lock(ctx, tx, lockDirClaims, c.AccountID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM dir_claims WHERE expires<=$1`, unix(now)); err != nil {
			return err
		}
		var owner int64
		err := tx.QueryRow(ctx, `SELECT account_id FROM dir_entries WHERE e164=$1`, c.E164).Scan(&owner)
		if err == nil && owner != c.AccountID {
			return store.ErrNumberTaken
		}
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		var open int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM dir_claims WHERE account_id=$1`, c.AccountID).Scan(&open); err != nil {
			return err
		}
		if open >= maxOpen {
			return store.ErrClaimsOpen
		}
		if _, err := tx.Exec(ctx, `INSERT INTO dir_claims(id, e164, account_id, device_id, code_hash, attempts, created, expires) VALUES($1,$2,$3,$4,$5,0,$6,$7)`,
			c.ID, c.E164, c.AccountID, c.DeviceID, c.CodeHash, unix(c.Created), unix(c.Expires)); err != nil {
			if isUnique(err) {
				return store.ErrExists
			}
			return err
		}
		return insertDirNotices(ctx, tx, notices)
	})
}

func insertDirNotices(ctx context.Context, tx pgx.Tx, notices []store.DirNotice) error {
	for _, n := range notices {
		if _, err := tx.Exec(ctx, `INSERT INTO dir_notices(device_id, kind, e164, ref, code, from_device, effective, created, expires) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9)`,
			n.DeviceID, n.Kind, n.E164, n.Ref, n.Code, n.FromDevice, unix(n.Effective), unix(n.Created), unix(n.Expires)); err != nil {
			return fmt.Errorf("directory notice: %w", err)
		}
	}
	return nil
}

func (s *DB) ProveDirClaim(ctx context.Context, id string, deviceID int64, maxAttempts int, now time.Time, check func(store.DirClaim) error) (store.DirClaim, error) {
	var c store.DirClaim
	var checkErr error
	err := s.tx(ctx, func(tx pgx.Tx) error {
		c, checkErr = store.DirClaim{}, nil
		var created, expires int64
		// The row lock makes parallel answers take turns, so each reads
		// the attempts the one before counted.
		err := tx.QueryRow(ctx, `SELECT id, e164, account_id, device_id, code_hash, attempts, created, expires FROM dir_claims WHERE id=$1 AND device_id=$2 FOR UPDATE`,
			id, deviceID).Scan(&c.ID, &c.E164, &c.AccountID, &c.DeviceID, &c.CodeHash, &c.Attempts, &created, &expires)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		c.Created, c.Expires = fromUnix(created), fromUnix(expires)
		if !now.Before(c.Expires) {
			checkErr = store.ErrNotFound
			return deleteDirClaim(ctx, tx, id)
		}
		if checkErr = check(c); checkErr == nil {
			return deleteDirClaim(ctx, tx, id)
		}
		c.Attempts++
		if c.Attempts >= maxAttempts {
			checkErr = fmt.Errorf("%w (%v)", store.ErrClaimAttempts, checkErr)
			return deleteDirClaim(ctx, tx, id)
		}
		_, err = tx.Exec(ctx, `UPDATE dir_claims SET attempts=$1 WHERE id=$2`, c.Attempts, id)
		return err
	})
	if err == nil {
		err = checkErr
	}
	return c, err
}

func deleteDirClaim(ctx context.Context, tx pgx.Tx, id string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM dir_notices WHERE ref=$1 AND kind=$2`, id, store.DirNoticeCode); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `DELETE FROM dir_claims WHERE id=$1`, id)
	return err
}

func (s *DB) PublishDir(ctx context.Context, e store.DirEntry) error {
	keys, err := json.Marshal(e.Keys)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx pgx.Tx) error { return publishDir(ctx, tx, e, keys) })
}

func publishDir(ctx context.Context, tx pgx.Tx, e store.DirEntry, keys []byte) error {
	// The owner check is part of the write: a number another account
	// published is left as it is, and no row changes.
	tag, err := tx.Exec(ctx, `INSERT INTO dir_entries(e164, hash, account_id, aor, keys, published) VALUES($1,$2,$3,$4,$5,$6)
		ON CONFLICT(e164) DO UPDATE SET aor=excluded.aor, keys=excluded.keys, published=excluded.published
		WHERE dir_entries.account_id=excluded.account_id`,
		e.E164, e.Hash, e.AccountID, e.AOR, keys, unix(e.Published))
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNumberTaken
	}
	_, err = tx.Exec(ctx, `DELETE FROM dir_replacements WHERE e164=$1`, e.E164)
	return err
}

const dirEntryCols = `e164, hash, account_id, aor, keys, published`

func scanDirEntry(r pgx.Row) (store.DirEntry, error) {
	var e store.DirEntry
	var keys []byte
	var published int64
	if err := r.Scan(&e.E164, &e.Hash, &e.AccountID, &e.AOR, &keys, &published); err != nil {
		return e, err
	}
	e.Published = fromUnix(published)
	if err := json.Unmarshal(keys, &e.Keys); err != nil {
		return e, fmt.Errorf("directory entry keys: %w", err)
	}
	return e, nil
}

func (s *DB) DirEntry(ctx context.Context, e164 string) (store.DirEntry, error) {
	e, err := scanDirEntry(s.pool.QueryRow(ctx, `SELECT `+dirEntryCols+` FROM dir_entries WHERE e164=$1`, e164))
	if errors.Is(err, pgx.ErrNoRows) {
		return e, store.ErrNotFound
	}
	return e, err
}

func (s *DB) dirEntries(ctx context.Context, query string, args ...any) ([]store.DirEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+dirEntryCols+` FROM dir_entries `+query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.DirEntry
	for rows.Next() {
		e, err := scanDirEntry(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (s *DB) DirEntriesByAOR(ctx context.Context, aor string) ([]store.DirEntry, error) {
	return s.dirEntries(ctx, `WHERE aor=$1 ORDER BY e164`, aor)
}

func (s *DB) DirEntriesByHash(ctx context.Context, hashes [][]byte) ([]store.DirEntry, error) {
	if len(hashes) == 0 {
		return nil, nil
	}
	return s.dirEntries(ctx, `WHERE hash = ANY($1) ORDER BY e164`, hashes)
}

func (s *DB) DirEntries(ctx context.Context) ([]store.DirEntry, error) {
	return s.dirEntries(ctx, `ORDER BY e164`)
}

func (s *DB) AddDirReplacement(ctx context.Context, r store.DirReplacement, notices []store.DirNotice) error {
	keys, err := json.Marshal(r.Keys)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		// Replacements of one number take turns on its entry's row.
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM dir_entries WHERE e164=$1 FOR UPDATE`, r.E164).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		} else if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM dir_notices WHERE kind=$1 AND ref IN (SELECT id FROM dir_replacements WHERE e164=$2)`,
			store.DirNoticeReplacement, r.E164); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM dir_replacements WHERE e164=$1`, r.E164); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO dir_replacements(id, e164, account_id, device_id, aor, keys, requested, effective) VALUES($1,$2,$3,$4,$5,$6,$7,$8)`,
			r.ID, r.E164, r.AccountID, r.DeviceID, r.AOR, keys, unix(r.Requested), unix(r.Effective)); err != nil {
			return err
		}
		return insertDirNotices(ctx, tx, notices)
	})
}

const dirReplCols = `id, e164, account_id, device_id, aor, keys, requested, effective`

func scanDirRepl(r pgx.Row) (store.DirReplacement, error) {
	var d store.DirReplacement
	var keys []byte
	var req, eff int64
	err := r.Scan(&d.ID, &d.E164, &d.AccountID, &d.DeviceID, &d.AOR, &keys, &req, &eff)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, store.ErrNotFound
	}
	if err != nil {
		return d, err
	}
	d.Requested, d.Effective = fromUnix(req), fromUnix(eff)
	if err := json.Unmarshal(keys, &d.Keys); err != nil {
		return d, fmt.Errorf("directory replacement keys: %w", err)
	}
	return d, nil
}

func (s *DB) DirReplacementFor(ctx context.Context, e164 string) (store.DirReplacement, error) {
	return scanDirRepl(s.pool.QueryRow(ctx, `SELECT `+dirReplCols+` FROM dir_replacements WHERE e164=$1`, e164))
}

func (s *DB) DirReplacement(ctx context.Context, id string) (store.DirReplacement, error) {
	return scanDirRepl(s.pool.QueryRow(ctx, `SELECT `+dirReplCols+` FROM dir_replacements WHERE id=$1`, id))
}

func (s *DB) DeleteDirReplacement(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM dir_replacements WHERE id=$1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		_, err = tx.Exec(ctx, `DELETE FROM dir_notices WHERE ref=$1 AND kind=$2`, id, store.DirNoticeReplacement)
		return err
	})
}

func (s *DB) ApplyDueDirReplacements(ctx context.Context, now time.Time) ([]string, error) {
	var changed []string
	err := s.tx(ctx, func(tx pgx.Tx) error {
		changed = nil
		rows, err := tx.Query(ctx, `SELECT `+dirReplCols+` FROM dir_replacements WHERE effective<=$1 ORDER BY e164 FOR UPDATE`, unix(now))
		if err != nil {
			return err
		}
		var due []store.DirReplacement
		for rows.Next() {
			r, err := scanDirRepl(rows)
			if err != nil {
				rows.Close()
				return err
			}
			due = append(due, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range due {
			var hash []byte
			if err := tx.QueryRow(ctx, `SELECT hash FROM dir_entries WHERE e164=$1`, r.E164).Scan(&hash); err != nil {
				return fmt.Errorf("replacement of %s: %w", r.ID, err)
			}
			keys, err := json.Marshal(r.Keys)
			if err != nil {
				return err
			}
			e := store.DirEntry{E164: r.E164, Hash: hash, AccountID: r.AccountID, AOR: r.AOR, Keys: r.Keys, Published: now}
			if err := publishDir(ctx, tx, e, keys); err != nil {
				return fmt.Errorf("replacement of %s: %w", r.ID, err)
			}
			changed = append(changed, r.E164)
			// The keys are the account's: its other numbers switch too, so
			// a discarded key is published under none of them (the zone
			// publishes keys per address).
			rows, err := tx.Query(ctx, `SELECT e164 FROM dir_entries WHERE account_id=$1 AND e164<>$2 ORDER BY e164`, r.AccountID, r.E164)
			if err != nil {
				return err
			}
			for rows.Next() {
				var n string
				if err := rows.Scan(&n); err != nil {
					rows.Close()
					return err
				}
				changed = append(changed, n)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE dir_entries SET keys=$1, published=$2 WHERE account_id=$3 AND e164<>$4`, keys, unix(now), r.AccountID, r.E164); err != nil {
				return err
			}
		}
		return nil
	})
	return changed, err
}

func (s *DB) TakeDirNotices(ctx context.Context, deviceID int64, ref string, now time.Time) ([]store.DirNotice, error) {
	var out []store.DirNotice
	err := s.tx(ctx, func(tx pgx.Tx) error {
		out = nil
		if _, err := tx.Exec(ctx, `DELETE FROM dir_notices WHERE expires<=$1`, unix(now)); err != nil {
			return err
		}
		// Deleting is taking: two fetches at once cannot both get a notice.
		q := `DELETE FROM dir_notices WHERE device_id=$1`
		args := []any{deviceID}
		if ref != "" {
			q += ` AND ref=$2`
			args = append(args, ref)
		}
		rows, err := tx.Query(ctx, q+` RETURNING id, device_id, kind, e164, ref, code, from_device, effective, created, expires`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n store.DirNotice
			var eff, created, expires int64
			if err := rows.Scan(&n.ID, &n.DeviceID, &n.Kind, &n.E164, &n.Ref, &n.Code, &n.FromDevice, &eff, &created, &expires); err != nil {
				return err
			}
			n.Effective, n.Created, n.Expires = fromUnix(eff), fromUnix(created), fromUnix(expires)
			out = append(out, n)
		}
		return rows.Err()
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

func (s *DB) SpendDirBudget(ctx context.Context, deviceID int64, n, limit int, window time.Duration, now time.Time) (time.Time, error) {
	var end time.Time
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO dir_budget(device_id, window_start, used) VALUES($1,$2,0) ON CONFLICT(device_id) DO NOTHING`,
			deviceID, unix(now)); err != nil {
			return err
		}
		var start int64
		var used int
		if err := tx.QueryRow(ctx, `SELECT window_start, used FROM dir_budget WHERE device_id=$1 FOR UPDATE`, deviceID).Scan(&start, &used); err != nil {
			return err
		}
		if !now.Before(fromUnix(start).Add(window)) {
			start, used = unix(now), 0
		}
		end = fromUnix(start).Add(window)
		if used+n > limit {
			return store.ErrBudget
		}
		_, err := tx.Exec(ctx, `UPDATE dir_budget SET window_start=$1, used=$2 WHERE device_id=$3`, start, used+n, deviceID)
		return err
	})
	return end, err
}

func (s *DB) DeleteExpiredDir(ctx context.Context, now time.Time) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM dir_claims WHERE expires<=$1`, unix(now)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM dir_notices WHERE expires<=$1`, unix(now))
		return err
	})
}
