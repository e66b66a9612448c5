package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/phonex/phonex/internal/store"
)

const adminCols = `name, pass_hash, totp_secret, last_step, failures, locked_until, created`

func scanAdmin(r scanner) (store.AdminAccount, error) {
	var a store.AdminAccount
	var locked, created int64
	err := r.Scan(&a.Name, &a.PassHash, &a.TOTPSecret, &a.LastStep, &a.Failures, &locked, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, store.ErrNotFound
	}
	a.LockedUntil, a.Created = fromUnix(locked), fromUnix(created)
	return a, err
}

func (s *DB) CreateAdmin(ctx context.Context, a store.AdminAccount) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO admins(name, pass_hash, totp_secret, created) VALUES($1,$2,$3,$4)`, a.Name, a.PassHash, a.TOTPSecret, unix(a.Created))
	if isUnique(err) {
		return fmt.Errorf("administrator %s: %w", a.Name, store.ErrExists)
	}
	return err
}

func (s *DB) AdminAccount(ctx context.Context, name string) (store.AdminAccount, error) {
	return scanAdmin(s.pool.QueryRow(ctx, `SELECT `+adminCols+` FROM admins WHERE name=$1`, name))
}

func (s *DB) AdminAccounts(ctx context.Context) ([]store.AdminAccount, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+adminCols+` FROM admins ORDER BY name COLLATE "C"`)
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
	return affected(s.pool.Exec(ctx, `DELETE FROM admins WHERE name=$1`, name))
}

func (s *DB) ResetAdmin(ctx context.Context, name, passHash string, totp []byte) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := affected(tx.Exec(ctx, `UPDATE admins SET pass_hash=$1, totp_secret=$2, last_step=0, failures=0, locked_until=0 WHERE name=$3`, passHash, totp, name)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM admin_sessions WHERE admin=$1`, name)
		return err
	})
}

func (s *DB) AdminFailure(ctx context.Context, name string, now time.Time, lockAfter int, lockFor time.Duration) (store.AdminAccount, error) {
	var a store.AdminAccount
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		// FOR UPDATE: concurrent failures on several nodes count one by one.
		if a, err = scanAdmin(tx.QueryRow(ctx, `SELECT `+adminCols+` FROM admins WHERE name=$1 FOR UPDATE`, name)); err != nil {
			return err
		}
		if now.Before(a.LockedUntil) {
			return store.ErrAdminLocked
		}
		a.Failures++
		if lockAfter > 0 && a.Failures >= lockAfter {
			a.LockedUntil = now.Add(lockFor)
			a.Failures = 0
		}
		_, err = tx.Exec(ctx, `UPDATE admins SET failures=$1, locked_until=$2 WHERE name=$3`, a.Failures, unix(a.LockedUntil), name)
		return err
	})
	return a, err
}

func (s *DB) AdminSignedIn(ctx context.Context, name string, step int64) error {
	err := affected(s.pool.Exec(ctx, `UPDATE admins SET last_step=$1, failures=0 WHERE name=$2 AND last_step<$1`, step, name))
	if errors.Is(err, store.ErrNotFound) {
		if _, err := s.AdminAccount(ctx, name); err != nil {
			return err
		}
		return fmt.Errorf("administrator %s, time step %d: %w", name, step, store.ErrReplayed)
	}
	return err
}

func (s *DB) ResetAdminFailures(ctx context.Context, name string) error {
	return affected(s.pool.Exec(ctx, `UPDATE admins SET failures=0, locked_until=0 WHERE name=$1`, name))
}

func (s *DB) CreateAdminSession(ctx context.Context, a store.AdminSession) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO admin_sessions(id_hash, admin, csrf, created, seen, auth_at) VALUES($1,$2,$3,$4,$5,$6)`,
		a.IDHash, a.Admin, a.CSRF, unix(a.Created), unix(a.Seen), unix(a.AuthAt))
	return err
}

func (s *DB) AdminSession(ctx context.Context, idHash []byte) (store.AdminSession, error) {
	var a store.AdminSession
	var created, seen, auth int64
	err := s.pool.QueryRow(ctx, `SELECT id_hash, admin, csrf, created, seen, auth_at FROM admin_sessions WHERE id_hash=$1`, idHash).
		Scan(&a.IDHash, &a.Admin, &a.CSRF, &created, &seen, &auth)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, store.ErrNotFound
	}
	a.Created, a.Seen, a.AuthAt = fromUnix(created), fromUnix(seen), fromUnix(auth)
	return a, err
}

func (s *DB) TouchAdminSession(ctx context.Context, idHash []byte, seen time.Time) error {
	return affected(s.pool.Exec(ctx, `UPDATE admin_sessions SET seen=$1 WHERE id_hash=$2`, unix(seen), idHash))
}

func (s *DB) DeleteAdminSession(ctx context.Context, idHash []byte) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM admin_sessions WHERE id_hash=$1`, idHash)
	return err
}

func (s *DB) PruneAdminSessions(ctx context.Context, seenBefore, createdBefore time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM admin_sessions WHERE seen<$1 OR created<$2`, unix(seenBefore), unix(createdBefore))
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

func (s *DB) NodeCounts(ctx context.Context) (store.NodeCounts, error) {
	var c store.NodeCounts
	err := s.pool.QueryRow(ctx, `SELECT
		(SELECT COUNT(*) FROM accounts),
		(SELECT COUNT(*) FROM accounts WHERE status=$1),
		(SELECT COUNT(*) FROM accounts WHERE status=$2),
		(SELECT COUNT(*) FROM devices),
		(SELECT COUNT(*) FROM devices WHERE status=$3),
		(SELECT COUNT(*) FROM deliveries),
		(SELECT COALESCE(SUM(size),0)::BIGINT FROM deliveries),
		(SELECT COALESCE(SUM(failures),0)::BIGINT FROM devices),
		(SELECT COALESCE(SUM(login_failures),0)::BIGINT FROM accounts),
		(SELECT COUNT(*) FROM files)`,
		store.StatusPending, store.StatusDisabled, store.StatusRevoked).
		Scan(&c.Accounts, &c.Pending, &c.Disabled, &c.Devices, &c.Revoked, &c.MessagesWaiting, &c.BytesWaiting, &c.DeviceFailures, &c.LoginFailures, &c.FilesStored)
	return c, err
}
