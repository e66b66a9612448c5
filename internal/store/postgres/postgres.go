// Package postgres is the store for clusters of several nodes: PostgreSQL
// through pgx's connection pool. It keeps the SQLite store's semantics
// (same sentinel errors, same all-or-nothing writes, an answer only after
// the commit) where SQLite's single writer gave them for free: a write
// that checks before it changes locks the rows it decides from.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/phonex/phonex/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the schema migrations (migrations/NNNN_name.sql).
func Migrations() fs.FS { return migrations }

// maxConns is the pool size unless the DSN sets pool_max_conns.
const maxConns = 16

// DB implements store.Store.
type DB struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*DB)(nil)

// pingAfterIdle is how long a pooled connection may sit idle before it is
// checked with a ping when next taken.
const pingAfterIdle = 100 * time.Millisecond

// Open connects to the database dsn names (postgres://…) and applies
// pending migrations.
func Open(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The DSN may carry a password: say what is wrong, not the DSN.
		return nil, fmt.Errorf("postgres: bad connection string: %w", errors.Unwrap(err))
	}
	// pgx's default pool (4 connections on a small machine) would make
	// the node's concurrent requests queue behind a few slow commits; a
	// DSN's pool_max_conns still decides.
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = maxConns
	}
	// After a server restart every pooled connection is dead, and the
	// first statement on each would fail the request it serves. pgx pings
	// a connection idle for over a second before handing it out; the
	// node's background passes (the policy poll every 250 ms among them)
	// keep connections from ever idling that long, so ping sooner. Under
	// load connections are rarely idle this long, so the ping costs only
	// a quiet node.
	if cfg.ShouldPing == nil {
		cfg.ShouldPing = func(_ context.Context, p pgxpool.ShouldPingParams) bool {
			return p.IdleDuration > pingAfterIdle
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &DB{pool: pool}
	if err := s.Migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// advisory lock keys (pg_advisory_lock's two-int form): the first names
// what is locked, the second an id.
const (
	lockMigrate int32 = 0x5058_0001 + iota
	lockFileSender
	lockSlots
	lockKeys
)

// Migrate applies, in order and each in its own transaction, the migrations
// schema_migrations does not list. Nodes starting at once take turns under
// a session advisory lock, so each migration runs once.
func (s *DB) Migrate(ctx context.Context) error { return s.migrate(ctx, migrations) }

func (s *DB) migrate(ctx context.Context, fsys fs.FS) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, 0)`, lockMigrate); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, 0)`, lockMigrate)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	list, err := Versions(fsys)
	if err != nil {
		return err
	}
	for _, m := range list {
		body, err := fs.ReadFile(fsys, m.Path)
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var one int
			err := tx.QueryRow(ctx, `SELECT 1 FROM schema_migrations WHERE version=$1`, m.Version).Scan(&one)
			if err == nil {
				return nil
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			// No arguments: the simple protocol, which runs a file of
			// several statements.
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO schema_migrations(version, applied) VALUES($1, $2)`, m.Version, time.Now().Unix())
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// Migration is one file of a migrations directory.
type Migration struct {
	Version int
	Name    string // file name
	Path    string
}

// Versions lists the migrations in fsys (migrations/*.sql) in order,
// refusing a name without a number or two files of one number.
func Versions(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	seen := map[int]string{}
	var out []Migration
	for _, n := range names {
		base := strings.TrimPrefix(n, "migrations/")
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("migration %s: bad name", base)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migration %s: version %d is also %s", base, v, prev)
		}
		seen[v] = base
		out = append(out, Migration{Version: v, Name: base, Path: n})
	}
	return out, nil
}

// Close closes the pool.
func (s *DB) Close() error {
	s.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (s *DB) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// tx runs f in a transaction, again (up to a few times) when PostgreSQL
// broke a deadlock or a serialization conflict by aborting it: those
// leave nothing behind, and f decides again from what it reads.
func (s *DB) tx(ctx context.Context, f func(pgx.Tx) error) error {
	var err error
	for try := 0; try < 5; try++ {
		err = pgx.BeginFunc(ctx, s.pool, f)
		if !retryable(err) {
			return err
		}
	}
	return err
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnix(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func affected(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

type scanner interface{ Scan(...any) error }

const accountCols = `id, name, status, created, kdf, salts, sealed_oprf, auth_pub, failures, last_try, login_failures, login_last_try`

func scanAccount(r scanner) (store.Account, error) {
	var a store.Account
	var created, last, loginLast int64
	err := r.Scan(&a.ID, &a.Name, &a.Status, &created, &a.Secrets.KDF, &a.Secrets.Salts, &a.Secrets.SealedOPRF, &a.Secrets.AuthPub, &a.Attempt.Failures, &last, &a.Login.Failures, &loginLast)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, store.ErrNotFound
	}
	a.Created, a.Attempt.Last, a.Login.Last = fromUnix(created), fromUnix(last), fromUnix(loginLast)
	return a, err
}

func (s *DB) CreateAccount(ctx context.Context, name string, now time.Time) (store.Account, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO accounts(name, status, created) VALUES($1, $2, $3) RETURNING id`, name, store.StatusPending, unix(now)).Scan(&id)
	if isUnique(err) {
		return store.Account{}, fmt.Errorf("account %s: %w", name, store.ErrExists)
	}
	if err != nil {
		return store.Account{}, fmt.Errorf("create account: %w", err)
	}
	return store.Account{ID: id, Name: name, Status: store.StatusPending, Created: now}, nil
}

