package sqlite

import (
	"context"
	"fmt"

	"github.com/phonex/phonex/internal/store"
)

func (s *DB) SetPhoneLogin(ctx context.Context, deviceID int64, username string, ha1 []byte) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO phone_logins(device_id, username, ha1) VALUES(?,?,?)`, deviceID, username, ha1)
	if isUnique(err) {
		return fmt.Errorf("phone login of device %d: %w", deviceID, store.ErrExists)
	}
	return err
}

// PhoneLogins returns the phones a digest username may name, lowest
// device id first, so the first is always the same one.
func (s *DB) PhoneLogins(ctx context.Context, username string) ([]store.PhoneLogin, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT device_id, ha1 FROM phone_logins WHERE username=?
		UNION ALL SELECT device_id, ha1 FROM sip_credentials WHERE username=? ORDER BY device_id`, username, username)
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
		d, err := scanDevice(s.db.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices d JOIN accounts a ON a.id=d.account_id WHERE d.id=?`, r.id))
		if err != nil {
			return nil, fmt.Errorf("phone device %d: %w", r.id, err)
		}
		out = append(out, store.PhoneLogin{Device: d, HA1: r.ha1})
	}
	return out, nil
}
