package client

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	// SQLCipher 4: AES-256-CBC pages, each authenticated with HMAC-SHA512.
	_ "github.com/mutecomm/go-sqlcipher/v4"

	"github.com/phonex/phonex/internal/api"
)

// localDB is the device's encrypted database (contacts now; messages,
// sessions and queues later). Its key is K_database, a raw 256-bit key, so
// SQLCipher's own password KDF is skipped.
type localDB struct {
	db   *sql.DB
	path string
	seen seenLimits // pruning of the replay table (replay.go)
}

var localMigrations = []string{
	`CREATE TABLE contacts (
		user    TEXT PRIMARY KEY,
		entry   BLOB NOT NULL,
		updated INTEGER NOT NULL
	);
	CREATE TABLE pins (
		device     TEXT PRIMARY KEY,
		cert_sha   TEXT NOT NULL,
		kex_sha    TEXT NOT NULL,
		first_seen INTEGER NOT NULL,
		changed    INTEGER NOT NULL DEFAULT 0
	);`,
	`CREATE TABLE kv (
		k TEXT PRIMARY KEY,
		v BLOB NOT NULL
	);
	CREATE TABLE messages (
		peer      TEXT NOT NULL,
		direction TEXT NOT NULL,
		nonce     INTEGER NOT NULL,
		device    TEXT NOT NULL,
		body      TEXT NOT NULL,
		sent      INTEGER NOT NULL,
		received  INTEGER NOT NULL,
		state     TEXT NOT NULL,
		secure    INTEGER NOT NULL,
		PRIMARY KEY (peer, direction, nonce)
	);
	CREATE TABLE queue (
		id        INTEGER PRIMARY KEY AUTOINCREMENT,
		kind      TEXT NOT NULL,
		peer      TEXT NOT NULL,
		nonce     INTEGER NOT NULL,
		payload   BLOB NOT NULL,
		envelope  BLOB,
		attempts  INTEGER NOT NULL DEFAULT 0,
		next_try  INTEGER NOT NULL,
		state     TEXT NOT NULL,
		last_error TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX queue_state ON queue(state, next_try);
	CREATE TABLE seen (
		sender TEXT NOT NULL,
		nonce  INTEGER NOT NULL,
		sent   INTEGER NOT NULL,
		PRIMARY KEY (sender, nonce)
	);`,
	`CREATE TABLE ratchet_sessions (
		device  TEXT PRIMARY KEY,
		state   BLOB NOT NULL,
		updated INTEGER NOT NULL
	);
	CREATE TABLE ratchet_prekeys (
		kind    TEXT NOT NULL,
		id      INTEGER NOT NULL,
		private BLOB NOT NULL,
		PRIMARY KEY (kind, id)
	);
	CREATE TABLE ratchet_trust (
		device TEXT PRIMARY KEY,
		key    BLOB NOT NULL
	);`,
	// ZRTP (zrtpcache.go): this profile's ZID and, per peer ZID, the
	// retained secrets, trust flags and the SAS of the last call.
	`CREATE TABLE zrtp_self (
		id  INTEGER PRIMARY KEY CHECK (id = 1),
		zid BLOB NOT NULL
	);
	CREATE TABLE zrtp_peers (
		zid     TEXT PRIMARY KEY,
		record  BLOB NOT NULL,
		updated INTEGER NOT NULL
	);`,
	// Files (filexfer.go): the private halves of this device's half-key
	// slots until the file they opened is downloaded, the state of
	// uploads so a rerun resumes them, and what was received.
	`CREATE TABLE file_slots (
		id      TEXT PRIMARY KEY,
		contact TEXT NOT NULL,
		secret  BLOB NOT NULL,
		created INTEGER NOT NULL
	);
	CREATE TABLE file_sends (
		id        INTEGER PRIMARY KEY AUTOINCREMENT,
		path      TEXT NOT NULL,
		recipient TEXT NOT NULL,
		file_id   TEXT NOT NULL DEFAULT '',
		name      TEXT NOT NULL,
		size      INTEGER NOT NULL,
		mtime     INTEGER NOT NULL,
		blob      BLOB NOT NULL,
		slots     BLOB NOT NULL,
		spool     TEXT NOT NULL,
		enc_size  INTEGER NOT NULL,
		state     TEXT NOT NULL,
		created   INTEGER NOT NULL
	);
	CREATE INDEX file_sends_path ON file_sends(path, recipient, state);
	CREATE TABLE file_recv (
		id      TEXT PRIMARY KEY,
		sender  TEXT NOT NULL,
		name    TEXT NOT NULL,
		size    INTEGER NOT NULL,
		type    TEXT NOT NULL,
		state   TEXT NOT NULL,
		path    TEXT NOT NULL DEFAULT '',
		error   TEXT NOT NULL DEFAULT '',
		expires INTEGER NOT NULL,
		updated INTEGER NOT NULL
	);
	CREATE TABLE file_delivered (
		id     TEXT NOT NULL,
		device TEXT NOT NULL,
		at     INTEGER NOT NULL,
		PRIMARY KEY (id, device)
	);`,
}