func (s *DB) Account(ctx context.Context, name string) (store.Account, error) {
	return scanAccount(s.pool.QueryRow(ctx, `SELECT `+accountCols+` FROM accounts WHERE name=$1`, name))
}

func (s *DB) Accounts(ctx context.Context) ([]store.Account, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+accountCols+` FROM accounts ORDER BY name COLLATE "C"`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func (s *DB) SetAccountStatus(ctx context.Context, name, status string) error {
	return affected(s.pool.Exec(ctx, `UPDATE accounts SET status=$1 WHERE name=$2`, status, name))
}

func (s *DB) DeleteAccount(ctx context.Context, name string) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		// Contacts that point at the removed account go too.
		if _, err := tx.Exec(ctx, `DELETE FROM contacts WHERE contact=$1`, name); err != nil {
			return err
		}
		return affected(tx.Exec(ctx, `DELETE FROM accounts WHERE name=$1`, name))
	})
}

func (s *DB) SetAccountSecrets(ctx context.Context, id int64, sec store.AccountSecrets) error {
	return affected(s.pool.Exec(ctx, `UPDATE accounts SET kdf=$1, salts=$2, sealed_oprf=$3, auth_pub=$4, status=CASE status WHEN 'pending' THEN 'active' ELSE status END WHERE id=$5`,
		sec.KDF, sec.Salts, sec.SealedOPRF, sec.AuthPub, id))
}

func (s *DB) AddCode(ctx context.Context, accountID int64, hash []byte, expires time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO codes(hash, account_id, expires) VALUES($1, $2, $3)`, hash, accountID, unix(expires))
	return err
}

func (s *DB) ClaimCode(ctx context.Context, hash []byte, accountID int64, session string, until, now time.Time) (int64, error) {
	var acct int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var expires, claimUntil, used int64
		var claim *string
		// The row lock makes concurrent claims take turns: the second
		// reads the first's claim.
		err := tx.QueryRow(ctx, `SELECT account_id, expires, claim_session, claim_until, used FROM codes WHERE hash=$1 AND account_id=$2 FOR UPDATE`,
			hash, accountID).Scan(&acct, &expires, &claim, &claimUntil, &used)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return store.ErrCodeInvalid
		case err != nil:
			return err
		case used != 0:
			return store.ErrCodeUsed
		case unix(now) > expires:
			return store.ErrCodeExpired
		case claim != nil && *claim != session && unix(now) < claimUntil:
			return store.ErrCodeBusy
		}
		_, err = tx.Exec(ctx, `UPDATE codes SET claim_session=$1, claim_until=$2 WHERE hash=$3`, session, unix(until), hash)
		return err
	})
	return acct, err
}

func (s *DB) ReleaseCode(ctx context.Context, hash []byte, session string) error {
	_, err := s.pool.Exec(ctx, `UPDATE codes SET claim_session=NULL, claim_until=0 WHERE hash=$1 AND claim_session=$2 AND used=0`, hash, session)
	return err
}

func (s *DB) Enroll(ctx context.Context, hash []byte, session string, sec store.AccountSecrets, d store.Device, now time.Time) (store.Device, error) {
	var out store.Device
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE codes SET used=$1 WHERE hash=$2 AND used=0 AND claim_session=$3 AND claim_until>=$1 AND expires>=$1`,
			unix(now), hash, session)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrCodeBusy
		}
		if _, err := tx.Exec(ctx, `UPDATE accounts SET kdf=$1, salts=$2, sealed_oprf=$3, auth_pub=$4, status=CASE status WHEN 'disabled' THEN 'disabled' ELSE 'active' END, failures=0 WHERE id=$5 AND auth_pub IS NULL`,
			sec.KDF, sec.Salts, sec.SealedOPRF, sec.AuthPub, d.AccountID); err != nil {
			return err
		}
		out, err = insertDevice(ctx, tx, d)
		return err
	})
	return out, err
}

