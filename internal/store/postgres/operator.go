package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/phonex/phonex/internal/store"
)

func (s *DB) SetPolicy(ctx context.Context, scope store.PolicyScope, key, value string, now time.Time) error {
	if value == "" {
		return affected(s.pool.Exec(ctx, `DELETE FROM policies WHERE kind=$1 AND name=$2 AND key=$3`, scope.Kind, scope.Name, key))
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO policies(kind, name, key, value, updated) VALUES($1,$2,$3,$4,$5)
		ON CONFLICT (kind, name, key) DO UPDATE SET value=excluded.value, updated=excluded.updated`, scope.Kind, scope.Name, key, value, unix(now))
	return err
}

func (s *DB) Policies(ctx context.Context) ([]store.PolicyOverride, error) {
	rows, err := s.pool.Query(ctx, `SELECT kind, name, key, value, updated FROM policies ORDER BY kind COLLATE "C", name COLLATE "C", key COLLATE "C"`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.PolicyOverride, error) {
		var p store.PolicyOverride
		var upd int64
		err := r.Scan(&p.Scope.Kind, &p.Scope.Name, &p.Key, &p.Value, &upd)
		p.Updated = fromUnix(upd)
		return p, err
	})
}

func (s *DB) PolicyGeneration(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT n FROM policy_generation WHERE id=1`).Scan(&n)
	return n, err
}

func (s *DB) CreateGroup(ctx context.Context, name string, now time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO groups(name, created) VALUES($1,$2)`, name, unix(now))
	if isUnique(err) {
		return fmt.Errorf("group %s: %w", name, store.ErrExists)
	}
	return err
}

func (s *DB) DeleteGroup(ctx context.Context, name string) error {
	return affected(s.pool.Exec(ctx, `DELETE FROM groups WHERE name=$1`, name))
}

func (s *DB) Groups(ctx context.Context) ([]store.Group, error) {
	rows, err := s.pool.Query(ctx, `SELECT g.name, g.created, (SELECT COUNT(*) FROM group_members m WHERE m.group_id=g.id)
		FROM groups g ORDER BY g.name COLLATE "C"`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Group, error) {
		var g store.Group
		var created, members int64
		err := r.Scan(&g.Name, &created, &members)
		g.Created, g.Members = fromUnix(created), int(members)
		return g, err
	})
}

// groupAndAccount resolves both names for a membership change, with
// ErrNotFound naming which one is missing.
func groupAndAccount(ctx context.Context, tx pgx.Tx, group, account string) (gid, aid int64, err error) {
	if err := tx.QueryRow(ctx, `SELECT id FROM groups WHERE name=$1`, group).Scan(&gid); errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, fmt.Errorf("group %s: %w", group, store.ErrNotFound)
	} else if err != nil {
		return 0, 0, err
	}
	if err := tx.QueryRow(ctx, `SELECT id FROM accounts WHERE name=$1`, account).Scan(&aid); errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, fmt.Errorf("account %s: %w", account, store.ErrNotFound)
	} else if err != nil {
		return 0, 0, err
	}
	return gid, aid, nil
}

func (s *DB) AddGroupMember(ctx context.Context, group, account string) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		gid, aid, err := groupAndAccount(ctx, tx, group, account)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO group_members(group_id, account_id) VALUES($1,$2) ON CONFLICT DO NOTHING`, gid, aid)
		if err == nil && tag.RowsAffected() == 0 {
			return fmt.Errorf("%s in group %s: %w", account, group, store.ErrExists)
		}
		return err
	})
}

func (s *DB) RemoveGroupMember(ctx context.Context, group, account string) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		gid, aid, err := groupAndAccount(ctx, tx, group, account)
		if err != nil {
			return err
		}
		if err := affected(tx.Exec(ctx, `DELETE FROM group_members WHERE group_id=$1 AND account_id=$2`, gid, aid)); err != nil {
			return fmt.Errorf("%s in group %s: %w", account, group, err)
		}
		return nil
	})
}