func openLocalDB(ctx context.Context, path string, key []byte) (*localDB, error) {
	if len(key) != 32 {
		return nil, errors.New("database key must be 32 bytes")
	}
	dsn := fmt.Sprintf("file:%s?_pragma_key=x'%s'&_pragma_cipher_page_size=4096&_busy_timeout=10000", path, strings.ToUpper(hex.EncodeToString(key)))
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open local database: %w", err)
	}
	db.SetMaxOpenConns(1)
	l := &localDB{db: db, path: path}
	if err := l.migrate(ctx); err != nil {
		db.Close()
		// A wrong key was excluded before (the keystore check), so a page
		// that fails its HMAC means damage or tampering.
		return nil, fmt.Errorf("%w: %s: %v", ErrTampered, DBFile, err)
	}
	return l, nil
}

func (l *localDB) migrate(ctx context.Context) error {
	if _, err := l.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`); err != nil {
		return err
	}
	var have int
	if err := l.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return err
	}
	for v := have + 1; v <= len(localMigrations); v++ {
		tx, err := l.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, localMigrations[v-1]); err != nil {
			tx.Rollback()
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version) VALUES(?)`, v); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	os.Chmod(l.path, 0o600)
	// Read every page once so a tampered page is found now, not later.
	var res string
	if err := l.db.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&res); err != nil {
		return err
	}
	if res != "ok" {
		return errors.New(res)
	}
	return nil
}

func (l *localDB) close() error { return l.db.Close() }

// exportTo writes a copy of the database under a new key (password change).
func (l *localDB) exportTo(ctx context.Context, path string, key []byte) error {
	k := strings.ToUpper(hex.EncodeToString(key))
	if _, err := l.db.ExecContext(ctx, fmt.Sprintf(`ATTACH DATABASE '%s' AS staged KEY "x'%s'"`, strings.ReplaceAll(path, "'", "''"), k)); err != nil {
		return fmt.Errorf("stage database: %w", err)
	}
	defer l.db.ExecContext(ctx, `DETACH DATABASE staged`)
	if _, err := l.db.ExecContext(ctx, `PRAGMA staged.cipher_page_size = 4096`); err != nil {
		return fmt.Errorf("stage database: %w", err)
	}
	if _, err := l.db.ExecContext(ctx, `SELECT sqlcipher_export('staged')`); err != nil {
		return fmt.Errorf("stage database: %w", err)
	}
	return nil
}

func (l *localDB) saveContacts(ctx context.Context, cs []api.Contact, now time.Time) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM contacts`); err != nil {
		return err
	}
	for _, c := range cs {
		b, _ := json.Marshal(c)
		if _, err := tx.ExecContext(ctx, `INSERT INTO contacts(user, entry, updated) VALUES(?,?,?)`, c.User, b, now.Unix()); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (l *localDB) saveContact(ctx context.Context, c api.Contact, now time.Time) error {
	b, _ := json.Marshal(c)
	_, err := l.db.ExecContext(ctx, `INSERT INTO contacts(user, entry, updated) VALUES(?,?,?) ON CONFLICT(user) DO UPDATE SET entry=excluded.entry, updated=excluded.updated`, c.User, b, now.Unix())
	return err
}

func (l *localDB) deleteContact(ctx context.Context, user string) error {
	_, err := l.db.ExecContext(ctx, `DELETE FROM contacts WHERE user=?`, user)
	return err
}

// pin records a contact device's key fingerprints on first sight (first)
// and reports whether they differ from what was pinned before (changed).
// Each step is one statement, so that callers pinning the same device at
// once (a send and a listen, or two goroutines) neither collide on the
// first insert nor both report one change.
func (l *localDB) pin(ctx context.Context, device, certSHA, kexSHA string, now time.Time) (first, changed bool, err error) {
	res, err := l.db.ExecContext(ctx, `INSERT INTO pins(device, cert_sha, kex_sha, first_seen) VALUES(?,?,?,?) ON CONFLICT(device) DO NOTHING`,
		device, certSHA, kexSHA, now.Unix())
	if err != nil {
		return false, false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return n == 1, false, err
	}
	res, err = l.db.ExecContext(ctx, `UPDATE pins SET cert_sha=?, kex_sha=?, changed=? WHERE device=? AND (cert_sha<>? OR kex_sha<>?)`,
		certSHA, kexSHA, now.Unix(), device, certSHA, kexSHA)
	if err != nil {
		return false, false, err
	}
	n, err := res.RowsAffected()
	return false, n == 1, err
}