func insertDevice(ctx context.Context, tx pgx.Tx, d store.Device) (store.Device, error) {
	err := tx.QueryRow(ctx, `INSERT INTO devices(account_id, name, handle, suite, serial, cert, kex_cert, not_after, status, sealed_oprf, created) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) RETURNING id`,
		d.AccountID, d.Name, d.Handle, d.Suite, d.Serial, d.Cert, d.KexCert, unix(d.NotAfter), store.StatusActive, d.SealedOPRF, unix(d.Created)).Scan(&d.ID)
	if isUnique(err) {
		return d, fmt.Errorf("device %s: %w", d.Name, store.ErrExists)
	}
	if err != nil {
		return d, err
	}
	d.Status = store.StatusActive
	return d, nil
}

func (s *DB) CreateDevice(ctx context.Context, d store.Device) (store.Device, error) {
	var out store.Device
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = insertDevice(ctx, tx, d)
		return err
	})
	return out, err
}

const deviceCols = `d.id, d.account_id, a.name, d.name, d.handle, d.suite, d.serial, d.cert, d.kex_cert, d.not_after, d.status, d.sealed_oprf, d.created, d.failures, d.last_try, d.caps`

func scanDevice(r scanner) (store.Device, error) {
	var d store.Device
	var notAfter, created, last int64
	err := r.Scan(&d.ID, &d.AccountID, &d.Account, &d.Name, &d.Handle, &d.Suite, &d.Serial, &d.Cert, &d.KexCert, &notAfter, &d.Status, &d.SealedOPRF, &created, &d.Attempt.Failures, &last, &d.Caps)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, store.ErrNotFound
	}
	d.NotAfter, d.Created, d.Attempt.Last = fromUnix(notAfter), fromUnix(created), fromUnix(last)
	return d, err
}

func (s *DB) DeviceByHandle(ctx context.Context, handle string) (store.Device, error) {
	return scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceCols+` FROM devices d JOIN accounts a ON a.id=d.account_id WHERE d.handle=$1`, handle))
}

func (s *DB) DeviceByName(ctx context.Context, account, name string) (store.Device, error) {
	return scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceCols+` FROM devices d JOIN accounts a ON a.id=d.account_id WHERE a.name=$1 AND d.name=$2`, account, name))
}

func (s *DB) deviceByID(ctx context.Context, id int64) (store.Device, error) {
	return scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceCols+` FROM devices d JOIN accounts a ON a.id=d.account_id WHERE d.id=$1`, id))
}

