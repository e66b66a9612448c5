// Package sqlite is the embedded default store: SQLite through a pure-Go
// driver (no C toolchain needed), in WAL mode so the admin commands can work
// on the data directory while the server runs.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite"

	"github.com/phonex/phonex/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// maxConns is the size of the connection pool.
const maxConns = 16

// DB implements store.Store.
type DB struct {
	db    *sql.DB
	conn  *cachingConnector
	batch *batcher
	wait  waitCache // Waiting's answers while nothing is committed (waiting.go)
}

var _ store.Store = (*DB)(nil)

// Open opens (creating if needed) the database at path and applies pending
// migrations.
func Open(ctx context.Context, path string) (*DB, error) {
	return openWith(ctx, path, migrations)
}

// openWith is Open with the migrations read from fsys (migrations/*.sql),
// so tests can migrate to an earlier version or through a broken file.
func openWith(ctx context.Context, path string, fsys fs.FS) (*DB, error) {
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)&_txlock=immediate"
	conn, err := newCachingConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db := sql.OpenDB(conn)
	// A fixed pool whose connections (and their compiled statements) stay
	// open: without a bound, every reader past the idle ones opened a
	// connection for one query (a new file handle, the pragmas, every
	// statement compiled again) and closed it. SQLite runs on the
	// caller's CPU, so more connections than this buy nothing on the
	// machines the node runs on; no store method holds one connection
	// while asking for another, so callers only wait, never deadlock.
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	s := &DB{db: db, conn: conn}
	if err := s.migrate(ctx, fsys); err != nil {
		db.Close()
		return nil, err
	}
	s.batch = newBatcher(db)
	return s, nil
}

// migrate applies, in order and each in its own transaction, the
// migrations in fsys that schema_migrations does not list. A migration that
// fails is rolled back whole and stops the ones after it.
func (s *DB) migrate(ctx context.Context, fsys fs.FS) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	seen := map[int]string{}
	for _, n := range names {
		base := strings.TrimPrefix(n, "migrations/")
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: bad name", base)
		}
		// Two files with one number: the second would be skipped as
		// applied.
		if prev, dup := seen[v]; dup {
			return fmt.Errorf("migration %s: version %d is also %s", base, v, prev)
		}
		seen[v] = base
		body, err := fs.ReadFile(fsys, n)
		if err != nil {
			return fmt.Errorf("migration %s: %w", base, err)
		}
		err = s.tx(ctx, func(tx *sql.Tx) error {
			var one int
			if err := tx.QueryRowContext(ctx, `SELECT 1 FROM schema_migrations WHERE version=?`, v).Scan(&one); err == nil {
				return nil
			} else if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, applied) VALUES(?, ?)`, v, time.Now().Unix())
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", base, err)
		}
	}
	return nil
}

// Close closes the database.
func (s *DB) Close() error {
	s.wait.close()
	s.batch.close()
	return s.db.Close()
}

func (s *DB) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint")
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

const accountCols = `id, name, status, created, kdf, salts, sealed_oprf, auth_pub, failures, last_try, login_failures, login_last_try`

func scanAccount(r interface{ Scan(...any) error }) (store.Account, error) {
	var a store.Account
	var created, last, loginLast int64
	err := r.Scan(&a.ID, &a.Name, &a.Status, &created, &a.Secrets.KDF, &a.Secrets.Salts, &a.Secrets.SealedOPRF, &a.Secrets.AuthPub, &a.Attempt.Failures, &last, &a.Login.Failures, &loginLast)
	if errors.Is(err, sql.ErrNoRows) {
		return a, store.ErrNotFound
	}
	a.Created, a.Attempt.Last, a.Login.Last = fromUnix(created), fromUnix(last), fromUnix(loginLast)
	return a, err
}

func (s *DB) CreateAccount(ctx context.Context, name string, now time.Time) (store.Account, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO accounts(name, status, created) VALUES(?, ?, ?)`, name, store.StatusPending, unix(now))
	if isUnique(err) {
		return store.Account{}, fmt.Errorf("account %s: %w", name, store.ErrExists)
	}
	if err != nil {
		return store.Account{}, fmt.Errorf("create account: %w", err)
	}
	id, _ := res.LastInsertId()
	return store.Account{ID: id, Name: name, Status: store.StatusPending, Created: now}, nil
}

