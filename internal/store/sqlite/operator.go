package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/phonex/phonex/internal/store"
)

func (s *DB) SetPolicy(ctx context.Context, scope store.PolicyScope, key, value string, now time.Time) error {
	if value == "" {
		return affected(s.db.ExecContext(ctx, `DELETE FROM policies WHERE kind=? AND name=? AND key=?`, scope.Kind, scope.Name, key))
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO policies(kind, name, key, value, updated) VALUES(?,?,?,?,?)
		ON CONFLICT(kind, name, key) DO UPDATE SET value=excluded.value, updated=excluded.updated`, scope.Kind, scope.Name, key, value, unix(now))
	return err
}

func (s *DB) Policies(ctx context.Context) ([]store.PolicyOverride, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT kind, name, key, value, updated FROM policies ORDER BY kind, name, key`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.PolicyOverride
	for rows.Next() {
		var p store.PolicyOverride
		var upd int64
		if err := rows.Scan(&p.Scope.Kind, &p.Scope.Name, &p.Key, &p.Value, &upd); err != nil {
			return nil, err
		}
		p.Updated = fromUnix(upd)
		out = append(out, p)
	}
	return out, rows.Err()
}

func (s *DB) PolicyGeneration(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT n FROM policy_generation WHERE id=1`).Scan(&n)
	return n, err
}

func (s *DB) CreateGroup(ctx context.Context, name string, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO groups(name, created) VALUES(?,?)`, name, unix(now))
	if isUnique(err) {
		return fmt.Errorf("group %s: %w", name, store.ErrExists)
	}
	return err
}

func (s *DB) DeleteGroup(ctx context.Context, name string) error {
	return affected(s.db.ExecContext(ctx, `DELETE FROM groups WHERE name=?`, name))
}

func (s *DB) Groups(ctx context.Context) ([]store.Group, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT g.name, g.created, (SELECT COUNT(*) FROM group_members m WHERE m.group_id=g.id)
		FROM groups g ORDER BY g.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Group
	for rows.Next() {
		var g store.Group
		var created int64
		if err := rows.Scan(&g.Name, &created, &g.Members); err != nil {
			return nil, err
		}
		g.Created = fromUnix(created)
		out = append(out, g)
	}
	return out, rows.Err()
}

// groupAndAccount resolves both names for a membership change, with
// ErrNotFound naming which one is missing.
func groupAndAccount(ctx context.Context, tx *sql.Tx, group, account string) (gid, aid int64, err error) {
	if err := tx.QueryRowContext(ctx, `SELECT id FROM groups WHERE name=?`, group).Scan(&gid); errors.Is(err, sql.ErrNoRows) {
		return 0, 0, fmt.Errorf("group %s: %w", group, store.ErrNotFound)
	} else if err != nil {
		return 0, 0, err
	}
	if err := tx.QueryRowContext(ctx, `SELECT id FROM accounts WHERE name=?`, account).Scan(&aid); errors.Is(err, sql.ErrNoRows) {
		return 0, 0, fmt.Errorf("account %s: %w", account, store.ErrNotFound)
	} else if err != nil {
		return 0, 0, err
	}
	return gid, aid, nil
}

