package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/phonex/phonex/internal/ident"
)

// A contact's devices are pinned on first use: the devices seen when the
// account is first looked at are trusted as they are. Every device that
// appears later, and every key that changes, leaves a notice that stays
// (in 'phonex contacts', and as an event each time 'listen' starts) until
// the user confirms the device with TrustDevice. The event is emitted
// before anything is sealed for the device.

// pinStatus is what pinning a device's keys found.
type pinStatus int

const (
	pinSame     pinStatus = iota // pinned before with these keys
	pinFirstUse                  // the account's first sight: trusted on first use
	pinNew                       // a device added to an account already known
	pinChanged                   // the keys differ from the pinned ones
)

// Notice kinds, which are also the event types.
const (
	NoticeNewDevice  = "new_device"
	NoticeKeyChanged = "key_changed"
)

const (
	kvNotice  = "notice/"          // notice/KIND/user@domain/device → unix ms
	kvOwnSeen = "own-devices-seen" // this account's devices were looked at once
)

// accountPinned reports whether any device of the account is pinned.
func (l *localDB) accountPinned(ctx context.Context, acct string) (bool, error) {
	var n int
	err := l.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pins WHERE substr(device, 1, ?) = ?`, len(acct)+1, acct+"/").Scan(&n)
	return n > 0, err
}

// pinDevice pins a device's key fingerprints; known says whether the
// account had pinned devices before this look (its first devices are
// trusted on first use). New devices and changed keys leave a notice.
func (p *Profile) pinDevice(ctx context.Context, d ident.Device, certSHA, kexSHA string, known bool) (pinStatus, error) {
	first, changed, err := p.db.pin(ctx, d.String(), certSHA, kexSHA, p.now())
	if err != nil {
		return pinSame, err
	}
	status := pinSame
	switch {
	case changed:
		status = pinChanged
	case first && known:
		status = pinNew
	case first:
		return pinFirstUse, nil
	}
	if status != pinSame {
		kind := NoticeNewDevice
		if status == pinChanged {
			kind = NoticeKeyChanged
		}
		if err := kvPut(ctx, p.db.db, kvNotice+kind+"/"+d.String(), strconv.FormatInt(p.now().UnixMilli(), 10)); err != nil {
			return status, err
		}
	}
	return status, nil
}

// noticeEvent is the event of a notice about device d.
func noticeEvent(kind string, d ident.Device, at time.Time) Event {
	msg := "new device " + d.String() + ": it will receive your messages to " + d.Account.String() + "; verify it with the contact"
	if kind == NoticeKeyChanged {
		msg = "the key of " + d.String() + " changed since first seen: verify it with the contact"
	}
	return Event{Type: kind, Peer: d.Account.String(), FromDevice: d.Name, Time: at, Error: msg}
}

// Notices returns the outstanding new-device and changed-key events,
// oldest first.
func (p *Profile) Notices(ctx context.Context) ([]Event, error) {
	rows, err := p.db.db.QueryContext(ctx, `SELECT k, v FROM kv WHERE k LIKE 'notice/%' ORDER BY CAST(v AS INTEGER), k`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		kind, dev, ok := strings.Cut(strings.TrimPrefix(k, kvNotice), "/")
		d, err := ident.ParseDevice(dev)
		ms, err2 := strconv.ParseInt(string(v), 10, 64)
		if !ok || err != nil || err2 != nil {
			continue
		}
		out = append(out, noticeEvent(kind, d, time.UnixMilli(ms).UTC()))
	}
	return out, rows.Err()
}

func (p *Profile) hasNotice(ctx context.Context, kind, dev string) bool {
	_, ok, _ := kvGet(ctx, p.db.db, kvNotice+kind+"/"+dev)
	return ok
}

// TrustDevice confirms a contact's (or this account's) device after its
// new-device or changed-key notice was checked with the contact, and
// clears the notices.
func (p *Profile) TrustDevice(ctx context.Context, device string) error {
	d, err := ident.ParseDevice(device)
	if err != nil {
		return err
	}
	res, err := p.db.db.ExecContext(ctx, `DELETE FROM kv WHERE k IN (?, ?)`, kvNotice+NoticeNewDevice+"/"+d.String(), kvNotice+NoticeKeyChanged+"/"+d.String())
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("trust %s: %w", d, errNoNotice)
	}
	return nil
}

var errNoNotice = errors.New("no new-device or changed-key notice for this device")