func (s *DB) Account(ctx context.Context, name string) (store.Account, error) {
	return scanAccount(s.db.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE name=?`, name))
}

func (s *DB) Accounts(ctx context.Context) ([]store.Account, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+accountCols+` FROM accounts ORDER BY name`)
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

func affected(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	return nil
}

func (s *DB) SetAccountStatus(ctx context.Context, name, status string) error {
	return affected(s.db.ExecContext(ctx, `UPDATE accounts SET status=? WHERE name=?`, status, name))
}

func (s *DB) DeleteAccount(ctx context.Context, name string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		// Contacts that point at the removed account go too.
		if _, err := tx.ExecContext(ctx, `DELETE FROM contacts WHERE contact=?`, name); err != nil {
			return err
		}
		return affected(tx.ExecContext(ctx, `DELETE FROM accounts WHERE name=?`, name))
	})
}

func (s *DB) SetAccountSecrets(ctx context.Context, id int64, sec store.AccountSecrets) error {
	return affected(s.db.ExecContext(ctx, `UPDATE accounts SET kdf=?, salts=?, sealed_oprf=?, auth_pub=?, status=CASE status WHEN 'pending' THEN 'active' ELSE status END WHERE id=?`,
		sec.KDF, sec.Salts, sec.SealedOPRF, sec.AuthPub, id))
}

func (s *DB) AddCode(ctx context.Context, accountID int64, hash []byte, expires time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO codes(hash, account_id, expires) VALUES(?, ?, ?)`, hash, accountID, unix(expires))
	return err
}

func (s *DB) ClaimCode(ctx context.Context, hash []byte, accountID int64, session string, until, now time.Time) (int64, error) {
	var acct int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var expires, claimUntil, used int64
		var claim sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT account_id, expires, claim_session, claim_until, used FROM codes WHERE hash=? AND account_id=?`, hash, accountID).Scan(&acct, &expires, &claim, &claimUntil, &used)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return store.ErrCodeInvalid
		case err != nil:
			return err
		case used != 0:
			return store.ErrCodeUsed
		case unix(now) > expires:
			return store.ErrCodeExpired
		case claim.Valid && claim.String != session && unix(now) < claimUntil:
			return store.ErrCodeBusy
		}
		_, err = tx.ExecContext(ctx, `UPDATE codes SET claim_session=?, claim_until=? WHERE hash=?`, session, unix(until), hash)
		return err
	})
	return acct, err
}

func (s *DB) ReleaseCode(ctx context.Context, hash []byte, session string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE codes SET claim_session=NULL, claim_until=0 WHERE hash=? AND claim_session=? AND used=0`, hash, session)
	return err
}

func (s *DB) Enroll(ctx context.Context, hash []byte, session string, sec store.AccountSecrets, d store.Device, now time.Time) (store.Device, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE codes SET used=? WHERE hash=? AND used=0 AND claim_session=? AND claim_until>=? AND expires>=?`,
			unix(now), hash, session, unix(now), unix(now))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrCodeBusy
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET kdf=?, salts=?, sealed_oprf=?, auth_pub=?, status=CASE status WHEN 'disabled' THEN 'disabled' ELSE 'active' END, failures=0 WHERE id=? AND auth_pub IS NULL`,
			sec.KDF, sec.Salts, sec.SealedOPRF, sec.AuthPub, d.AccountID); err != nil {
			return err
		}
		d, err = insertDevice(ctx, tx, d)
		return err
	})
	return d, err
}