func (s *DB) AddGroupMember(ctx context.Context, group, account string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		gid, aid, err := groupAndAccount(ctx, tx, group, account)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO group_members(group_id, account_id) VALUES(?,?)`, gid, aid)
		if isUnique(err) {
			return fmt.Errorf("%s in group %s: %w", account, group, store.ErrExists)
		}
		return err
	})
}

func (s *DB) RemoveGroupMember(ctx context.Context, group, account string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		gid, aid, err := groupAndAccount(ctx, tx, group, account)
		if err != nil {
			return err
		}
		if err := affected(tx.ExecContext(ctx, `DELETE FROM group_members WHERE group_id=? AND account_id=?`, gid, aid)); err != nil {
			return fmt.Errorf("%s in group %s: %w", account, group, err)
		}
		return nil
	})
}

func (s *DB) GroupMembers(ctx context.Context, group string) ([]string, error) {
	var gid int64
	if err := s.db.QueryRowContext(ctx, `SELECT id FROM groups WHERE name=?`, group).Scan(&gid); errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("group %s: %w", group, store.ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	return s.names(ctx, `SELECT a.name FROM group_members m JOIN accounts a ON a.id=m.account_id WHERE m.group_id=? ORDER BY a.name`, gid)
}

func (s *DB) AccountGroups(ctx context.Context, account string) ([]string, error) {
	return s.names(ctx, `SELECT g.name FROM group_members m JOIN groups g ON g.id=m.group_id JOIN accounts a ON a.id=m.account_id
		WHERE a.name=? ORDER BY g.name`, account)
}

func (s *DB) names(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

func (s *DB) ProvisionContact(ctx context.Context, accountID int64, contact string, now time.Time) (bool, error) {
	added := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO provisioned_contacts(account_id, contact, added) VALUES(?,?,?) ON CONFLICT DO NOTHING`,
			accountID, contact, unix(now))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // provisioned before: the account's choice since stands
		}
		res, err = tx.ExecContext(ctx, `INSERT INTO contacts(account_id, contact, added) VALUES(?,?,?) ON CONFLICT DO NOTHING`,
			accountID, contact, unix(now))
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		added = n > 0
		return nil
	})
	return added, err
}

func (s *DB) ProvisionedContacts(ctx context.Context, accountID int64) ([]string, error) {
	return s.names(ctx, `SELECT contact FROM provisioned_contacts WHERE account_id=? ORDER BY contact`, accountID)
}

func (s *DB) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit_log(time, actor, action, target, detail) VALUES(?,?,?,?,?)`,
		unix(e.Time), e.Actor, e.Action, e.Target, e.Detail)
	return err
}

func (s *DB) Audit(ctx context.Context, since time.Time, limit int) ([]store.AuditEntry, error) {
	q := `SELECT id, time, actor, action, target, detail FROM audit_log WHERE time>=? ORDER BY id`
	args := []any{unix(since)}
	if limit > 0 {
		// The newest limit entries, still printed oldest first.
		q = `SELECT * FROM (SELECT id, time, actor, action, target, detail FROM audit_log WHERE time>=? ORDER BY id DESC LIMIT ?) ORDER BY id`
		args = append(args, limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.AuditEntry{}
	for rows.Next() {
		var e store.AuditEntry
		var t int64
		if err := rows.Scan(&e.ID, &t, &e.Actor, &e.Action, &e.Target, &e.Detail); err != nil {
			return nil, err
		}
		e.Time = fromUnix(t)
		out = append(out, e)
	}
	return out, rows.Err()
}

// likeContains is a LIKE pattern matching s anywhere, with LIKE's own
// characters escaped (ESCAPE '\').
func likeContains(s string) string {
	return "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s) + "%"
}

func (s *DB) AccountPage(ctx context.Context, search, after string, limit int) ([]store.AccountSummary, error) {
	if limit <= 0 {
		limit = 100
	}
	// Without a search the page is a walk of the name index from the
	// cursor; LIKE would make it read every name.
	where, args := `a.name > ?`, []any{after, limit}
	if search != "" {
		where, args = `a.name LIKE ? ESCAPE '\' AND a.name > ?`, []any{likeContains(search), after, limit}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT a.id, a.name, a.status, a.created, a.failures, a.last_try, a.login_failures, a.login_last_try,
		(SELECT COUNT(*) FROM devices d WHERE d.account_id=a.id)
		FROM accounts a WHERE `+where+` ORDER BY a.name LIMIT ?`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.AccountSummary{}
	for rows.Next() {
		var a store.AccountSummary
		var created, last, loginLast int64
		if err := rows.Scan(&a.ID, &a.Name, &a.Status, &created, &a.Attempt.Failures, &last, &a.Login.Failures, &loginLast, &a.Devices); err != nil {
			return nil, err
		}
		a.Created, a.Attempt.Last, a.Login.Last = fromUnix(created), fromUnix(last), fromUnix(loginLast)
		out = append(out, a)
	}
	return out, rows.Err()
}

func (s *DB) CountAccounts(ctx context.Context, search string) (int, error) {
	var n int
	if search == "" {
		err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts`).Scan(&n)
		return n, err
	}
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts WHERE name LIKE ? ESCAPE '\'`, likeContains(search)).Scan(&n)
	return n, err
}
