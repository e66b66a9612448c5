package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/phonex/phonex/internal/store"
)

var _ store.Directory = (*DB)(nil)

func (s *DB) CreateDirClaim(ctx context.Context, c store.DirClaim, notices []store.DirNotice, maxOpen int, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM dir_claims WHERE expires<=?`, unix(now)); err != nil {
			return err
		}
		var owner int64
		err := tx.QueryRowContext(ctx, `SELECT account_id FROM dir_entries WHERE e164=?`, c.E164).Scan(&owner)
		if err == nil && owner != c.AccountID {
			return store.ErrNumberTaken
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var open int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM dir_claims WHERE account_id=?`, c.AccountID).Scan(&open); err != nil {
			return err
		}
		if open >= maxOpen {
			return store.ErrClaimsOpen
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO dir_claims(id, e164, account_id, device_id, code_hash, attempts, created, expires) VALUES(?,?,?,?,?,0,?,?)`,
			c.ID, c.E164, c.AccountID, c.DeviceID, c.CodeHash, unix(c.Created), unix(c.Expires)); err != nil {
			if isUnique(err) {
				return store.ErrExists
			}
			return err
		}
		return insertNotices(ctx, tx, notices)
	})
}

func insertNotices(ctx context.Context, tx *sql.Tx, notices []store.DirNotice) error {
	for _, n := range notices {
		if _, err := tx.ExecContext(ctx, `INSERT INTO dir_notices(device_id, kind, e164, ref, code, from_device, effective, created, expires) VALUES(?,?,?,?,?,?,?,?,?)`,
			n.DeviceID, n.Kind, n.E164, n.Ref, n.Code, n.FromDevice, unix(n.Effective), unix(n.Created), unix(n.Expires)); err != nil {
			return fmt.Errorf("directory notice: %w", err)
		}
	}
	return nil
}

func (s *DB) ProveDirClaim(ctx context.Context, id string, deviceID int64, maxAttempts int, now time.Time, check func(store.DirClaim) error) (store.DirClaim, error) {
	var c store.DirClaim
	var checkErr error
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var created, expires int64
		err := tx.QueryRowContext(ctx, `SELECT id, e164, account_id, device_id, code_hash, attempts, created, expires FROM dir_claims WHERE id=? AND device_id=?`,
			id, deviceID).Scan(&c.ID, &c.E164, &c.AccountID, &c.DeviceID, &c.CodeHash, &c.Attempts, &created, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		c.Created, c.Expires = fromUnix(created), fromUnix(expires)
		if !now.Before(c.Expires) {
			if err := deleteClaim(ctx, tx, id); err != nil {
				return err
			}
			checkErr = store.ErrNotFound
			return nil
		}
		if checkErr = check(c); checkErr == nil {
			return deleteClaim(ctx, tx, id)
		}
		// A wrong answer is counted in the same transaction that judged
		// it, so parallel guesses cannot share one count.
		c.Attempts++
		if c.Attempts >= maxAttempts {
			checkErr = fmt.Errorf("%w (%v)", store.ErrClaimAttempts, checkErr)
			return deleteClaim(ctx, tx, id)
		}
		_, err = tx.ExecContext(ctx, `UPDATE dir_claims SET attempts=? WHERE id=?`, c.Attempts, id)
		return err
	})
	if err == nil {
		err = checkErr
	}
	return c, err
}

func deleteClaim(ctx context.Context, tx *sql.Tx, id string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM dir_notices WHERE ref=? AND kind=?`, id, store.DirNoticeCode); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM dir_claims WHERE id=?`, id)
	return err
}

func (s *DB) PublishDir(ctx context.Context, e store.DirEntry) error {
	keys, err := json.Marshal(e.Keys)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error { return publishDir(ctx, tx, e, keys) })
}

func publishDir(ctx context.Context, tx *sql.Tx, e store.DirEntry, keys []byte) error {
	// The owner check is part of the write: a number another account
	// published is left as it is, and no row changes.
	res, err := tx.ExecContext(ctx, `INSERT INTO dir_entries(e164, hash, account_id, aor, keys, published) VALUES(?,?,?,?,?,?)
		ON CONFLICT(e164) DO UPDATE SET aor=excluded.aor, keys=excluded.keys, published=excluded.published
		WHERE dir_entries.account_id=excluded.account_id`,
		e.E164, e.Hash, e.AccountID, e.AOR, keys, unix(e.Published))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNumberTaken
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM dir_replacements WHERE e164=?`, e.E164)
	return err
}

const dirEntryCols = `e164, hash, account_id, aor, keys, published`

func scanDirEntry(r interface{ Scan(...any) error }) (store.DirEntry, error) {
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
	e, err := scanDirEntry(s.db.QueryRowContext(ctx, `SELECT `+dirEntryCols+` FROM dir_entries WHERE e164=?`, e164))
	if errors.Is(err, sql.ErrNoRows) {
		return e, store.ErrNotFound
	}
	return e, err
}

func (s *DB) dirEntries(ctx context.Context, query string, args ...any) ([]store.DirEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+dirEntryCols+` FROM dir_entries `+query, args...)
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
	return s.dirEntries(ctx, `WHERE aor=? ORDER BY e164`, aor)
}