func insertDevice(ctx context.Context, tx *sql.Tx, d store.Device) (store.Device, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO devices(account_id, name, handle, suite, serial, cert, kex_cert, not_after, status, sealed_oprf, created) VALUES(?,?,?,?,?,?,?,?,?,?,?)`,
		d.AccountID, d.Name, d.Handle, d.Suite, d.Serial, d.Cert, d.KexCert, unix(d.NotAfter), store.StatusActive, d.SealedOPRF, unix(d.Created))
	if isUnique(err) {
		return d, fmt.Errorf("device %s: %w", d.Name, store.ErrExists)
	}
	if err != nil {
		return d, err
	}
	d.ID, _ = res.LastInsertId()
	d.Status = store.StatusActive
	return d, nil
}

func (s *DB) CreateDevice(ctx context.Context, d store.Device) (store.Device, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		d, err = insertDevice(ctx, tx, d)
		return err
	})
	return d, err
}

const deviceCols = `d.id, d.account_id, a.name, d.name, d.handle, d.suite, d.serial, d.cert, d.kex_cert, d.not_after, d.status, d.sealed_oprf, d.created, d.failures, d.last_try, d.caps`

func scanDevice(r interface{ Scan(...any) error }) (store.Device, error) {
	var d store.Device
	var notAfter, created, last int64
	err := r.Scan(&d.ID, &d.AccountID, &d.Account, &d.Name, &d.Handle, &d.Suite, &d.Serial, &d.Cert, &d.KexCert, &notAfter, &d.Status, &d.SealedOPRF, &created, &d.Attempt.Failures, &last, &d.Caps)
	if errors.Is(err, sql.ErrNoRows) {
		return d, store.ErrNotFound
	}
	d.NotAfter, d.Created, d.Attempt.Last = fromUnix(notAfter), fromUnix(created), fromUnix(last)
	return d, err
}

func (s *DB) DeviceByHandle(ctx context.Context, handle string) (store.Device, error) {
	return scanDevice(s.db.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices d JOIN accounts a ON a.id=d.account_id WHERE d.handle=?`, handle))
}

func (s *DB) DeviceByName(ctx context.Context, account, name string) (store.Device, error) {
	return scanDevice(s.db.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices d JOIN accounts a ON a.id=d.account_id WHERE a.name=? AND d.name=?`, account, name))
}

func (s *DB) Devices(ctx context.Context, accountID int64) ([]store.Device, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+deviceCols+` FROM devices d JOIN accounts a ON a.id=d.account_id WHERE d.account_id=? ORDER BY d.name`, accountID)
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
	rows, err := s.db.QueryContext(ctx, `SELECT id, suite FROM devices WHERE account_id=? AND status=? ORDER BY name`, accountID, store.StatusActive)
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
	return affected(s.db.ExecContext(ctx, `UPDATE devices SET serial=?, cert=?, kex_cert=?, not_after=? WHERE id=?`, serial, cert, kex, unix(notAfter), id))
}

func (s *DB) SetDeviceStatus(ctx context.Context, id int64, status string) error {
	if status != store.StatusRevoked {
		return affected(s.db.ExecContext(ctx, `UPDATE devices SET status=? WHERE id=?`, status, id))
	}
	// A revoked device never fetches its waiting copies again; kept, they
	// would count against its account's storage for good.
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := affected(tx.ExecContext(ctx, `UPDATE devices SET status=? WHERE id=?`, status, id)); err != nil {
			return err
		}
		var ids []int64
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT message_id FROM deliveries WHERE device_id=?`, id)
		if err != nil {
			return err
		}
		for rows.Next() {
			var mid int64
			if err := rows.Scan(&mid); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, mid)
		}
		rows.Close()
		if _, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE device_id=?`, id); err != nil {
			return err
		}
		for _, mid := range ids {
			if _, err := tx.ExecContext(ctx, `DELETE FROM messages WHERE id=? AND NOT EXISTS (SELECT 1 FROM deliveries WHERE message_id=?)`, mid, mid); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *DB) SetDeviceOPRF(ctx context.Context, id int64, sealed []byte) error {
	return affected(s.db.ExecContext(ctx, `UPDATE devices SET sealed_oprf=? WHERE id=?`, sealed, id))
}

func (s *DB) ChangePassword(ctx context.Context, accountID int64, sec store.AccountSecrets, deviceID int64, sealed []byte) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := affected(tx.ExecContext(ctx, `UPDATE accounts SET kdf=?, salts=?, sealed_oprf=?, auth_pub=?, failures=0 WHERE id=?`,
			sec.KDF, sec.Salts, sec.SealedOPRF, sec.AuthPub, accountID)); err != nil {
			return err
		}
		return affected(tx.ExecContext(ctx, `UPDATE devices SET sealed_oprf=?, failures=0 WHERE id=? AND account_id=?`, sealed, deviceID, accountID))
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

// TryAttempt runs in one write transaction. The DSN's _txlock=immediate
// makes BEGIN take SQLite's write lock at once, so two attempts on any
// subjects are serialised: the second reads what the first wrote.
func (s *DB) TryAttempt(ctx context.Context, now time.Time, subjects []store.AttemptSubject, judge func([]store.Attempts) error) ([]store.Attempts, error) {
	cs := make([]counter, len(subjects))
	for i, sub := range subjects {
		c, err := counterOf(sub.Subject)
		if err != nil {
			return nil, err
		}
		cs[i] = c
	}
	out := make([]store.Attempts, len(subjects))
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for i, sub := range subjects {
			var last int64
			err := tx.QueryRowContext(ctx, `SELECT `+cs[i].failures+`, `+cs[i].last+` FROM `+cs[i].table+` WHERE id=?`, sub.ID).Scan(&out[i].Failures, &last)
			if errors.Is(err, sql.ErrNoRows) {
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
			if _, err := tx.ExecContext(ctx, `UPDATE `+cs[i].table+` SET `+cs[i].failures+`=`+cs[i].failures+`+1, `+cs[i].last+`=? WHERE id=?`, unix(now), sub.ID); err != nil {
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
	return affected(s.db.ExecContext(ctx, `UPDATE `+c.table+` SET `+c.failures+`=0 WHERE id=?`, id))
}

func (s *DB) SpendNonce(ctx context.Context, hash []byte, expires, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM spent_nonces WHERE expires<?`, unix(now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO spent_nonces(hash, expires) VALUES(?, ?)`, hash, unix(expires))
		if isUnique(err) {
			return store.ErrReplayed
		}
		return err
	})
}

func (s *DB) AddContact(ctx context.Context, accountID int64, contact string, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO contacts(account_id, contact, added) VALUES(?,?,?) ON CONFLICT DO NOTHING`, accountID, contact, unix(now))
	return err
}