func (s *DB) Devices(ctx context.Context, accountID int64) ([]store.Device, error) {
	// COLLATE "C": byte order, as SQLite's BINARY sorts.
	rows, err := s.pool.Query(ctx, `SELECT `+deviceCols+` FROM devices d JOIN accounts a ON a.id=d.account_id WHERE d.account_id=$1 ORDER BY d.name COLLATE "C"`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func (s *DB) ActiveDevices(ctx context.Context, accountID int64) ([]store.DeviceRef, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, suite FROM devices WHERE account_id=$1 AND status=$2 ORDER BY name COLLATE "C"`, accountID, store.StatusActive)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.DeviceRef
	for rows.Next() {
		var d store.DeviceRef
		if err := rows.Scan(&d.ID, &d.Suite); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func (s *DB) UpdateDeviceCert(ctx context.Context, id int64, serial string, cert, kex []byte, notAfter time.Time) error {
	return affected(s.pool.Exec(ctx, `UPDATE devices SET serial=$1, cert=$2, kex_cert=$3, not_after=$4 WHERE id=$5`, serial, cert, kex, unix(notAfter), id))
}

func (s *DB) SetDeviceStatus(ctx context.Context, id int64, status string) error {
	if status != store.StatusRevoked {
		return affected(s.pool.Exec(ctx, `UPDATE devices SET status=$1 WHERE id=$2`, status, id))
	}
	// A revoked device never fetches its waiting copies again; kept, they
	// would count against its account's storage for good. The trigger
	// deliveries_forget_message (0012) removes the bodies no copy needs.
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := affected(tx.Exec(ctx, `UPDATE devices SET status=$1 WHERE id=$2`, status, id)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM deliveries WHERE device_id=$1`, id)
		return err
	})
}

func (s *DB) SetDeviceOPRF(ctx context.Context, id int64, sealed []byte) error {
	return affected(s.pool.Exec(ctx, `UPDATE devices SET sealed_oprf=$1 WHERE id=$2`, sealed, id))
}

func (s *DB) ChangePassword(ctx context.Context, accountID int64, sec store.AccountSecrets, deviceID int64, sealed []byte) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := affected(tx.Exec(ctx, `UPDATE accounts SET kdf=$1, salts=$2, sealed_oprf=$3, auth_pub=$4, failures=0 WHERE id=$5`,
			sec.KDF, sec.Salts, sec.SealedOPRF, sec.AuthPub, accountID)); err != nil {
			return err
		}
		return affected(tx.Exec(ctx, `UPDATE devices SET sealed_oprf=$1, failures=0 WHERE id=$2 AND account_id=$3`, sealed, deviceID, accountID))
	})
}

// counter is where a subject's attempt counter lives.
type counter struct{ table, failures, last string }

func counterOf(subj store.Subject) (counter, error) {
	switch subj {
	case store.SubjectAccount:
		return counter{"accounts", "failures", "last_try"}, nil
	case store.SubjectDevice:
		return counter{"devices", "failures", "last_try"}, nil
	case store.SubjectLogin:
		return counter{"accounts", "login_failures", "login_last_try"}, nil
	}
	return counter{}, fmt.Errorf("unknown attempt subject %q", subj)
}

// TryAttempt locks the rows of every subject (SELECT … FOR NO KEY UPDATE) before
// reading them, so concurrent attempts on a subject, from any node, take
// turns: the second reads what the first wrote. The rows are locked in one
// order (table, then id) so two attempts on overlapping subjects cannot
// deadlock.
func (s *DB) TryAttempt(ctx context.Context, now time.Time, subjects []store.AttemptSubject, judge func([]store.Attempts) error) ([]store.Attempts, error) {
	cs := make([]counter, len(subjects))
	type row struct {
		table string
		id    int64
	}
	var locks []row
	for i, sub := range subjects {
		c, err := counterOf(sub.Subject)
		if err != nil {
			return nil, err
		}
		cs[i] = c
		locks = append(locks, row{c.table, sub.ID})
	}
	sort.Slice(locks, func(i, j int) bool {
		if locks[i].table != locks[j].table {
			return locks[i].table < locks[j].table
		}
		return locks[i].id < locks[j].id
	})
	out := make([]store.Attempts, len(subjects))
	err := s.tx(ctx, func(tx pgx.Tx) error {
		for _, l := range locks {
			var one int
			// NO KEY UPDATE: attempts on the row take turns, while
			// foreign key checks against it (a copy stored for the
			// device) need not wait.
			err := tx.QueryRow(ctx, `SELECT 1 FROM `+l.table+` WHERE id=$1 FOR NO KEY UPDATE`, l.id).Scan(&one)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		for i, sub := range subjects {
			var last int64
			err := tx.QueryRow(ctx, `SELECT `+cs[i].failures+`, `+cs[i].last+` FROM `+cs[i].table+` WHERE id=$1`, sub.ID).Scan(&out[i].Failures, &last)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("%s %d: %w", sub.Subject, sub.ID, store.ErrNotFound)
			}
			if err != nil {
				return err
			}
			out[i].Last = fromUnix(last)
		}
		if err := judge(out); err != nil {
			return err
		}
		for i, sub := range subjects {
			if _, err := tx.Exec(ctx, `UPDATE `+cs[i].table+` SET `+cs[i].failures+`=`+cs[i].failures+`+1, `+cs[i].last+`=$1 WHERE id=$2`, unix(now), sub.ID); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

func (s *DB) ResetAttempts(ctx context.Context, subj store.Subject, id int64) error {
	c, err := counterOf(subj)
	if err != nil {
		return err
	}
	return affected(s.pool.Exec(ctx, `UPDATE `+c.table+` SET `+c.failures+`=0 WHERE id=$1`, id))
}

// SpendNonce inserts with ON CONFLICT DO NOTHING: a concurrent spend of the
// same value waits for the first to commit and then inserts nothing, so
// exactly one of them succeeds.
func (s *DB) SpendNonce(ctx context.Context, hash []byte, expires, now time.Time) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM spent_nonces WHERE expires<$1`, unix(now)); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO spent_nonces(hash, expires) VALUES($1, $2) ON CONFLICT DO NOTHING`, hash, unix(expires))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrReplayed
		}
		return nil
	})
}

