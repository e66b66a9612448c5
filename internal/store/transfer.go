package store

import (
	"context"
	"errors"
	"fmt"
)

// ErrNotEmpty refuses to load a copy into a store that already holds
// state.
var ErrNotEmpty = errors.New("target store is not empty")

// Transfer moves a whole store's state between implementations
// ('phonexd store copy'), table by table in a neutral form: each value an
// int64, a string, a []byte or nil, in the order of CopyTables' columns.
type Transfer interface {
	// Dump calls fn with every row of every table of CopyTables, in that
	// order (a row's references come before it), from one consistent
	// snapshot.
	Dump(ctx context.Context, fn func(table string, row []any) error) error
	// Load runs fill in one transaction on an empty store (ErrNotEmpty
	// otherwise): the rows fill writes with put, ids as given, are
	// committed together or not at all, and ids made afterwards start
	// past the largest one written. Derived state (bytes held per
	// account, the routing generation) follows from the rows.
	Load(ctx context.Context, fill func(put func(table string, row []any) error) error) error
}

// ColumnKind is the neutral type of a copied column.
type ColumnKind int

// Column kinds.
const (
	Int ColumnKind = iota
	Text
	Bytes
)

// CopyColumn is one column of a copied table.
type CopyColumn struct {
	Name     string
	Kind     ColumnKind
	Nullable bool
}

// CopyTable is a table the copy moves, with its key (the order rows are
// read in) and columns. Both implementations have these tables with these
// columns; their tests check that every other table is derived.
type CopyTable struct {
	Name    string
	Key     []string
	Columns []CopyColumn
}

func cols(spec ...any) []CopyColumn {
	var out []CopyColumn
	for i := 0; i < len(spec); i += 2 {
		c := CopyColumn{Name: spec[i].(string)}
		switch k := spec[i+1].(string); k {
		case "i", "i?":
			c.Kind = Int
		case "s", "s?":
			c.Kind = Text
		case "b", "b?":
			c.Kind = Bytes
		default:
			panic("bad column kind " + k)
		}
		c.Nullable = len(spec[i+1].(string)) == 2
		out = append(out, c)
	}
	return out
}

// CopyTables lists what a copy moves, parents before children. Left out,
// because they follow from these: stored_bytes, routing_generation,
// policy_generation and schema_migrations.
var CopyTables = []CopyTable{
	{"accounts", []string{"id"}, cols("id", "i", "name", "s", "status", "s", "created", "i", "kdf", "b?", "salts", "b?", "sealed_oprf", "b?", "auth_pub", "b?",
		"failures", "i", "last_try", "i", "login_failures", "i", "login_last_try", "i")},
	{"codes", []string{"hash"}, cols("hash", "b", "account_id", "i", "expires", "i", "claim_session", "s?", "claim_until", "i", "used", "i")},
	{"devices", []string{"id"}, cols("id", "i", "account_id", "i", "name", "s", "handle", "s", "suite", "s", "serial", "s", "cert", "b", "kex_cert", "b?",
		"not_after", "i", "status", "s", "sealed_oprf", "b", "created", "i", "failures", "i", "last_try", "i", "caps", "s")},
	{"contacts", []string{"account_id", "contact"}, cols("account_id", "i", "contact", "s", "added", "i")},
	{"messages", []string{"id"}, cols("id", "i", "sender", "s", "sender_dev", "s", "recipient", "s", "content_type", "s", "body", "b", "created", "i")},
	{"deliveries", []string{"seq"}, cols("seq", "i", "message_id", "i", "device_id", "i", "account_id", "i", "size", "i", "sender", "s")},
	{"sip_credentials", []string{"device_id"}, cols("device_id", "i", "username", "s", "ha1", "b")},
	{"phone_logins", []string{"device_id"}, cols("device_id", "i", "username", "s", "ha1", "b")},
	{"prekeys", []string{"device_id", "kind", "key_id"}, cols("device_id", "i", "kind", "s", "key_id", "i", "data", "b")},
	{"spent_nonces", []string{"hash"}, cols("hash", "b", "expires", "i")},
	{"files", []string{"id"}, cols("id", "s", "sender_account", "i?", "sender_device", "i?", "recipient_account", "i?", "size", "i", "header", "b",
		"received", "i", "state", "s", "created", "i", "expires", "i",
		"remote_sender", "s", "remote_account", "s", "remote_recipient", "s", "origin", "s", "origin_id", "s")},
	{"file_forwards", []string{"file_id"}, cols("file_id", "s", "domain", "s", "state", "s", "remote_id", "s", "error", "s")},
	{"file_remote_targets", []string{"file_id", "device"}, cols("file_id", "s", "device", "s", "slot_id", "s", "nonce2", "b", "acked", "i?")},
	{"file_targets", []string{"file_id", "device_id"}, cols("file_id", "s", "device_id", "i", "slot_id", "s", "nonce2", "b?", "acked", "i?")},
	{"file_slots", []string{"device_id", "slot_id"}, cols("device_id", "i", "contact", "s", "slot_id", "s", "sealed", "b", "proof_hash", "b", "state", "s",
		"taker_device", "i?", "nonce2", "b", "file_id", "s?", "created", "i", "expires", "i")},
	{"policies", []string{"kind", "name", "key"}, cols("kind", "s", "name", "s", "key", "s", "value", "s", "updated", "i")},
	{"groups", []string{"id"}, cols("id", "i", "name", "s", "created", "i")},
	{"group_members", []string{"group_id", "account_id"}, cols("group_id", "i", "account_id", "i")},
	{"provisioned_contacts", []string{"account_id", "contact"}, cols("account_id", "i", "contact", "s", "added", "i")},
	{"audit_log", []string{"id"}, cols("id", "i", "time", "i", "actor", "s", "action", "s", "target", "s", "detail", "s")},
	// Federation (federation.go): peers, the queue for them, forwards seen.
	{"fed_peers", []string{"domain"}, cols("domain", "s", "ca", "b", "ca_sha256", "s", "api", "s", "sip", "s", "presented", "s", "presented_at", "i",
		"added", "i", "delivered_at", "i", "failed_at", "i", "last_error", "s")},
	{"fed_outbound", []string{"id"}, cols("id", "i", "domain", "s", "sender", "s", "sender_dev", "s", "sender_cert", "b", "recipient", "s",
		"content_type", "s", "body", "b", "created", "i")},
	{"fed_seen", []string{"origin", "origin_id"}, cols("origin", "s", "origin_id", "i", "received", "i")},
	{"fed_leases", []string{"domain"}, cols("domain", "s", "holder", "s", "until", "i")},
	{"dir_entries", []string{"e164"}, cols("e164", "s", "hash", "b", "account_id", "i", "aor", "s", "keys", "b", "published", "i")},
	{"dir_claims", []string{"id"}, cols("id", "s", "e164", "s", "account_id", "i", "device_id", "i", "code_hash", "b", "attempts", "i", "created", "i", "expires", "i")},
	{"dir_replacements", []string{"id"}, cols("id", "s", "e164", "s", "account_id", "i", "device_id", "i", "aor", "s", "keys", "b", "requested", "i", "effective", "i")},
	{"dir_notices", []string{"id"}, cols("id", "i", "device_id", "i", "kind", "s", "e164", "s", "ref", "s", "code", "s", "from_device", "s", "effective", "i",
		"created", "i", "expires", "i")},
	{"dir_budget", []string{"device_id"}, cols("device_id", "i", "window_start", "i", "used", "i")},
	{"admins", []string{"name"}, cols("name", "s", "pass_hash", "s", "totp_secret", "b", "last_step", "i", "failures", "i", "locked_until", "i", "created", "i")},
	{"admin_sessions", []string{"id_hash"}, cols("id_hash", "b", "admin", "s", "csrf", "b", "created", "i", "seen", "i", "auth_at", "i")},
	{"key_handouts", []string{"target", "at", "requester"}, cols("requester", "i", "target", "i", "at", "i")},
}