func (s *DB) RemoveContact(ctx context.Context, accountID int64, contact string) error {
	return affected(s.db.ExecContext(ctx, `DELETE FROM contacts WHERE account_id=? AND contact=?`, accountID, contact))
}

func (s *DB) Contacts(ctx context.Context, accountID int64) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT contact FROM contacts WHERE account_id=? ORDER BY contact`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s *DB) HasContact(ctx context.Context, owner, contact string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM contacts c JOIN accounts a ON a.id=c.account_id WHERE a.name=? AND c.contact=?`, owner, contact).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (s *DB) EnqueueMessage(ctx context.Context, m store.Message, targets []store.Target, quota int64) (int64, error) {
	var id int64
	err := s.batch.do(ctx, func(tx *sql.Tx) error {
		ctx := inBatch(ctx)
		if m.RouteGeneration != 0 {
			g, err := s.batch.generation(tx)
			if err != nil {
				return err
			}
			if g != m.RouteGeneration {
				return store.ErrStaleRoute
			}
		}
		// The check and the insert share the write transaction (SQLite has
		// one writer), so concurrent messages cannot both pass a check that
		// only one of them fits.
		if quota > 0 {
			adds := map[int64]int64{}
			var order []int64
			for _, t := range targets {
				if _, ok := adds[t.AccountID]; !ok {
					order = append(order, t.AccountID)
				}
				adds[t.AccountID] += int64(len(m.Body))
			}
			for _, acct := range order {
				var held int64
				if err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT bytes FROM stored_bytes WHERE account_id=?), 0)`, acct).Scan(&held); err != nil {
					return err
				}
				if held+adds[acct] > quota {
					return &store.StorageFullError{AccountID: acct}
				}
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO messages(sender, sender_dev, recipient, content_type, body, created) VALUES(?,?,?,?,?,?)`,
			m.Sender, m.SenderDevice, m.Recipient, m.ContentType, m.Body, unix(m.Created))
		if err != nil {
			return err
		}
		id, _ = res.LastInsertId()
		for _, t := range targets {
			if _, err := tx.ExecContext(ctx, `INSERT INTO deliveries(message_id, device_id, account_id, size, sender) VALUES(?,?,?,?,?)`, id, t.DeviceID, t.AccountID, len(m.Body), m.Sender); err != nil {
				return err
			}
		}
		return nil
	})
	return id, err
}

