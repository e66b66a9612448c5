package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/phonex/phonex/internal/store"
)

const adminCols = `name, pass_hash, totp_secret, last_step, failures, locked_until, created`

func scanAdmin(r interface{ Scan(...any) error }) (store.AdminAccount, error) {
	var a store.AdminAccount
	var locked, created int64
	err := r.Scan(&a.Name, &a.PassHash, &a.TOTPSecret, &a.LastStep, &a.Failures, &locked, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return a, store.ErrNotFound
	}
	a.LockedUntil, a.Created = fromUnix(locked), fromUnix(created)
	return a, err
}

func (s *DB) CreateAdmin(ctx context.Context, a store.AdminAccount) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO admins(name, pass_hash, totp_secret, created) VALUES(?,?,?,?)`, a.Name, a.PassHash, a.TOTPSecret, unix(a.Created))
	if isUnique(err) {
		return fmt.Errorf("administrator %s: %w", a.Name, store.ErrExists)
	}
	return err
}

func (s *DB) AdminAccount(ctx context.Context, name string) (store.AdminAccount, error) {
	return scanAdmin(s.db.QueryRowContext(ctx, `SELECT `+adminCols+` FROM admins WHERE name=?`, name))
}

func (s *DB) AdminAccounts(ctx context.Context) ([]store.AdminAccount, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+adminCols+` FROM admins ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.AdminAccount{}
	for rows.Next() {
		a, err := scanAdmin(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func (s *DB) DeleteAdmin(ctx context.Context, name string) error {
	return affected(s.db.ExecContext(ctx, `DELETE FROM admins WHERE name=?`, name))
}

func (s *DB) ResetAdmin(ctx context.Context, name, passHash string, totp []byte) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := affected(tx.ExecContext(ctx, `UPDATE admins SET pass_hash=?, totp_secret=?, last_step=0, failures=0, locked_until=0 WHERE name=?`, passHash, totp, name)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM admin_sessions WHERE admin=?`, name)
		return err
	})
}

func (s *DB) AdminFailure(ctx context.Context, name string, now time.Time, lockAfter int, lockFor time.Duration) (store.AdminAccount, error) {
	var a store.AdminAccount
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if a, err = scanAdmin(tx.QueryRowContext(ctx, `SELECT `+adminCols+` FROM admins WHERE name=?`, name)); err != nil {
			return err
		}
		if now.Before(a.LockedUntil) {
			return store.ErrAdminLocked
		}
		a.Failures++
		if lockAfter > 0 && a.Failures >= lockAfter {
			a.LockedUntil = now.Add(lockFor)
			a.Failures = 0 // a new round of attempts after the lock-out
		}
		_, err = tx.ExecContext(ctx, `UPDATE admins SET failures=?, locked_until=? WHERE name=?`, a.Failures, unix(a.LockedUntil), name)
		return err
	})
	return a, err
}

func (s *DB) AdminSignedIn(ctx context.Context, name string, step int64) error {
	res, err := s.db.ExecContext(ctx, `UPDATE admins SET last_step=?, failures=0 WHERE name=? AND last_step<?`, step, name, step)
	if err := affected(res, err); errors.Is(err, store.ErrNotFound) {
		if _, err := s.AdminAccount(ctx, name); err != nil {
			return err
		}
		return fmt.Errorf("administrator %s, time step %d: %w", name, step, store.ErrReplayed)
	} else if err != nil {
		return err
	}
	return nil
}

func (s *DB) ResetAdminFailures(ctx context.Context, name string) error {
	return affected(s.db.ExecContext(ctx, `UPDATE admins SET failures=0, locked_until=0 WHERE name=?`, name))
}

func (s *DB) CreateAdminSession(ctx context.Context, a store.AdminSession) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO admin_sessions(id_hash, admin, csrf, created, seen, auth_at) VALUES(?,?,?,?,?,?)`,
		a.IDHash, a.Admin, a.CSRF, unix(a.Created), unix(a.Seen), unix(a.AuthAt))
	return err
}

func (s *DB) AdminSession(ctx context.Context, idHash []byte) (store.AdminSession, error) {
	var a store.AdminSession
	var created, seen, auth int64
	err := s.db.QueryRowContext(ctx, `SELECT id_hash, admin, csrf, created, seen, auth_at FROM admin_sessions WHERE id_hash=?`, idHash).
		Scan(&a.IDHash, &a.Admin, &a.CSRF, &created, &seen, &auth)
	if errors.Is(err, sql.ErrNoRows) {
		return a, store.ErrNotFound
	}
	a.Created, a.Seen, a.AuthAt = fromUnix(created), fromUnix(seen), fromUnix(auth)
	return a, err
}

func (s *DB) TouchAdminSession(ctx context.Context, idHash []byte, seen time.Time) error {
	return affected(s.db.ExecContext(ctx, `UPDATE admin_sessions SET seen=? WHERE id_hash=?`, unix(seen), idHash))
}

func (s *DB) DeleteAdminSession(ctx context.Context, idHash []byte) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM admin_sessions WHERE id_hash=?`, idHash)
	return err
}

func (s *DB) PruneAdminSessions(ctx context.Context, seenBefore, createdBefore time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM admin_sessions WHERE seen<? OR created<?`, unix(seenBefore), unix(createdBefore))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (s *DB) NodeCounts(ctx context.Context) (store.NodeCounts, error) {
	var c store.NodeCounts
	err := s.db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM accounts),
		(SELECT COUNT(*) FROM accounts WHERE status=?),
		(SELECT COUNT(*) FROM accounts WHERE status=?),
		(SELECT COUNT(*) FROM devices),
		(SELECT COUNT(*) FROM devices WHERE status=?),
		(SELECT COUNT(*) FROM deliveries),
		(SELECT COALESCE(SUM(size),0) FROM deliveries),
		(SELECT COALESCE(SUM(failures),0) FROM devices),
		(SELECT COALESCE(SUM(login_failures),0) FROM accounts),
		(SELECT COUNT(*) FROM files)`,
		store.StatusPending, store.StatusDisabled, store.StatusRevoked).
		Scan(&c.Accounts, &c.Pending, &c.Disabled, &c.Devices, &c.Revoked, &c.MessagesWaiting, &c.BytesWaiting, &c.DeviceFailures, &c.LoginFailures, &c.FilesStored)
	return c, err
}