func (s *DB) DirEntriesByHash(ctx context.Context, hashes [][]byte) ([]store.DirEntry, error) {
	if len(hashes) == 0 {
		return nil, nil
	}
	args := make([]any, len(hashes))
	for i, h := range hashes {
		args[i] = h
	}
	return s.dirEntries(ctx, `WHERE hash IN (?`+strings.Repeat(",?", len(hashes)-1)+`) ORDER BY e164`, args...)
}

func (s *DB) DirEntries(ctx context.Context) ([]store.DirEntry, error) {
	return s.dirEntries(ctx, `ORDER BY e164`)
}

func (s *DB) AddDirReplacement(ctx context.Context, r store.DirReplacement, notices []store.DirNotice) error {
	keys, err := json.Marshal(r.Keys)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM dir_notices WHERE kind=? AND ref IN (SELECT id FROM dir_replacements WHERE e164=?)`,
			store.DirNoticeReplacement, r.E164); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM dir_replacements WHERE e164=?`, r.E164); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO dir_replacements(id, e164, account_id, device_id, aor, keys, requested, effective) VALUES(?,?,?,?,?,?,?,?)`,
			r.ID, r.E164, r.AccountID, r.DeviceID, r.AOR, keys, unix(r.Requested), unix(r.Effective)); err != nil {
			return err
		}
		return insertNotices(ctx, tx, notices)
	})
}

const dirReplCols = `id, e164, account_id, device_id, aor, keys, requested, effective`

func scanDirRepl(r interface{ Scan(...any) error }) (store.DirReplacement, error) {
	var d store.DirReplacement
	var keys []byte
	var req, eff int64
	err := r.Scan(&d.ID, &d.E164, &d.AccountID, &d.DeviceID, &d.AOR, &keys, &req, &eff)
	if errors.Is(err, sql.ErrNoRows) {
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
	return scanDirRepl(s.db.QueryRowContext(ctx, `SELECT `+dirReplCols+` FROM dir_replacements WHERE e164=?`, e164))
}

func (s *DB) DirReplacement(ctx context.Context, id string) (store.DirReplacement, error) {
	return scanDirRepl(s.db.QueryRowContext(ctx, `SELECT `+dirReplCols+` FROM dir_replacements WHERE id=?`, id))
}

func (s *DB) DeleteDirReplacement(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM dir_replacements WHERE id=?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM dir_notices WHERE ref=? AND kind=?`, id, store.DirNoticeReplacement)
		return err
	})
}

func (s *DB) ApplyDueDirReplacements(ctx context.Context, now time.Time) ([]string, error) {
	var changed []string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+dirReplCols+` FROM dir_replacements WHERE effective<=? ORDER BY e164`, unix(now))
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
			if err := tx.QueryRowContext(ctx, `SELECT hash FROM dir_entries WHERE e164=?`, r.E164).Scan(&hash); err != nil {
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
			rows, err := tx.QueryContext(ctx, `SELECT e164 FROM dir_entries WHERE account_id=? AND e164<>? ORDER BY e164`, r.AccountID, r.E164)
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
			if _, err := tx.ExecContext(ctx, `UPDATE dir_entries SET keys=?, published=? WHERE account_id=? AND e164<>?`, keys, unix(now), r.AccountID, r.E164); err != nil {
				return err
			}
		}
		return nil
	})
	return changed, err
}

func (s *DB) TakeDirNotices(ctx context.Context, deviceID int64, ref string, now time.Time) ([]store.DirNotice, error) {
	var out []store.DirNotice
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM dir_notices WHERE expires<=?`, unix(now)); err != nil {
			return err
		}
		q := `SELECT id, device_id, kind, e164, ref, code, from_device, effective, created, expires FROM dir_notices WHERE device_id=?`
		args := []any{deviceID}
		if ref != "" {
			q += ` AND ref=?`
			args = append(args, ref)
		}
		rows, err := tx.QueryContext(ctx, q+` ORDER BY id`, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var n store.DirNotice
			var eff, created, expires int64
			if err := rows.Scan(&n.ID, &n.DeviceID, &n.Kind, &n.E164, &n.Ref, &n.Code, &n.FromDevice, &eff, &created, &expires); err != nil {
				rows.Close()
				return err
			}
			n.Effective, n.Created, n.Expires = fromUnix(eff), fromUnix(created), fromUnix(expires)
			out = append(out, n)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, n := range out {
			if _, err := tx.ExecContext(ctx, `DELETE FROM dir_notices WHERE id=?`, n.ID); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

func (s *DB) SpendDirBudget(ctx context.Context, deviceID int64, n, limit int, window time.Duration, now time.Time) (time.Time, error) {
	var end time.Time
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var start int64
		var used int
		err := tx.QueryRowContext(ctx, `SELECT window_start, used FROM dir_budget WHERE device_id=?`, deviceID).Scan(&start, &used)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && !now.Before(fromUnix(start).Add(window))) {
			start, used = unix(now), 0
		} else if err != nil {
			return err
		}
		end = fromUnix(start).Add(window)
		if used+n > limit {
			return store.ErrBudget
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO dir_budget(device_id, window_start, used) VALUES(?,?,?)
			ON CONFLICT(device_id) DO UPDATE SET window_start=excluded.window_start, used=excluded.used`, deviceID, start, used+n)
		return err
	})
	return end, err
}

func (s *DB) DeleteExpiredDir(ctx context.Context, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM dir_claims WHERE expires<=?`, unix(now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM dir_notices WHERE expires<=?`, unix(now))
		return err
	})
}