// Pending reads, in the common case of a device with no more than limit
// copies waiting, every copy in one plain index range (pendingAll) and
// orders them into turns here; only a longer backlog needs the query that
// picks each sender's first copies (pendingTurns).
func (s *DB) Pending(ctx context.Context, deviceID int64, limit int) ([]store.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Short indexed reads: not worth the driver's interrupt watcher (a
	// goroutine per statement under a context that can end).
	ctx = context.WithoutCancel(ctx)
	out, err := s.pendingAll(ctx, deviceID, limit)
	if err != nil || len(out) > 0 {
		return out, err
	}
	// None waiting, or more than limit.
	return s.pendingTurns(ctx, deviceID, limit)
}

// pendingAll returns every copy waiting for the device in turns, or none
// when more than limit are waiting: it reads at most limit+1 copies in
// arrival order (deliveries_device) and gives up at the one past the limit.
func (s *DB) pendingAll(ctx context.Context, deviceID int64, limit int) ([]store.Delivery, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT d.seq, m.id, m.sender, m.sender_dev, m.recipient, m.content_type, m.body, m.created
		FROM deliveries d INDEXED BY deliveries_device JOIN messages m ON m.id=d.message_id
		WHERE d.device_id=? ORDER BY d.seq LIMIT ?`, deviceID, limit+1)
	if err != nil {
		return nil, err
	}
	out, err := scanDeliveries(rows)
	if err != nil || len(out) > limit {
		return nil, err
	}
	// The n-th copy of each sender takes turn n; a stable sort by turn
	// keeps arrival order within a turn.
	turn := make(map[string]int, 4)
	turns := make([]int, len(out))
	for i, d := range out {
		turn[d.Sender]++
		turns[i] = turn[d.Sender]
	}
	if len(turn) > 1 {
		idx := make([]int, len(out))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return turns[idx[a]] < turns[idx[b]] })
		sorted := make([]store.Delivery, len(out))
		for i, j := range idx {
			sorted[i] = out[j]
		}
		out = sorted
	}
	return out, nil
}

func scanDeliveries(rows *sql.Rows) ([]store.Delivery, error) {
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

// pendingTurns is Pending for any backlog.
func (s *DB) pendingTurns(ctx context.Context, deviceID int64, limit int) ([]store.Delivery, error) {
	// Round robin over senders: the n-th waiting copy of every sender comes
	// before the (n+1)-th of any, each sender's copies in arrival order.
	// Only each sender's first `limit` copies can be chosen, and the index
	// on (device_id, sender, seq) finds them without reading the rest of a
	// backlog: the senders by skipping from one to the next (s), each
	// sender's limit-th copy (b), its first copies as a range up to that (h).
	rows, err := s.db.QueryContext(ctx, `WITH RECURSIVE
		s(sender) AS (
			SELECT MIN(sender) FROM deliveries WHERE device_id=?1
			UNION ALL
			SELECT (SELECT MIN(sender) FROM deliveries WHERE device_id=?1 AND sender>s.sender) FROM s WHERE s.sender IS NOT NULL),
		b(sender, bound) AS MATERIALIZED (
			SELECT sender, COALESCE((SELECT y.seq FROM deliveries y WHERE y.device_id=?1 AND y.sender=s.sender ORDER BY y.seq LIMIT 1 OFFSET ?2-1),
				9223372036854775807) FROM s WHERE sender IS NOT NULL),
		h(seq, sender) AS (
			SELECT x.seq, x.sender FROM b CROSS JOIN deliveries x INDEXED BY deliveries_device_sender
			WHERE x.device_id=?1 AND x.sender=b.sender AND x.seq <= b.bound),
		f(seq, turn) AS (
			SELECT seq, ROW_NUMBER() OVER (PARTITION BY sender ORDER BY seq) FROM h ORDER BY 2, 1 LIMIT ?2)
		SELECT d.seq, m.id, m.sender, m.sender_dev, m.recipient, m.content_type, m.body, m.created
		FROM f JOIN deliveries d ON d.seq=f.seq JOIN messages m ON m.id=d.message_id
		ORDER BY f.turn, f.seq`, deviceID, limit)
	if err != nil {
		return nil, err
	}
	return scanDeliveries(rows)
}

// Delivered is one statement: the trigger deliveries_forget_message (0012)
// removes the body with its last copy, and a delete of a copy already
// forgotten changes nothing, so acknowledging twice is harmless.
// inBatch is the context of a job's statements in the shared transaction.
// The caller's context ending must not interrupt a statement there (the
// other jobs' writes share it), and the batcher has already skipped a job
// whose caller gave up; without a Done channel the driver also starts no
// interrupt watcher, a goroutine per statement.
func inBatch(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

func (s *DB) Delivered(ctx context.Context, seq int64) error {
	return s.batch.doStatement(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(inBatch(ctx), `DELETE FROM deliveries WHERE seq=?`, seq)
		return err
	})
}

func (s *DB) RoutingGeneration(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT n FROM routing_generation WHERE id=1`).Scan(&n)
	return n, err
}

