package client

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/phonex/phonex/internal/amp"
	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/keys"
	"github.com/phonex/phonex/internal/ratchet"
	"github.com/phonex/phonex/internal/stp"
)

// The ratchet STP is the default for text between devices of the ec suite:
// PQXDH with ML-KEM-768 and the Double Ratchet, one body encrypted once and
// its key sent through each device's session (internal/ratchet). The
// identity is the device's certified Ed25519 and X25519 keys.

const (
	prekeyBatch    = 20 // one-time keys published at a time
	prekeyRefill   = 8  // publish more when fewer remain
	kindSPK        = "spk"
	kindOPK        = "opk"
	kindPQ         = "pq"
	kindPQLast     = "pq-last"
	signedPrekeyID = 1
)

// identity is this device's ratchet identity, or nil for the rsa suite.
func (p *Profile) identity() (*ratchet.IdentityKeyPair, error) {
	sk, ok := p.Keys.Sign.(ed25519.PrivateKey)
	if !ok || p.Keys.Kex == nil {
		return nil, nil
	}
	return ratchet.NewIdentityKeyPair(sk, p.Keys.Kex)
}

// publishPrekeys makes and publishes the signed prekey and the ML-KEM
// last-resort prekey, replacing both every PrekeyRotation, batches of
// one-time prekeys when the cluster runs low, and the signed capability
// record naming the current signed prekeys. The private halves stay in the
// encrypted database.
func (p *Profile) publishPrekeys(ctx context.Context) error {
	ik, err := p.identity()
	if err != nil || ik == nil {
		return err
	}
	var up api.Prekeys
	db := p.db.db
	cur, since, err := p.currentSigned(ctx)
	if err != nil {
		return err
	}
	if cur == 0 || p.now().Sub(since) >= PrekeyRotation {
		if cur, err = p.rotateSigned(ctx, ik, cur); err != nil {
			return fmt.Errorf("rotate signed prekeys: %w", err)
		}
	}
	if err := p.retirePrekeys(ctx); err != nil {
		return fmt.Errorf("delete retired prekeys: %w", err)
	}
	var count api.PrekeyCount
	if err := p.c.call(ctx, "GET", api.PathKeys, nil, &count); err != nil {
		return err
	}
	published, err := kvInt(ctx, db, kvSPKPublished)
	if err != nil {
		return err
	}
	// Published again when the cluster lost them (a restore, or a cluster
	// that dropped them: senders then report the downgrade).
	if published != int64(cur) || count.Signed != int64(cur) || count.PQSigned != int64(cur) {
		v, _, err := kvGet(ctx, db, kvSPKUpload)
		if err != nil {
			return err
		}
		var u signedUpload
		if err := json.Unmarshal([]byte(v), &u); err != nil || u.Signed == nil || u.PQSigned == nil {
			return fmt.Errorf("%w: stored signed prekey upload", ErrTampered)
		}
		up.Signed, up.PQSigned = u.Signed, u.PQSigned
	}
	if count.OneTime < prekeyRefill || count.PQOneTime < prekeyRefill {
		next, err := p.allocPrekeyIDs(ctx, prekeyBatch)
		if err != nil {
			return err
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for i := uint32(0); i < prekeyBatch; i++ {
			id := next + i
			opk, err := ratchet.NewOneTimePrekey(rand.Reader, id)
			if err != nil {
				return err
			}
			pq, err := ratchet.NewPQPrekey(rand.Reader, ik, id, false)
			if err != nil {
				return err
			}
			pub := opk.Key.PublicKey().Bytes()
			sig, err := keys.Sign(p.Keys.Sign, oneTimeMessage(p.Device.String(), id, pub))
			if err != nil {
				return err
			}
			up.OneTime = append(up.OneTime, api.Prekey{ID: int64(id), Data: pub, Sig: sig})
			up.PQOneTime = append(up.PQOneTime, api.Prekey{ID: int64(id), Data: pq.Key.EncapsulationKey().Bytes(), Sig: pq.Signature})
			if _, err := tx.ExecContext(ctx, `INSERT INTO ratchet_prekeys(kind, id, private) VALUES(?,?,?),(?,?,?)`,
				kindOPK, id, opk.Key.Bytes(), kindPQ, id, pq.Key.Bytes()); err != nil {
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	rec, caps, state, err := p.capabilityRecord(ctx)
	if err != nil {
		return err
	}
	if rec != nil || up.Signed != nil {
		up.Record, up.Capabilities = rec, caps
	}
	if up.Signed == nil && up.OneTime == nil && up.Record == nil {
		return nil
	}
	if err := p.c.call(ctx, "PUT", api.PathKeys, up, nil); err != nil {
		return err
	}
	if up.Signed != nil {
		if err := kvPut(ctx, db, kvSPKPublished, strconv.FormatUint(uint64(cur), 10)); err != nil {
			return err
		}
	}
	if up.Record != nil {
		return kvPut(ctx, db, kvRecordState, state)
	}
	return nil
}

// allocPrekeyIDs reserves n consecutive prekey ids. Signed and one-time
// prekeys share the counter: the responder looks an ML-KEM prekey up by id
// among both its one-time and its last-resort keys.
func (p *Profile) allocPrekeyIDs(ctx context.Context, n uint32) (uint32, error) {
	next, err := kvInt(ctx, p.db.db, "prekey-next")
	if err != nil {
		return 0, err
	}
	if next < signedPrekeyID+1 {
		next = signedPrekeyID + 1
	}
	if next+int64(n) > 1<<32-1 {
		return 0, errors.New("prekey ids exhausted")
	}
	return uint32(next), kvPut(ctx, p.db.db, "prekey-next", strconv.FormatInt(next+int64(n), 10))
}

// rotateSigned makes a new signed prekey and ML-KEM last-resort prekey,
// and marks the previous ones retired (kept for PrekeyGrace).
func (p *Profile) rotateSigned(ctx context.Context, ik *ratchet.IdentityKeyPair, prev uint32) (uint32, error) {
	id := uint32(signedPrekeyID)
	if prev != 0 {
		var err error
		if id, err = p.allocPrekeyIDs(ctx, 1); err != nil {
			return 0, err
		}
	}
	spk, err := ratchet.NewSignedPrekey(rand.Reader, ik, id)
	if err != nil {
		return 0, err
	}
	last, err := ratchet.NewPQPrekey(rand.Reader, ik, id, true)
	if err != nil {
		return 0, err
	}
	b := ik.Public()
	u := signedUpload{
		Signed:   &api.Prekey{ID: int64(id), Data: append(append([]byte{}, b.Binding...), spk.Key.PublicKey().Bytes()...), Sig: spk.Signature},
		PQSigned: &api.Prekey{ID: int64(id), Data: last.Key.EncapsulationKey().Bytes(), Sig: last.Signature},
	}
	now := p.now()
	tx, err := p.db.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO ratchet_prekeys(kind, id, private) VALUES(?,?,?),(?,?,?)`,
		kindSPK, id, spk.Key.Bytes(), kindPQLast, id, last.Key.Bytes()); err != nil {
		return 0, err
	}
	ms := strconv.FormatInt(now.UnixMilli(), 10)
	for _, kv := range [][2]string{{kvSPKCurrent, strconv.FormatUint(uint64(id), 10)}, {kvSPKSince, ms}, {kvSPKUpload, marshalUpload(u)}} {
		if err := kvPut(ctx, tx, kv[0], kv[1]); err != nil {
			return 0, err
		}
	}
	if prev != 0 {
		if err := kvPut(ctx, tx, kvRetired+strconv.FormatUint(uint64(prev), 10), ms); err != nil {
			return 0, err
		}
	}
	return id, tx.Commit()
}

// bundleOf turns a key-service bundle into a ratchet bundle whose identity
// is the device's certified keys. Nil when the device offers no ratchet.
// The signed prekeys must be the ones the device's signed record names (a
// cluster cannot hand out keys the device has rotated out); without a
// record, the prekeys' own signatures by the certified identity key are
// what make the bundle usable.
func bundleOf(pd peerDevice, b api.Bundle) (*ratchet.PrekeyBundle, error) {
	if b.Signed == nil || b.PQSigned == nil {
		return nil, nil
	}
	if r := pd.record; r != nil {
		if !r.Ratchet() {
			return nil, nil
		}
		if uint32(b.Signed.ID) != r.SignedPrekey || uint32(b.PQSigned.ID) != r.PQPrekey || b.Signed.ID < 0 || b.PQSigned.ID < 0 {
			return nil, fmt.Errorf("bundle of %s: signed prekeys %d/%d, the device's record names %d/%d",
				pd.id, b.Signed.ID, b.PQSigned.ID, r.SignedPrekey, r.PQPrekey)
		}
	}
	signing, ok := pd.cert.PublicKey.(ed25519.PublicKey)
	if !ok || pd.kex == nil {
		return nil, nil
	}
	if len(b.Signed.Data) != 64+32 {
		return nil, fmt.Errorf("signed prekey of %s: bad length", pd.id)
	}
	spk, err := ecdh.X25519().NewPublicKey(b.Signed.Data[64:])
	if err != nil {
		return nil, err
	}
	rb := &ratchet.PrekeyBundle{
		Identity:       ratchet.IdentityKey{Signing: signing, DH: pd.kex, Binding: b.Signed.Data[:64]},
		SignedPrekeyID: uint32(b.Signed.ID), SignedPrekey: spk, SignedPrekeySig: b.Signed.Sig,
	}
	pq := b.PQSigned
	rb.PQPrekeyLastResort = true
	if b.PQOneTime != nil {
		pq, rb.PQPrekeyLastResort = b.PQOneTime, false
	}
	if rb.PQPrekey, err = mlkem.NewEncapsulationKey768(pq.Data); err != nil {
		return nil, err
	}
	rb.PQPrekeyID, rb.PQPrekeySig = uint32(pq.ID), pq.Sig
	// PQXDH leaves one-time X25519 prekeys unsigned; here they are signed
	// too, so every key of a bundle is the device's. One that does not
	// verify (or an unsigned one from before) is left out: the session
	// then starts without it, as when the device has none left.
	if b.OneTime != nil && keys.Verify(pd.cert.PublicKey, oneTimeMessage(pd.id.String(), uint32(b.OneTime.ID), b.OneTime.Data), b.OneTime.Sig) == nil && b.OneTime.ID >= 0 {
		rb.OneTimePrekeyID = uint32(b.OneTime.ID)
		if rb.OneTimePrekey, err = ecdh.X25519().NewPublicKey(b.OneTime.Data); err != nil {
			return nil, err
		}
	}
	if err := rb.Verify(); err != nil {
		return nil, fmt.Errorf("bundle of %s: %w", pd.id, err)
	}
	return rb, nil
}

// oneTimeMessage is what the device signs for a one-time X25519 prekey: the
// device and the key id are bound to the key.
func oneTimeMessage(dev string, id uint32, pub []byte) []byte {
	b := append([]byte("phonex/v1/one-time-prekey\x00"+dev+"\x00"), byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
	return append(b, pub...)
}

// certifiedIdentity is the ratchet identity a device's certificates name.
func certifiedIdentity(cert, kexCert *x509.Certificate) (ed25519.PublicKey, *ecdh.PublicKey, error) {
	signing, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok || kexCert == nil {
		return nil, nil, errors.New("not an ec-suite device")
	}
	kex, err := ca.KexPublic(kexCert)
	return signing, kex, err
}

// sessionStore reads and writes Double Ratchet sessions.
type sessionStore struct{ db *sql.DB }

func (s sessionStore) load(ctx context.Context, dev string) (*ratchet.Session, error) {
	var b []byte
	err := s.db.QueryRowContext(ctx, `SELECT state FROM ratchet_sessions WHERE device=?`, dev).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, temporary(err)
	}
	sess := new(ratchet.Session)
	if err := sess.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("%w: ratchet session of %s: %v", ErrTampered, dev, err)
	}
	return sess, nil
}

func saveSession(ctx context.Context, tx *sql.Tx, dev string, sess *ratchet.Session, now int64) error {
	b, err := sess.MarshalBinary()
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO ratchet_sessions(device, state, updated) VALUES(?,?,?) ON CONFLICT(device) DO UPDATE SET state=excluded.state, updated=excluded.updated`, dev, b, now)
	return err
}

// prekeyStore is the responder's view of its prekeys for one incoming
// message: lookups read the database; UsePrekeys checks the one-time keys
// still exist and defers their deletion to the transaction that stores the
// message, so a crash cannot lose a message whose keys were spent.
type prekeyStore struct {
	ctx     context.Context
	db      *sql.DB
	deletes [][2]any
}

func (s *prekeyStore) get(kind string, id uint32) ([]byte, error) {
	var b []byte
	err := s.db.QueryRowContext(s.ctx, `SELECT private FROM ratchet_prekeys WHERE kind=? AND id=?`, kind, id).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ratchet.ErrPrekeyNotFound
	}
	return b, err
}

func (s *prekeyStore) SignedPrekey(id uint32) (*ecdh.PrivateKey, error) {
	b, err := s.get(kindSPK, id)
	if err != nil {
		return nil, err
	}
	return ecdh.X25519().NewPrivateKey(b)
}

func (s *prekeyStore) OneTimePrekey(id uint32) (*ecdh.PrivateKey, error) {
	b, err := s.get(kindOPK, id)
	if err != nil {
		return nil, err
	}
	return ecdh.X25519().NewPrivateKey(b)
}

func (s *prekeyStore) PQPrekey(id uint32) (*mlkem.DecapsulationKey768, error) {
	b, err := s.get(kindPQ, id)
	if errors.Is(err, ratchet.ErrPrekeyNotFound) {
		b, err = s.get(kindPQLast, id)
	}
	if err != nil {
		return nil, err
	}
	return mlkem.NewDecapsulationKey768(b)
}

func (s *prekeyStore) UsePrekeys(oneTimeID uint32, hasOneTime bool, pqID uint32) error {
	if hasOneTime {
		if _, err := s.get(kindOPK, oneTimeID); err != nil {
			return err
		}
		s.deletes = append(s.deletes, [2]any{kindOPK, oneTimeID})
	}
	if _, err := s.get(kindPQ, pqID); err == nil {
		s.deletes = append(s.deletes, [2]any{kindPQ, pqID})
	} else if _, err := s.get(kindPQLast, pqID); err != nil {
		return err
	}
	return nil
}

func (s *prekeyStore) apply(ctx context.Context, tx *sql.Tx) error {
	for _, d := range s.deletes {
		res, err := tx.ExecContext(ctx, `DELETE FROM ratchet_prekeys WHERE kind=? AND id=?`, d[0], d[1])
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ratchet.ErrPrekeyNotFound
		}
	}
	return nil
}

// trustStore pins peers' ratchet identities in the encrypted database.
type trustStore struct{ db *sql.DB }

func (t trustStore) LoadIdentity(dev ratchet.DeviceID) (ratchet.IdentityKey, bool, error) {
	var b []byte
	err := t.db.QueryRow(`SELECT key FROM ratchet_trust WHERE device=?`, string(dev)).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return ratchet.IdentityKey{}, false, nil
	}
	if err != nil || len(b) != 130 {
		return ratchet.IdentityKey{}, false, fmt.Errorf("pinned identity of %s: %v", dev, err)
	}
	dh, err := ecdh.X25519().NewPublicKey(b[1:33])
	if err != nil {
		return ratchet.IdentityKey{}, false, err
	}
	return ratchet.IdentityKey{DH: dh, Signing: ed25519.PublicKey(b[34:66]), Binding: b[66:130]}, true, nil
}