// CopyTableNamed returns the table of that name.
func CopyTableNamed(name string) (CopyTable, bool) {
	for _, t := range CopyTables {
		if t.Name == name {
			return t, true
		}
	}
	return CopyTable{}, false
}

// Normalize converts a row as a database driver returned it to the
// neutral form of t's columns (SQLite, typed by value, may return a TEXT
// column's value as []byte and the other way round).
func (t CopyTable) Normalize(row []any) ([]any, error) {
	if len(row) != len(t.Columns) {
		return nil, fmt.Errorf("%s: %d values for %d columns", t.Name, len(row), len(t.Columns))
	}
	out := make([]any, len(row))
	for i, c := range t.Columns {
		v := row[i]
		if v == nil {
			if !c.Nullable {
				// SQLite lets NULL into a NOT NULL column no
				// migration made; a value of the column's kind
				// would hide that, so it is refused.
				return nil, fmt.Errorf("%s.%s: NULL in a column that does not take it", t.Name, c.Name)
			}
			continue
		}
		switch c.Kind {
		case Int:
			switch x := v.(type) {
			case int64:
				out[i] = x
			case int32:
				out[i] = int64(x)
			case int:
				out[i] = int64(x)
			default:
				return nil, fmt.Errorf("%s.%s: %T where an integer belongs", t.Name, c.Name, v)
			}
		case Text:
			switch x := v.(type) {
			case string:
				out[i] = x
			case []byte:
				out[i] = string(x)
			default:
				return nil, fmt.Errorf("%s.%s: %T where text belongs", t.Name, c.Name, v)
			}
		case Bytes:
			switch x := v.(type) {
			case []byte:
				out[i] = append([]byte{}, x...)
			case string:
				out[i] = []byte(x)
			default:
				return nil, fmt.Errorf("%s.%s: %T where bytes belong", t.Name, c.Name, v)
			}
		}
	}
	return out, nil
}

// Copy moves every row of from into to, which must be empty, in one
// transaction of to's; progress, when not nil, is called after each row
// with the table and the rows of it copied so far. It returns the rows
// copied per table.
func Copy(ctx context.Context, from, to Transfer, progress func(table string, n int64)) (map[string]int64, error) {
	counts := map[string]int64{}
	err := to.Load(ctx, func(put func(string, []any) error) error {
		return from.Dump(ctx, func(table string, row []any) error {
			if err := put(table, row); err != nil {
				return fmt.Errorf("%s row %d: %w", table, counts[table]+1, err)
			}
			counts[table]++
			if progress != nil {
				progress(table, counts[table])
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	for _, t := range CopyTables {
		counts[t.Name] += 0 // every table in the summary, also when empty
	}
	return counts, nil
}