func (s *DB) StoredBytes(ctx context.Context, accountID int64) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE((SELECT bytes FROM stored_bytes WHERE account_id=?), 0)`, accountID).Scan(&n)
	return n, err
}

func (s *DB) SetSIPCredential(ctx context.Context, deviceID int64, username string, ha1 []byte) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO sip_credentials(device_id, username, ha1) VALUES(?,?,?)`, deviceID, username, ha1)
	if isUnique(err) {
		return fmt.Errorf("sip username %s: %w", username, store.ErrExists)
	}
	return err
}

func (s *DB) SIPCredential(ctx context.Context, username string) (store.Device, []byte, error) {
	var id int64
	var ha1 []byte
	err := s.db.QueryRowContext(ctx, `SELECT device_id, ha1 FROM sip_credentials WHERE username=?`, username).Scan(&id, &ha1)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Device{}, nil, store.ErrNotFound
	}
	if err != nil {
		return store.Device{}, nil, err
	}
	d, err := scanDevice(s.db.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices d JOIN accounts a ON a.id=d.account_id WHERE d.id=?`, id))
	return d, ha1, err
}

func (s *DB) PutKeys(ctx context.Context, deviceID int64, up store.KeyUpload) error {
	put := func(tx *sql.Tx, kind string, k store.Prekey) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO prekeys(device_id, kind, key_id, data) VALUES(?,?,?,?) ON CONFLICT(device_id, kind, key_id) DO UPDATE SET data=excluded.data`,
			deviceID, kind, k.ID, k.Data)
		if err != nil {
			return fmt.Errorf("%s key %d: %w", kind, k.ID, err)
		}
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		for kind, k := range up.Replace {
			if _, err := tx.ExecContext(ctx, `DELETE FROM prekeys WHERE device_id=? AND kind=?`, deviceID, kind); err != nil {
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
				if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM prekeys WHERE device_id=? AND kind=?`, deviceID, kind).Scan(&n); err != nil {
					return err
				}
				if n > up.MaxPerKind {
					return fmt.Errorf("%d %s keys, at most %d: %w", n, kind, up.MaxPerKind, store.ErrTooManyKeys)
				}
			}
		}
		if up.Caps != nil {
			if err := affected(tx.ExecContext(ctx, `UPDATE devices SET caps=? WHERE id=?`, *up.Caps, deviceID)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *DB) TakePrekey(ctx context.Context, deviceID int64, kind string, consume bool) (store.Prekey, error) {
	var k store.Prekey
	err := s.tx(ctx, func(tx *sql.Tx) error {
		// Signed keys: the newest; one-time keys: the oldest.
		order := "ASC"
		if !consume {
			order = "DESC"
		}
		err := tx.QueryRowContext(ctx, `SELECT key_id, data FROM prekeys WHERE device_id=? AND kind=? ORDER BY key_id `+order+` LIMIT 1`, deviceID, kind).Scan(&k.ID, &k.Data)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil || !consume {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM prekeys WHERE device_id=? AND kind=? AND key_id=?`, deviceID, kind, k.ID)
		return err
	})
	return k, err
}

func (s *DB) CountPrekeys(ctx context.Context, deviceID int64, kind string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM prekeys WHERE device_id=? AND kind=?`, deviceID, kind).Scan(&n)
	return n, err
}

func (s *DB) SetDeviceCaps(ctx context.Context, deviceID int64, caps string) error {
	return affected(s.db.ExecContext(ctx, `UPDATE devices SET caps=? WHERE id=?`, caps, deviceID))
}

// Ping checks that the database answers.
func (s *DB) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }
