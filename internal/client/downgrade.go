package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"time"

	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/stp"
)

// EventDowngrade is the event of a message to or from a ratchet-capable
// device that used a weaker protocol (key slots: no forward secrecy), or
// was refused for it.
const EventDowngrade = "downgrade"

// SetEvents sets where events of commands other than Listen go (Send,
// Resend, MarkRead): new devices, changed keys, downgrades, failures.
func (p *Profile) SetEvents(f func(Event)) { p.events = f }

func (p *Profile) eventSink() func(Event) {
	if p.events != nil {
		return p.events
	}
	return func(Event) {}
}

// announce emits the new-device and changed-key events of devices just
// looked up, before anything is sealed for them.
func (m *messenger) announce(ds []peerDevice) {
	for _, d := range ds {
		switch d.pin {
		case pinNew:
			m.emit(noticeEvent(NoticeNewDevice, d.id, m.p.now()))
		case pinChanged:
			m.emit(noticeEvent(NoticeKeyChanged, d.id, m.p.now()))
		}
	}
}

// slotTarget is a device that gets a key slot; downgrade when it takes
// part in the ratchet but cannot be reached by it now.
type slotTarget struct {
	peerDevice
	downgrade bool
}

func devicesOf(ts []slotTarget) []peerDevice {
	out := make([]peerDevice, len(ts))
	for i, t := range ts {
		out[i] = t.peerDevice
	}
	return out
}

// split chooses the protocol per device: the ratchet where this device has
// a session or a verified bundle, key slots for the others that can open
// them. reachable says whether some device of the peer gets the message.
func (m *messenger) split(ctx context.Context, ds []peerDevice, peer ident.Account) (viaRatchet []peerDevice, viaSlots []slotTarget, reachable bool, err error) {
	ik, err := m.p.identity()
	if err != nil {
		return nil, nil, false, err
	}
	store := sessionStore{db: m.p.db.db}
	for _, d := range ds {
		if d.id == m.p.Device {
			continue
		}
		if ik != nil {
			sess, err := store.load(ctx, d.id.String())
			if err != nil {
				return nil, nil, false, err
			}
			if sess != nil || d.bundle != nil {
				viaRatchet = append(viaRatchet, d)
				reachable = reachable || d.id.Account == peer
				continue
			}
		}
		if len(recipients([]peerDevice{d}, m.p.Device)) == 0 {
			continue // no published message key yet
		}
		// An rsa-suite sender has no ratchet: key slots are all it has,
		// which is no downgrade by anyone.
		viaSlots = append(viaSlots, slotTarget{d, ik != nil && d.ratchetCapable()})
		reachable = reachable || d.id.Account == peer
	}
	return viaRatchet, viaSlots, reachable, nil
}

// refuseDowngrade applies the receiving side of the downgrade rules to a
// confidential message that did not come through the ratchet: refused
// when this device shares a ratchet session with the sender (only the
// sender can have chosen a weaker protocol, or someone else signed in its
// name with a stolen key), reported when the sender is ratchet-capable.
func (m *messenger) refuseDowngrade(ctx context.Context, sdev ident.Device, msg *stp.Message, spd *peerDevice, now time.Time) (code int, reason string, refused bool) {
	ik, err := m.p.identity()
	if err != nil || ik == nil {
		return 0, "", false // this device has no ratchet: key slots are expected
	}
	proto := protocolName(msg.Protocol)
	sess, err := sessionStore{db: m.p.db.db}.load(ctx, sdev.String())
	if err != nil {
		// The cluster keeps its copy and tries again.
		m.p.log.Error("read the ratchet session", "err", err)
		return 500, "Local storage failed", true
	}
	if sess != nil {
		m.p.log.Warn("message in a weaker protocol from a device with a ratchet session refused", "protocol", proto)
		m.emit(Event{Type: EventDowngrade, From: sdev.Account.String(), FromDevice: sdev.Name, Peer: sdev.Account.String(), Time: now, Protocol: proto,
			Error: "refused a message from " + sdev.String() + " sent with " + proto + ": you share a ratchet session with this device, so the weaker protocol is a downgrade"})
		return 400, "Weaker protocol refused", true
	}
	if spd != nil && spd.ratchetCapable() {
		m.emit(Event{Type: EventDowngrade, From: sdev.Account.String(), FromDevice: sdev.Name, Peer: sdev.Account.String(), Time: now, Protocol: proto,
			Error: sdev.String() + " takes part in the ratchet but sent with " + proto + " (no forward secrecy)"})
	}
	return 0, "", false
}

// A queue entry holds one envelope, or several packed: the magic, then
// each envelope as u32 length (big-endian) and bytes. An envelope is a
// protobuf message starting with field 1's tag (0x08), never the magic.
var packMagic = []byte("PXQ\x02")

func packEnvelopes(envs [][]byte) []byte {
	if len(envs) == 1 {
		return envs[0]
	}
	out := append([]byte{}, packMagic...)
	for _, e := range envs {
		out = binary.BigEndian.AppendUint32(out, uint32(len(e)))
		out = append(out, e...)
	}
	return out
}

func unpackEnvelopes(b []byte) [][]byte {
	rest, ok := bytes.CutPrefix(b, packMagic)
	if !ok {
		return [][]byte{b}
	}
	var out [][]byte
	for len(rest) >= 4 {
		n := binary.BigEndian.Uint32(rest)
		if uint64(n) > uint64(len(rest)-4) {
			break
		}
		out = append(out, rest[4:4+n])
		rest = rest[4+n:]
	}
	return out
}