func (s *DB) AddContact(ctx context.Context, accountID int64, contact string, now time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO contacts(account_id, contact, added) VALUES($1,$2,$3) ON CONFLICT DO NOTHING`, accountID, contact, unix(now))
	return err
}

func (s *DB) RemoveContact(ctx context.Context, accountID int64, contact string) error {
	return affected(s.pool.Exec(ctx, `DELETE FROM contacts WHERE account_id=$1 AND contact=$2`, accountID, contact))
}

func (s *DB) Contacts(ctx context.Context, accountID int64) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT contact FROM contacts WHERE account_id=$1 ORDER BY contact COLLATE "C"`, accountID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func (s *DB) HasContact(ctx context.Context, owner, contact string) (bool, error) {
	var one int
	err := s.pool.QueryRow(ctx, `SELECT 1 FROM contacts c JOIN accounts a ON a.id=c.account_id WHERE a.name=$1 AND c.contact=$2`, owner, contact).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (s *DB) RoutingGeneration(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT n FROM routing_generation WHERE id=1`).Scan(&n)
	return n, err
}

func (s *DB) Waiting(ctx context.Context, deviceIDs []int64) (int64, bool, error) {
	var n int64
	var waiting bool
	err := s.pool.QueryRow(ctx, `SELECT n, EXISTS(SELECT 1 FROM deliveries WHERE device_id = ANY($1)) FROM routing_generation WHERE id=1`, deviceIDs).Scan(&n, &waiting)
	return n, waiting, err
}

func (s *DB) SetSIPCredential(ctx context.Context, deviceID int64, username string, ha1 []byte) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO sip_credentials(device_id, username, ha1) VALUES($1,$2,$3)`, deviceID, username, ha1)
	if isUnique(err) {
		return fmt.Errorf("sip username %s: %w", username, store.ErrExists)
	}
	return err
}

func (s *DB) SIPCredential(ctx context.Context, username string) (store.Device, []byte, error) {
	var id int64
	var ha1 []byte
	err := s.pool.QueryRow(ctx, `SELECT device_id, ha1 FROM sip_credentials WHERE username=$1`, username).Scan(&id, &ha1)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Device{}, nil, store.ErrNotFound
	}
	if err != nil {
		return store.Device{}, nil, err
	}
	d, err := s.deviceByID(ctx, id)
	return d, ha1, err
}

