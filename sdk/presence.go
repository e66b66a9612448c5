package sdk

import (
	"context"
	"fmt"
	"time"

	"github.com/phonex/phonex/internal/client"
)

// Presence states a user chooses with SetPresence. Invisible shows the
// device offline to everyone while it keeps receiving messages and calls.
// Watchers also see StateOnCall, set by the cluster, and StateOffline.
const (
	PresenceOnline    = "online"
	PresenceAway      = "away"
	PresenceBusy      = "busy"
	PresenceDND       = "dnd"
	PresenceInvisible = "invisible"
	PresenceOnCall    = "oncall"
	PresenceOffline   = "offline"
)

// EventPresence: a contact's presence changed; see Event.Presence. Listen
// reports each contact's presence once when it starts watching, then every
// change, in order.
const EventPresence EventType = client.EventPresence

// PresenceInfo is what a contact shows: the state and note of its most
// available device (oncall while any device is in a call), since when, and
// which of its devices are online.
type PresenceInfo struct {
	State   string    `json:"state"`
	Note    string    `json:"note,omitempty"`
	Since   time.Time `json:"since,omitzero"`
	Devices []string  `json:"devices"`
}

// DevicePresence is one online device of this account.
type DevicePresence struct {
	Name  string    `json:"name"`
	State string    `json:"state"`
	Note  string    `json:"note,omitempty"`
	Since time.Time `json:"since,omitzero"`
	Caps  []string  `json:"caps,omitempty"` // capability strings, "3.1.x" for messaging
}

// OwnPresence is the state chosen on this device and the account's online
// devices (invisible ones included) as the cluster shows them.
type OwnPresence struct {
	State   string           `json:"state"`
	Note    string           `json:"note,omitempty"`
	Devices []DevicePresence `json:"devices"`
}

// SetPresence chooses what this device shows to the account's mutual
// contacts: PresenceOnline, PresenceAway, PresenceBusy, PresenceDND or
// PresenceInvisible, with an optional note. A running Listen publishes it
// within a second.
func (d *Device) SetPresence(ctx context.Context, state, note string) error {
	if err := d.p.SetPresence(ctx, state, note); err != nil {
		return fmt.Errorf("set presence: %w", err)
	}
	return nil
}

// Presence returns this device's chosen state and the account's devices
// as the cluster shows them now.
func (d *Device) Presence(ctx context.Context) (OwnPresence, error) {
	o, err := d.p.Presence(ctx)
	if err != nil {
		return OwnPresence{}, fmt.Errorf("presence: %w", err)
	}
	out := OwnPresence{State: o.State, Note: o.Note, Devices: make([]DevicePresence, len(o.Devices))}
	for i, x := range o.Devices {
		out.Devices[i] = DevicePresence(x)
	}
	return out, nil
}

// PresenceOf returns the presence of the given contacts (user@domain) now.
// A contact that is not mutual shows offline: the cluster tells nothing
// else.
func (d *Device) PresenceOf(ctx context.Context, users ...string) (map[string]PresenceInfo, error) {
	m, err := d.p.PresenceOf(ctx, users)
	if err != nil {
		return nil, fmt.Errorf("presence: %w", err)
	}
	out := make(map[string]PresenceInfo, len(m))
	for u, x := range m {
		out[u] = PresenceInfo(x)
	}
	return out, nil
}

func presenceOf(p *client.PresenceInfo) *PresenceInfo {
	if p == nil {
		return nil
	}
	x := PresenceInfo(*p)
	return &x
}