func (s *DB) GroupMembers(ctx context.Context, group string) ([]string, error) {
	var gid int64
	if err := s.pool.QueryRow(ctx, `SELECT id FROM groups WHERE name=$1`, group).Scan(&gid); errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("group %s: %w", group, store.ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	return s.names(ctx, `SELECT a.name FROM group_members m JOIN accounts a ON a.id=m.account_id WHERE m.group_id=$1 ORDER BY a.name COLLATE "C"`, gid)
}

func (s *DB) AccountGroups(ctx context.Context, account string) ([]string, error) {
	return s.names(ctx, `SELECT g.name FROM group_members m JOIN groups g ON g.id=m.group_id JOIN accounts a ON a.id=m.account_id
		WHERE a.name=$1 ORDER BY g.name COLLATE "C"`, account)
}

func (s *DB) names(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if out == nil && err == nil {
		out = []string{}
	}
	return out, err
}

func (s *DB) ProvisionContact(ctx context.Context, accountID int64, contact string, now time.Time) (bool, error) {
	added := false
	err := s.tx(ctx, func(tx pgx.Tx) error {
		added = false
		tag, err := tx.Exec(ctx, `INSERT INTO provisioned_contacts(account_id, contact, added) VALUES($1,$2,$3) ON CONFLICT DO NOTHING`,
			accountID, contact, unix(now))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil // provisioned before: the account's choice since stands
		}
		tag, err = tx.Exec(ctx, `INSERT INTO contacts(account_id, contact, added) VALUES($1,$2,$3) ON CONFLICT DO NOTHING`,
			accountID, contact, unix(now))
		if err != nil {
			return err
		}
		added = tag.RowsAffected() > 0
		return nil
	})
	return added, err
}

func (s *DB) ProvisionedContacts(ctx context.Context, accountID int64) ([]string, error) {
	return s.names(ctx, `SELECT contact FROM provisioned_contacts WHERE account_id=$1 ORDER BY contact COLLATE "C"`, accountID)
}

func (s *DB) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO audit_log(time, actor, action, target, detail) VALUES($1,$2,$3,$4,$5)`,
		unix(e.Time), e.Actor, e.Action, e.Target, e.Detail)
	return err
}

func (s *DB) Audit(ctx context.Context, since time.Time, limit int) ([]store.AuditEntry, error) {
	q := `SELECT id, time, actor, action, target, detail FROM audit_log WHERE time>=$1 ORDER BY id`
	args := []any{unix(since)}
	if limit > 0 {
		// The newest limit entries, still returned oldest first.
		q = `SELECT * FROM (SELECT id, time, actor, action, target, detail FROM audit_log WHERE time>=$1 ORDER BY id DESC LIMIT $2) t ORDER BY id`
		args = append(args, limit)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.AuditEntry, error) {
		var e store.AuditEntry
		var t int64
		err := r.Scan(&e.ID, &t, &e.Actor, &e.Action, &e.Target, &e.Detail)
		e.Time = fromUnix(t)
		return e, err
	})
	if out == nil && err == nil {
		out = []store.AuditEntry{}
	}
	return out, err
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
	// An empty search matches everything: '%%' costs a LIKE per row, so
	// it is left out.
	where := `($1 = '' OR a.name LIKE $1 ESCAPE '\')`
	pattern := ""
	if search != "" {
		pattern = likeContains(search)
	}
	rows, err := s.pool.Query(ctx, `SELECT a.id, a.name, a.status, a.created, a.failures, a.last_try, a.login_failures, a.login_last_try,
		(SELECT COUNT(*) FROM devices d WHERE d.account_id=a.id)
		FROM accounts a WHERE `+where+` AND a.name COLLATE "C" > $2 ORDER BY a.name COLLATE "C" LIMIT $3`, pattern, after, limit)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.AccountSummary, error) {
		var a store.AccountSummary
		var created, last, loginLast, devices int64
		var fails, loginFails int
		err := r.Scan(&a.ID, &a.Name, &a.Status, &created, &fails, &last, &loginFails, &loginLast, &devices)
		a.Created, a.Attempt, a.Login, a.Devices = fromUnix(created), store.Attempts{Failures: fails, Last: fromUnix(last)},
			store.Attempts{Failures: loginFails, Last: fromUnix(loginLast)}, int(devices)
		return a, err
	})
	if out == nil && err == nil {
		out = []store.AccountSummary{}
	}
	return out, err
}

func (s *DB) CountAccounts(ctx context.Context, search string) (int, error) {
	var n int64
	pattern := ""
	if search != "" {
		pattern = likeContains(search)
	}
	err := s.pool.QueryRow(ctx, `SELECT COUNT(*) FROM accounts WHERE $1 = '' OR name LIKE $1 ESCAPE '\'`, pattern).Scan(&n)
	return int(n), err
}