func (t trustStore) StoreIdentity(dev ratchet.DeviceID, key ratchet.IdentityKey) error {
	_, err := t.db.Exec(`INSERT INTO ratchet_trust(device, key) VALUES(?,?) ON CONFLICT(device) DO UPDATE SET key=excluded.key`, string(dev), key.Encode())
	return err
}

// sealRatchet encrypts a text with the ratchet for devices that each have a
// session or a verified bundle; save stores every session it advanced.
func (m *messenger) sealRatchet(ctx context.Context, q queued, peer ident.Account, devs []peerDevice) (env []byte, save func(*sql.Tx) error, err error) {
	ik, err := m.p.identity()
	if err != nil || ik == nil || len(devs) == 0 {
		return nil, nil, err
	}
	store := sessionStore{db: m.p.db.db}
	sessions := map[ratchet.DeviceID]*ratchet.Session{}
	for _, d := range devs {
		if d.id == m.p.Device {
			continue
		}
		sess, err := store.load(ctx, d.id.String())
		if err != nil {
			return nil, nil, err
		}
		if sess == nil {
			if d.bundle == nil {
				return nil, nil, fmt.Errorf("no ratchet session or bundle for %s", d.id)
			}
			if err := ratchet.CheckIdentity(trustStore{m.p.db.db}, ratchet.DeviceID(d.id.String()), d.bundle.Identity); err != nil {
				return nil, nil, err
			}
			if sess, _, err = ratchet.InitiateSession(rand.Reader, ik, d.bundle); err != nil {
				return nil, nil, fmt.Errorf("start session with %s: %w", d.id, err)
			}
		}
		sessions[ratchet.DeviceID(d.id.String())] = sess
	}
	if len(sessions) == 0 {
		return nil, nil, nil
	}
	rm := &stp.RatchetMessage{AmpType: amp.TextV2.Type, AmpVersion: amp.TextV2.Version, Sent: m.p.now(), Nonce: uint32(q.Nonce),
		Sender: m.p.Device.String(), Destination: peer.String()}
	ad, err := rm.AD()
	if err != nil {
		return nil, nil, err
	}
	body, headers, err := ratchet.EncryptFanout(rand.Reader, ratchet.DeviceID(m.p.Device.String()), q.Payload, sessions, ad)
	if err != nil {
		return nil, nil, err
	}
	rm.Body = body
	for dev, h := range headers {
		rm.Slots = append(rm.Slots, stp.RatchetSlot{Recipient: string(dev), Header: h})
	}
	slices.SortFunc(rm.Slots, func(a, b stp.RatchetSlot) int { return cmpString(a.Recipient, b.Recipient) })
	now := m.p.now().UnixMilli()
	save = func(tx *sql.Tx) error {
		for dev, sess := range sessions {
			if err := saveSession(ctx, tx, string(dev), sess, now); err != nil {
				return err
			}
		}
		return nil
	}
	env, err = stp.MarshalRatchet(rm)
	return env, save, err
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// openRatchet opens a ratchet message: through the existing session with
// the sender device, or by accepting a new PQXDH session. The session, the
// spent prekeys and the replay record are committed with the message.
func (m *messenger) openRatchet(ctx context.Context, payload []byte) (*stp.Message, func(*sql.Tx) error, error) {
	rm, err := stp.ParseRatchet(payload)
	if err != nil {
		return nil, nil, err
	}
	self := m.p.Device.String()
	header, err := rm.Slot(self)
	if err != nil {
		return nil, nil, err
	}
	sdev, err := ident.ParseDevice(rm.Sender)
	if err != nil {
		return nil, nil, fmt.Errorf("sender %q: %w", rm.Sender, stp.ErrMalformed)
	}
	pd, err := m.senderDevice(ctx, sdev)
	if err != nil {
		return nil, nil, err
	}
	signing, kex, err := certifiedIdentity(pd.cert, pd.kexCert)
	if err != nil {
		return nil, nil, err
	}
	ad, err := rm.AD()
	if err != nil {
		return nil, nil, err
	}
	msg, err := ratchet.ParseMessage(header)
	if err != nil {
		return nil, nil, fmt.Errorf("%v: %w", err, stp.ErrMalformed)
	}
	store := sessionStore{db: m.p.db.db}
	sess, err := store.load(ctx, sdev.String())
	if err != nil {
		return nil, nil, err
	}
	pks := &prekeyStore{ctx: ctx, db: m.p.db.db}
	var plain []byte
	if msg.Initial != nil && (sess == nil || !sess.MatchesInitial(msg.Initial)) {
		// A new session: the initial message must name the sender's
		// certified keys and match the pin.
		id := msg.Initial.Identity
		if !id.Signing.Equal(signing) || !id.DH.Equal(kex) {
			return nil, nil, fmt.Errorf("ratchet identity of %s is not its certified key: %w", sdev, stp.ErrBadSignature)
		}
		if err := ratchet.CheckIdentity(trustStore{m.p.db.db}, ratchet.DeviceID(sdev.String()), id); err != nil {
			m.emit(Event{Type: "key_changed", Peer: sdev.Account.String(), FromDevice: sdev.Name, Time: m.p.now(), Error: err.Error()})
			return nil, nil, err
		}
		ik, err := m.p.identity()
		if err != nil || ik == nil {
			return nil, nil, errors.New("this device has no ratchet identity")
		}
		sess, plain, err = ratchet.AcceptFanout(rand.Reader, ik, pks, ratchet.DeviceID(sdev.String()), ratchet.DeviceID(self), rm.Body, header, ad)
		if err != nil {
			return nil, nil, err
		}
	} else {
		if sess == nil {
			return nil, nil, fmt.Errorf("no ratchet session with %s", sdev)
		}
		if plain, err = ratchet.DecryptFanout(sess, ratchet.DeviceID(sdev.String()), ratchet.DeviceID(self), rm.Body, header, ad); err != nil {
			return nil, nil, err
		}
	}
	now := m.p.now()
	if age := now.Sub(rm.Sent); age > stp.DefaultMaxAge || -age > stp.DefaultMaxSkew {
		return nil, nil, fmt.Errorf("sent at %s: %w", rm.Sent, stp.ErrTimestamp)
	}
	out := &stp.Message{Protocol: stp.RatchetV1, AmpType: rm.AmpType, AmpVersion: rm.AmpVersion, Sent: rm.Sent, Nonce: rm.Nonce,
		Sender: rm.Sender, Destination: rm.Destination, Payload: plain}
	commit := func(tx *sql.Tx) error {
		if err := pks.apply(ctx, tx); err != nil {
			return err
		}
		return saveSession(ctx, tx, sdev.String(), sess, now.UnixMilli())
	}
	return out, commit, nil
}