func (s *DB) SetPhoneLogin(ctx context.Context, deviceID int64, username string, ha1 []byte) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO phone_logins(device_id, username, ha1) VALUES($1,$2,$3)`, deviceID, username, ha1)
	if isUnique(err) {
		return fmt.Errorf("phone login of device %d: %w", deviceID, store.ErrExists)
	}
	return err
}

// PhoneLogins returns the phones a digest username may name, lowest
// device id first, so the first is always the same one.
func (s *DB) PhoneLogins(ctx context.Context, username string) ([]store.PhoneLogin, error) {
	rows, err := s.pool.Query(ctx, `SELECT device_id, ha1 FROM phone_logins WHERE username=$1
		UNION ALL SELECT device_id, ha1 FROM sip_credentials WHERE username=$1 ORDER BY device_id`, username)
	if err != nil {
		return nil, err
	}
	type row struct {
		id  int64
		ha1 []byte
	}
	var rs []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.ha1); err != nil {
			rows.Close()
			return nil, err
		}
		rs = append(rs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]store.PhoneLogin, 0, len(rs))
	for _, r := range rs {
		d, err := s.deviceByID(ctx, r.id)
		if err != nil {
			return nil, fmt.Errorf("phone device %d: %w", r.id, err)
		}
		out = append(out, store.PhoneLogin{Device: d, HA1: r.ha1})
	}
	return out, nil
}

// PutKeys holds a per-device advisory lock, so two uploads of one device
// cannot both pass the cap on the keys of a kind.
func (s *DB) PutKeys(ctx context.Context, deviceID int64, up store.KeyUpload) error {
	put := func(tx pgx.Tx, kind string, k store.Prekey) error {
		_, err := tx.Exec(ctx, `INSERT INTO prekeys(device_id, kind, key_id, data) VALUES($1,$2,$3,$4) ON CONFLICT(device_id, kind, key_id) DO UPDATE SET data=excluded.data`,
			deviceID, kind, k.ID, k.Data)
		if err != nil {
			return fmt.Errorf("%s key %d: %w", kind, k.ID, err)
		}
		return nil
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, lockKeys, int32(deviceID)); err != nil {
			return err
		}
		for kind, k := range up.Replace {
			if _, err := tx.Exec(ctx, `DELETE FROM prekeys WHERE device_id=$1 AND kind=$2`, deviceID, kind); err != nil {
				return err
			}
			if err := put(tx, kind, k); err != nil {
				return err
			}
		}
		for kind, ks := range up.Add {
			for _, k := range ks {
				if err := put(tx, kind, k); err != nil {
					return err
				}
			}
			if up.MaxPerKind > 0 {
				var n int
				if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM prekeys WHERE device_id=$1 AND kind=$2`, deviceID, kind).Scan(&n); err != nil {
					return err
				}
				if n > up.MaxPerKind {
					return fmt.Errorf("%d %s keys, at most %d: %w", n, kind, up.MaxPerKind, store.ErrTooManyKeys)
				}
			}
		}
		if up.Caps != nil {
			if err := affected(tx.Exec(ctx, `UPDATE devices SET caps=$1 WHERE id=$2`, *up.Caps, deviceID)); err != nil {
				return err
			}
		}
		return nil
	})
}

// TakePrekey consumes a one-time key with one DELETE … RETURNING of the
// lowest id not locked by another taker (SKIP LOCKED), so concurrent
// takers on any node each get a different key.
func (s *DB) TakePrekey(ctx context.Context, deviceID int64, kind string, consume bool) (store.Prekey, error) {
	var k store.Prekey
	var err error
	if consume {
		err = s.pool.QueryRow(ctx, `DELETE FROM prekeys WHERE (device_id, kind, key_id) = (
			SELECT device_id, kind, key_id FROM prekeys WHERE device_id=$1 AND kind=$2 ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED)
			RETURNING key_id, data`, deviceID, kind).Scan(&k.ID, &k.Data)
	} else {
		// Signed keys: the newest.
		err = s.pool.QueryRow(ctx, `SELECT key_id, data FROM prekeys WHERE device_id=$1 AND kind=$2 ORDER BY key_id DESC LIMIT 1`, deviceID, kind).Scan(&k.ID, &k.Data)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return k, store.ErrNotFound
	}
	return k, err
}

func (s *DB) CountPrekeys(ctx context.Context, deviceID int64, kind string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT COUNT(*) FROM prekeys WHERE device_id=$1 AND kind=$2`, deviceID, kind).Scan(&n)
	return n, err
}

func (s *DB) SetDeviceCaps(ctx context.Context, deviceID int64, caps string) error {
	return affected(s.pool.Exec(ctx, `UPDATE devices SET caps=$1 WHERE id=$2`, caps, deviceID))
}
