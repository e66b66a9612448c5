package client

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/filecrypt"
	"github.com/phonex/phonex/internal/ident"
)

// End-to-end encrypted files on the device (docs/files.md "Using it"): the
// half-key slots this device offers its contacts, sending a file through
// the recipient's slots, and opening what arrives. The node's calls are in
// files.go; the cryptography is internal/filecrypt.

// Errors callers branch on.
var (
	// ErrNoFileSlot: a recipient device has no slot left for this account.
	ErrNoFileSlot = errors.New("no file slot left")
	// ErrFileExists: GetFile does not overwrite.
	ErrFileExists = errors.New("destination exists")
	// ErrFileExpired: the file was not fetched before its expiry and the
	// node deleted it.
	ErrFileExpired = errors.New("file expired")
)

// spoolDir holds ciphertext on its way up or down, so a killed transfer
// resumes from the bytes the node acknowledged (uploads) or the bytes
// already here (downloads).
const spoolDir = "spool"

// slotSecretGrace is how long a slot's private half is kept after the
// slot expired: a file made just before may wait that long on the node
// (its file_expiry, 14 days by default; kept longer to be safe).
const slotSecretGrace = 60 * 24 * time.Hour

// FileProgress reports a phase (encrypt, upload, download, decrypt) of a
// transfer.
type FileProgress func(phase string, done, total int64)

// RefillFileSlots tops up, for every contact, the slots the node holds
// for this device to max, and returns how many it made. The private halves
// are stored before the public ones go up, so a slot the node hands out
// always has its secret here.
func (p *Profile) RefillFileSlots(ctx context.Context) (int, error) {
	counts, err := p.FileSlotCounts(ctx)
	if err != nil {
		return 0, fmt.Errorf("file slot counts: %w", err)
	}
	// A slot's private half outlives the slot by the longest a file made
	// with it can wait on the node; after that nothing can use it.
	cutoff := p.now().Add(-filecrypt.DefaultSlotTTL - slotSecretGrace).Unix()
	if _, err := p.db.db.ExecContext(ctx, `DELETE FROM file_slots WHERE created < ?`, cutoff); err != nil {
		return 0, err
	}
	old := p.now().Add(-slotSecretGrace).Unix()
	if _, err := p.db.db.ExecContext(ctx, `DELETE FROM file_delivered WHERE at < ?`, old); err != nil {
		return 0, err
	}
	if _, err := p.db.db.ExecContext(ctx, `DELETE FROM file_sends WHERE state='sent' AND created < ?`, old); err != nil {
		return 0, err
	}
	made := 0
	var errs []error
	for _, c := range counts {
		need := c.Max - c.Ready - c.Taken
		if need <= 0 {
			continue
		}
		n, err := p.makeFileSlots(ctx, c.Contact, need)
		made += n
		if err != nil {
			errs = append(errs, fmt.Errorf("file slots for %s: %w", c.Contact, err))
		}
	}
	return made, errors.Join(errs...)
}

func (p *Profile) makeFileSlots(ctx context.Context, contact string, n int) (int, error) {
	acct, err := ident.ParseAccount(contact)
	if err != nil {
		return 0, err
	}
	ds, err := p.bundles(ctx, acct)
	if err != nil {
		return 0, err
	}
	var to []filecrypt.SealTo
	for _, d := range ds {
		// A device whose keys changed since they were pinned gets no slot
		// until the user trusts it again.
		if d.kem == nil || d.pin == pinChanged {
			continue
		}
		to = append(to, filecrypt.SealTo{Device: d.id.String(), Cert: d.cert, KEM: d.kem})
	}
	if len(to) == 0 {
		return 0, nil
	}
	offers, secrets, err := filecrypt.NewSlots(filecrypt.SlotMaker{Device: p.Device.String(), Cert: p.Cert, Signer: p.Keys.Sign},
		contact, to, p.now(), filecrypt.DefaultSlotTTL, n)
	if err != nil {
		return 0, err
	}
	ups := make([]api.FileSlot, len(offers))
	tx, err := p.db.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	for i, o := range offers {
		b, err := secrets[i].MarshalBinary()
		if err != nil {
			return 0, err
		}
		id := hex.EncodeToString(o.ID[:])
		if _, err := tx.ExecContext(ctx, `INSERT INTO file_slots(id, contact, secret, created) VALUES(?, ?, ?, ?)`, id, contact, b, p.now().Unix()); err != nil {
			return 0, err
		}
		ups[i] = api.FileSlot{ID: id, Sealed: o.Sealed, ProofHash: o.ProofHash[:], Nonce2: o.Nonce2}
		secrets[i].Destroy()
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	if _, err := p.PutFileSlots(ctx, contact, ups); err != nil {
		// Not offered: the private halves have no use.
		for _, u := range ups {
			p.db.db.ExecContext(ctx, `DELETE FROM file_slots WHERE id=?`, u.ID)
		}
		return 0, err
	}
	return len(ups), nil
}

// The node's header blob of a file: the signed filecrypt header and the
// encrypted metadata block, each with a 32-bit length.
func frameBlob(header, meta []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(header)))
	b = append(b, header...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(meta)))
	return append(b, meta...)
}

var errBlob = fmt.Errorf("file header blob: %w", filecrypt.ErrMalformed)

func splitBlob(b []byte) (header, meta []byte, err error) {
	part := func() []byte {
		if len(b) < 4 || uint64(len(b)-4) < uint64(binary.BigEndian.Uint32(b)) {
			err = errBlob
			return nil
		}
		n := binary.BigEndian.Uint32(b)
		v := b[4 : 4+n]
		b = b[4+n:]
		return v
	}
	header = part()
	if err == nil {
		meta = part()
	}
	if err == nil && len(b) != 0 {
		err = errBlob
	}
	return header, meta, err
}

// SentFile is the outcome of SendFile.
type SentFile struct {
	ID        string   `json:"id"`
	Recipient string   `json:"recipient"`
	Name      string   `json:"name"`
	Size      int64    `json:"size"`
	Devices   []string `json:"devices"`           // recipient devices with a slot
	Missing   []string `json:"missing,omitempty"` // recipient devices without one: they do not get it
	Resumed   bool     `json:"resumed,omitempty"`
	// Waiting names the recipient's cluster when this node could not reach
	// it: the file is on this node, which forwards it once it can.
	Waiting string `json:"waiting,omitempty"`
}

type sendState struct {
	fileID, name, spool, state string
	size, mtime, encSize       int64
	blob, slots                []byte
}

// SendFile encrypts the file at path for every device of the account to
// that has a slot left and for this account's other devices, and uploads
// it. Run again for the same path and recipient after a broken connection
// or a killed process, it resumes the same transfer from the node's offset.
func (p *Profile) SendFile(ctx context.Context, to, path string, progress FileProgress) (SentFile, error) {
	return p.sendFile(ctx, to, path, 0, progress)
}

// sendFile is SendFile; a voice message gives its duration for the
// metadata.
func (p *Profile) sendFile(ctx context.Context, to, path string, voice time.Duration, progress FileProgress) (SentFile, error) {
	if progress == nil {
		progress = func(string, int64, int64) {}
	}
	acct, err := ident.ParseAccount(to)
	if err != nil {
		return SentFile{}, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return SentFile{}, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return SentFile{}, err
	}
	if !st.Mode().IsRegular() {
		return SentFile{}, fmt.Errorf("%s is not a regular file", path)
	}
	out := SentFile{Recipient: acct.String(), Name: filepath.Base(abs), Size: st.Size()}
	s, err := p.loadSend(ctx, abs, acct.String())
	if err != nil {
		return out, err
	}
	if s != nil && (s.size != st.Size() || s.mtime != st.ModTime().UnixNano()) {
		// The file changed: what was sent of it is of no use.
		if s.fileID != "" {
			p.CancelFile(ctx, s.fileID)
		}
		os.Remove(s.spool)
		p.db.db.ExecContext(ctx, `DELETE FROM file_sends WHERE path=? AND recipient=? AND state='uploading'`, abs, acct.String())
		s = nil
	}
	if s == nil {
		if s, err = p.prepareSend(ctx, acct, abs, st, voice, &out, progress); err != nil {
			return out, err
		}
	} else {
		out.Resumed = true
		var uses []api.FileSlotUse
		json.Unmarshal(s.slots, &uses)
		for _, u := range uses {
			out.Devices = append(out.Devices, u.Device)
		}
	}
	if s.fileID == "" {
		var uses []api.FileSlotUse
		if err := json.Unmarshal(s.slots, &uses); err != nil {
			return out, err
		}
		fc, err := p.CreateFile(ctx, api.FileCreate{Recipient: acct.String(), Size: s.encSize, Header: s.blob, Slots: uses})
		if err != nil {
			var ae *api.Error
			if errors.As(err, &ae) && strings.HasPrefix(ae.Code, "slot_") {
				// The proven slots went stale: start over with fresh ones.
				os.Remove(s.spool)
				p.db.db.ExecContext(ctx, `DELETE FROM file_sends WHERE path=? AND recipient=? AND state='uploading'`, abs, acct.String())
			}
			return out, fmt.Errorf("create upload: %w", err)
		}
		s.fileID = fc.ID
		out.Waiting = fc.Waiting
		if _, err := p.db.db.ExecContext(ctx, `UPDATE file_sends SET file_id=? WHERE path=? AND recipient=? AND state='uploading'`, s.fileID, abs, acct.String()); err != nil {
			return out, err
		}
	}
	out.ID = s.fileID
	f, err := os.Open(s.spool)
	if err != nil {
		return out, fmt.Errorf("encrypted copy of %s: %w", path, err)
	}
	defer f.Close()
	err = p.UploadFile(ctx, s.fileID, f, s.encSize, func(done, total int64) { progress("upload", done, total) })
	if err != nil {
		return out, err
	}
	f.Close()
	os.Remove(s.spool)
	_, err = p.db.db.ExecContext(ctx, `UPDATE file_sends SET state='sent', blob=x'', slots=x'' WHERE path=? AND recipient=? AND state='uploading'`, abs, acct.String())
	return out, err
}

func (p *Profile) loadSend(ctx context.Context, abs, to string) (*sendState, error) {
	s := &sendState{}
	err := p.db.db.QueryRowContext(ctx, `SELECT file_id, name, spool, state, size, mtime, enc_size, blob, slots FROM file_sends WHERE path=? AND recipient=? AND state='uploading'`, abs, to).
		Scan(&s.fileID, &s.name, &s.spool, &s.state, &s.size, &s.mtime, &s.encSize, &s.blob, &s.slots)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return s, err
}

// prepareSend takes and proves a slot per recipient device, encrypts the
// file into the spool and records the transfer.
func (p *Profile) prepareSend(ctx context.Context, acct ident.Account, abs string, st os.FileInfo, voice time.Duration, out *SentFile, progress FileProgress) (*sendState, error) {
	theirs, err := p.bundles(ctx, acct)
	if err != nil {
		return nil, fmt.Errorf("devices of %s: %w", acct, err)
	}
	taken, err := p.TakeFileSlots(ctx, acct.String())
	if err != nil {
		if errors.Is(err, &api.Error{Code: api.CodeNoSlot}) {
			var names []string
			for _, d := range theirs {
				names = append(names, d.id.User+"/"+d.id.Name)
			}
			return nil, fmt.Errorf("%w for %s: it must come online to refill", ErrNoFileSlot, strings.Join(names, ", "))
		}
		return nil, fmt.Errorf("take file slots of %s: %w", acct, err)
	}
	for _, m := range taken.Missing {
		out.Missing = append(out.Missing, m)
	}
	kem, _, err := p.kemKey(ctx)
	if err != nil {
		return nil, err
	}
	me := filecrypt.SlotOpener{Device: p.Device.String(), Cert: p.Cert, KEM: kem}
	var slotUses []filecrypt.SlotUse
	var uses []api.FileSlotUse
	for _, t := range taken.Slots {
		var pd *peerDevice
		for i := range theirs {
			if theirs[i].id.String() == t.Device {
				pd = &theirs[i]
			}
		}
		if pd == nil {
			return nil, fmt.Errorf("slot of %s: no verified certificate for that device", t.Device)
		}
		sealed, err := filecrypt.ParseSealedSlot(t.Sealed)
		if err != nil {
			return nil, fmt.Errorf("slot of %s: %w", t.Device, err)
		}
		slot, err := sealed.Open(me, pd.cert, p.now())
		if errors.Is(err, filecrypt.ErrSealed) {
			// Made before this device existed: that device has no slot
			// for it; the take runs out and the next refill covers it.
			out.Missing = append(out.Missing, t.Device)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("slot of %s: %w", t.Device, err)
		}
		nonce2, err := p.ProveFileSlot(ctx, t.Device, t.SlotID, slot.Proof())
		if err != nil {
			return nil, fmt.Errorf("prove slot of %s: %w", t.Device, err)
		}
		slotUses = append(slotUses, filecrypt.SlotUse{Slot: slot, Nonce2: nonce2})
		uses = append(uses, api.FileSlotUse{Device: t.Device, SlotID: t.SlotID, Nonce2: nonce2})
		out.Devices = append(out.Devices, t.Device)
	}
	if len(slotUses) == 0 {
		return nil, fmt.Errorf("%w for %s: its slots were made before this device; it must come online to refill", ErrNoFileSlot, strings.Join(out.Missing, ", "))
	}
	var own []filecrypt.OwnDevice
	if acct != p.Device.Account {
		ours, err := p.bundles(ctx, p.Device.Account)
		if err != nil {
			return nil, fmt.Errorf("devices of %s: %w", p.Device.Account, err)
		}
		for _, d := range ours {
			if d.id != p.Device && d.kem != nil && d.pin != pinChanged {
				own = append(own, filecrypt.OwnDevice{Device: d.id.String(), KEM: d.kem})
			}
		}
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, sum, err := filecrypt.HashContent(&progressReader{r: f, total: st.Size(), report: func(d, t int64) { progress("hash", d, t) }})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", abs, err)
	}
	typ := mime.TypeByExtension(filepath.Ext(abs))
	switch {
	case voice > 0:
		typ = VoiceType
	case typ == "":
		typ = "application/octet-stream"
	}
	o, err := filecrypt.NewFile(filecrypt.Sender{Device: p.Device.String(), Cert: p.Cert, Signer: p.Keys.Sign},
		filecrypt.Metadata{Name: filepath.Base(abs), Size: size, Type: typ, SHA256: sum, Duration: voice}, slotUses, own, p.now())
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(p.Dir, spoolDir), 0o700); err != nil {
		return nil, err
	}
	spool := filepath.Join(p.Dir, spoolDir, "out-"+hex.EncodeToString(o.FileID[:]))
	if err := encryptTo(o, f, spool, int64(size), progress); err != nil {
		os.Remove(spool)
		return nil, err
	}
	slotsJSON, _ := json.Marshal(uses)
	s := &sendState{name: filepath.Base(abs), spool: spool, state: "uploading", size: st.Size(), mtime: st.ModTime().UnixNano(),
		encSize: filecrypt.EncryptedSize(int64(size)), blob: frameBlob(o.Header, o.Metadata), slots: slotsJSON}
	_, err = p.db.db.ExecContext(ctx, `INSERT INTO file_sends(path, recipient, name, size, mtime, blob, slots, spool, enc_size, state, created)
		VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		abs, acct.String(), s.name, s.size, s.mtime, s.blob, s.slots, s.spool, s.encSize, s.state, p.now().Unix())
	if err != nil {
		os.Remove(spool)
		return nil, err
	}
	return s, nil
}

// encryptTo writes the file's ciphertext to spool, streaming.
func encryptTo(o *filecrypt.Outgoing, f *os.File, spool string, size int64, progress FileProgress) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	dst, err := os.OpenFile(spool, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer dst.Close()
	bw := bufio.NewWriterSize(dst, 1<<20)
	cw, err := o.ContentWriter(bw)
	if err != nil {
		return err
	}
	n, err := io.Copy(cw, &progressReader{r: f, total: size, report: func(d, t int64) { progress("encrypt", d, t) }})
	if err != nil {
		return fmt.Errorf("encrypt: %w", err)
	}
	if n != size {
		return fmt.Errorf("encrypt: the file changed while being read (%d bytes, not %d)", n, size)
	}
	if err := cw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return dst.Sync()
}

type progressReader struct {
	r      io.Reader
	done   int64
	total  int64
	report func(done, total int64)
}

func (c *progressReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.done += int64(n)
	if n > 0 {
		c.report(c.done, c.total)
	}
	return n, err
}

// FileEntry is one transfer, incoming or outgoing, as `phonex files`
// shows it.
type FileEntry struct {
	ID        string           `json:"id"`
	Direction string           `json:"direction"` // in, out
	Peer      string           `json:"peer"`      // the sending device (in), the recipient account (out)
	Name      string           `json:"name"`
	Size      int64            `json:"size"`
	Offset    int64            `json:"offset,omitempty"` // ciphertext bytes the node holds (out), or this device holds (in, downloading)
	Type      string           `json:"type,omitempty"`
	SHA256    string           `json:"sha256,omitempty"`
	State     string           `json:"state"` // in: offered, downloading, received, expired, failed; out: uploading, offered, delivered
	Expires   time.Time        `json:"expires"`
	Path      string           `json:"path,omitempty"`
	Error     string           `json:"error,omitempty"`
	Devices   []api.FileDevice `json:"devices,omitempty"`
	// Voice is the duration of a voice message (in); zero for a file.
	VoiceMS int64 `json:"voice_ms,omitempty"`
}

// opened is an incoming file whose header verified and whose key this
// device unwrapped.
type opened struct {
	in     api.IncomingFile
	key    *filecrypt.FileKey
	meta   *filecrypt.Metadata
	slotID string // the slot to destroy after the download; empty for an own-device copy
}

// openIncoming verifies an incoming file's header against the sender's
// certificate and opens its key and metadata; the content stays on the node.
func (p *Profile) openIncoming(ctx context.Context, in api.IncomingFile, certs map[string][]peerDevice) (*opened, error) {
	sender, err := ident.ParseDevice(in.Sender)
	if err != nil {
		return nil, err
	}
	ds, ok := certs[sender.Account.String()]
	if !ok {
		if ds, err = p.bundles(ctx, sender.Account); err != nil {
			return nil, fmt.Errorf("devices of %s: %w", sender.Account, err)
		}
		certs[sender.Account.String()] = ds
	}
	var pd *peerDevice
	for i := range ds {
		if ds[i].id == sender {
			pd = &ds[i]
		}
	}
	if pd == nil {
		return nil, fmt.Errorf("no current certificate for %s", sender)
	}
	hb, mb, err := splitBlob(in.Header)
	if err != nil {
		return nil, err
	}
	h, err := filecrypt.ParseHeader(hb)
	if err != nil {
		return nil, err
	}
	if h.Sender != in.Sender {
		return nil, fmt.Errorf("header names sender %s, the node %s: %w", h.Sender, in.Sender, filecrypt.ErrBadSignature)
	}
	if err := h.Verify(pd.cert); err != nil {
		return nil, err
	}
	o := &opened{in: in}
	if sender.Account == p.Device.Account {
		kem, _, err := p.kemKey(ctx)
		if err != nil {
			return nil, err
		}
		if o.key, err = h.UnwrapOwn(p.Device.String(), kem); err != nil {
			return nil, err
		}
	} else {
		var b []byte
		err := p.db.db.QueryRowContext(ctx, `SELECT secret FROM file_slots WHERE id=?`, in.SlotID).Scan(&b)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("slot %s: %w", in.SlotID, filecrypt.ErrSlotDestroyed)
		}
		if err != nil {
			return nil, err
		}
		sec, err := filecrypt.ParseSlotSecret(b)
		if err != nil {
			return nil, err
		}
		defer sec.Destroy()
		if o.key, err = h.UnwrapSlot(sec); err != nil {
			return nil, err
		}
		o.slotID = in.SlotID
	}
	if o.meta, err = o.key.OpenMetadata(mb); err != nil {
		return nil, err
	}
	if int64(o.meta.Size) < 0 || filecrypt.EncryptedSize(int64(o.meta.Size)) != in.Size {
		return nil, fmt.Errorf("the node offers %d bytes for %d of content: %w", in.Size, o.meta.Size, filecrypt.ErrSize)
	}
	return o, nil
}

func (p *Profile) inSpool(id string) string {
	return filepath.Join(p.Dir, spoolDir, "in-"+filepath.Base(id))
}

// FileTransfers lists incoming files (their metadata decrypted, the
// content not fetched) and outgoing ones.
func (p *Profile) FileTransfers(ctx context.Context) ([]FileEntry, error) {
	l, err := p.Files(ctx)
	if err != nil {
		return nil, err
	}
	var out []FileEntry
	listed := map[string]bool{}
	certs := map[string][]peerDevice{}
	for _, in := range l.Incoming {
		listed[in.ID] = true
		e := FileEntry{ID: in.ID, Direction: "in", Peer: in.Sender, Size: in.Size, State: "offered", Expires: in.Expires}
		if o, err := p.openIncoming(ctx, in, certs); err != nil {
			e.State, e.Error = "failed", err.Error()
		} else {
			e.Name, e.Size, e.Type, e.SHA256 = o.meta.Name, int64(o.meta.Size), o.meta.Type, hex.EncodeToString(o.meta.SHA256[:])
			e.VoiceMS = o.meta.Duration.Milliseconds()
			// Remember it was offered, so that once the node drops it at
			// expiry it still shows, as expired.
			p.db.db.ExecContext(ctx, `INSERT INTO file_recv(id, sender, name, size, type, state, error, expires, updated) VALUES(?, ?, ?, ?, ?, 'offered', '', ?, ?)
				ON CONFLICT(id) DO NOTHING`, in.ID, in.Sender, o.meta.Name, int64(o.meta.Size), o.meta.Type, in.Expires.Unix(), p.now().Unix())
			if st, err := os.Stat(p.inSpool(in.ID)); err == nil {
				e.State, e.Offset = "downloading", st.Size()
			}
			var msg string
			if p.db.db.QueryRowContext(ctx, `SELECT error FROM file_recv WHERE id=? AND state='failed'`, in.ID).Scan(&msg) == nil && e.State == "offered" {
				// The last get did not verify; another may, if the node's
				// copy was damaged in transit only.
				e.State, e.Error = "failed", msg
			}
		}
		out = append(out, e)
	}
	rows, err := p.db.db.QueryContext(ctx, `SELECT id, sender, name, size, type, state, path, error, expires FROM file_recv ORDER BY updated`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var e FileEntry
		var exp int64
		if err := rows.Scan(&e.ID, &e.Peer, &e.Name, &e.Size, &e.Type, &e.State, &e.Path, &e.Error, &exp); err != nil {
			return nil, err
		}
		if listed[e.ID] {
			continue
		}
		e.Direction, e.Expires = "in", time.Unix(exp, 0).UTC()
		switch {
		case e.State == "received":
		case p.now().After(e.Expires):
			e.State = "expired"
		case e.State == "offered" || e.State == "downloading":
			// No longer offered and not expired: the sender withdrew it.
			e.State = "withdrawn"
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	names := map[string]string{}
	nrows, err := p.db.db.QueryContext(ctx, `SELECT file_id, name FROM file_sends WHERE file_id != ''`)
	if err != nil {
		return nil, err
	}
	for nrows.Next() {
		var id, name string
		if nrows.Scan(&id, &name) == nil {
			names[id] = name
		}
	}
	nrows.Close()
	for _, o := range l.Outgoing {
		state := o.State
		if state == "complete" {
			state = "offered"
		}
		var msg string
		switch {
		case o.Refused != "":
			// The recipient's cluster refused the forward (files across clusters).
			state, msg = "failed", "refused by the recipient's cluster: "+o.Refused
		case o.Waiting != "" && state == "offered":
			state, msg = "waiting", "waiting for "+o.Waiting
		}
		out = append(out, FileEntry{ID: o.ID, Direction: "out", Peer: o.Recipient, Name: names[o.ID], Size: o.Size, Offset: o.Offset,
			State: state, Error: msg, Expires: o.Expires, Devices: o.Devices})
	}
	return out, nil
}

// ReceivedFile is the outcome of GetFile.
type ReceivedFile struct {
	ID     string `json:"id"`
	Sender string `json:"sender"`
	Name   string `json:"name"`
	Type   string `json:"type"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Path   string `json:"path"`
}

// GetFile downloads an incoming file (resuming after what an earlier run
// fetched), verifies and decrypts it into a temporary file next to dst and
// renames it to dst only once all of it verified; then it acknowledges the
// file to the node and destroys the slot's private half. An empty dst is
// the file's own name in the current directory.
func (p *Profile) GetFile(ctx context.Context, id, dst string, progress FileProgress) (ReceivedFile, error) {
	if progress == nil {
		progress = func(string, int64, int64) {}
	}
	l, err := p.Files(ctx)
	if err != nil {
		return ReceivedFile{}, err
	}
	var in *api.IncomingFile
	for i := range l.Incoming {
		if l.Incoming[i].ID == id {
			in = &l.Incoming[i]
		}
	}
	if in == nil {
		var path string
		if p.db.db.QueryRowContext(ctx, `SELECT path FROM file_recv WHERE id=? AND state='received'`, id).Scan(&path) == nil {
			return ReceivedFile{}, fmt.Errorf("file %s was received already, to %s", id, path)
		}
		var exp int64
		if p.db.db.QueryRowContext(ctx, `SELECT expires FROM file_recv WHERE id=?`, id).Scan(&exp) == nil && !p.now().Before(time.Unix(exp, 0)) {
			return ReceivedFile{}, fmt.Errorf("file %s: %w at %s; the node deleted it: ask the sender to send it again", id, ErrFileExpired, time.Unix(exp, 0).UTC().Format(time.RFC3339))
		}
		return ReceivedFile{}, fmt.Errorf("file %s: %w", id, &api.Error{Status: 404, Code: api.CodeFileUnavailable, Message: "not offered to this device (expired, withdrawn or unknown)"})
	}
	o, err := p.openIncoming(ctx, *in, map[string][]peerDevice{})
	if err != nil {
		return ReceivedFile{}, fmt.Errorf("file %s: %w", id, err)
	}
	name := filepath.Base(o.meta.Name)
	if name == "." || name == ".." || name == "/" || name == "" {
		name = "file-" + id
	}
	if dst == "" {
		dst = name
	}
	if _, err := os.Lstat(dst); err == nil {
		return ReceivedFile{}, fmt.Errorf("%w: %s (choose another with -o)", ErrFileExists, dst)
	}
	out := ReceivedFile{ID: id, Sender: in.Sender, Name: o.meta.Name, Type: o.meta.Type, Size: int64(o.meta.Size),
		SHA256: hex.EncodeToString(o.meta.SHA256[:]), Path: dst}
	record := func(state string, cause error) {
		msg := ""
		if cause != nil {
			msg = cause.Error()
		}
		p.db.db.ExecContext(ctx, `INSERT INTO file_recv(id, sender, name, size, type, state, path, error, expires, updated) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(id) DO UPDATE SET name=excluded.name, size=excluded.size, type=excluded.type, state=excluded.state,
			path=excluded.path, error=excluded.error, updated=excluded.updated`,
			id, in.Sender, o.meta.Name, int64(o.meta.Size), o.meta.Type, state, dst, msg, in.Expires.Unix(), p.now().Unix())
	}
	record("downloading", nil)
	if err := os.MkdirAll(filepath.Join(p.Dir, spoolDir), 0o700); err != nil {
		return out, err
	}
	spool := p.inSpool(id)
	sf, err := os.OpenFile(spool, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return out, err
	}
	defer sf.Close()
	if err := p.DownloadFile(ctx, id, sf, in.Size, func(done, total int64) { progress("download", done, total) }); err != nil {
		if errors.Is(err, filecrypt.ErrTruncated) {
			// The node's copy is short: it fails like a copy that does
			// not verify.
			sf.Close()
			os.Remove(spool)
			record("failed", err)
		}
		return out, err
	}
	if _, err := sf.Seek(0, io.SeekStart); err != nil {
		return out, err
	}
	if err := decryptTo(o, sf, dst, progress); err != nil {
		// The ciphertext does not verify: a new download may fetch
		// intact bytes, so this copy goes.
		sf.Close()
		os.Remove(spool)
		record("failed", err)
		return out, fmt.Errorf("file %s: %w", id, err)
	}
	sf.Close()
	os.Remove(spool)
	// Forward secrecy per file: the slot's private half goes once the
	// content is safely here.
	if o.slotID != "" {
		if _, err := p.db.db.ExecContext(ctx, `DELETE FROM file_slots WHERE id=?`, o.slotID); err != nil {
			return out, err
		}
	}
	record("received", nil)
	if err := p.AckFile(ctx, id); err != nil {
		return out, fmt.Errorf("file %s is in %s, but the node was not told: %w", id, dst, err)
	}
	return out, nil
}

// decryptTo decrypts and verifies the whole ciphertext into a temporary
// file in dst's directory and renames it to dst only after the last chunk
// and the content hash verified.
func decryptTo(o *opened, src io.Reader, dst string, progress FileProgress) error {
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+"."+hex.EncodeToString(rnd[:])+".part")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	r, err := o.key.ContentReader(bufio.NewReaderSize(src, 1<<20), o.meta)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if _, err := io.Copy(bw, &progressReader{r: r, total: int64(o.meta.Size), report: func(d, t int64) { progress("decrypt", d, t) }}); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	ok = true
	return nil
}

// announceFiles reports, once each, the files offered to this device
// (a "file" event with state offered, the name in Text; their metadata
// is opened to name them) and each recipient device that got a file this
// device sent (state delivered, the device in Peer). It is Listen's poll,
// on its refresh.
func (p *Profile) announceFiles(ctx context.Context, emit func(Event)) error {
	l, err := p.Files(ctx)
	if err != nil {
		return err
	}
	certs := map[string][]peerDevice{}
	for _, in := range l.Incoming {
		var n int
		if err := p.db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM file_recv WHERE id=?`, in.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		e := Event{Type: "file", ID: in.ID, FromDevice: in.Sender, State: "offered", Time: p.now()}
		if d, err := ident.ParseDevice(in.Sender); err == nil {
			e.From, e.FromDevice = d.Account.String(), d.Name
		}
		name, size, typ, state, msg := "", in.Size, "", "offered", ""
		if o, err := p.openIncoming(ctx, in, certs); err != nil {
			state, msg = "failed", err.Error()
			e.State, e.Error = state, msg
		} else {
			name, size, typ = o.meta.Name, int64(o.meta.Size), o.meta.Type
			e.Text = name
		}
		if _, err := p.db.db.ExecContext(ctx, `INSERT INTO file_recv(id, sender, name, size, type, state, error, expires, updated) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(id) DO NOTHING`, in.ID, in.Sender, name, size, typ, state, msg, in.Expires.Unix(), p.now().Unix()); err != nil {
			return err
		}
		emit(e)
	}
	// The sender's side: each recipient device that has a file, once.
	for _, o := range l.Outgoing {
		if o.Refused != "" {
			// A recipient's cluster refused the forward: said once, under
			// the empty device name no device has.
			res, err := p.db.db.ExecContext(ctx, `INSERT INTO file_delivered(id, device, at) VALUES(?, '', ?) ON CONFLICT DO NOTHING`, o.ID, p.now().Unix())
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n > 0 {
				emit(Event{Type: "file", ID: o.ID, Peer: o.Recipient, State: "failed", Outgoing: true, Time: p.now(),
					Error: "refused by the recipient's cluster: " + o.Refused})
			}
		}
		for _, d := range o.Devices {
			if !d.Delivered {
				continue
			}
			res, err := p.db.db.ExecContext(ctx, `INSERT INTO file_delivered(id, device, at) VALUES(?, ?, ?) ON CONFLICT DO NOTHING`, o.ID, d.Device, p.now().Unix())
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue
			}
			var name string
			p.db.db.QueryRowContext(ctx, `SELECT name FROM file_sends WHERE file_id=?`, o.ID).Scan(&name)
			emit(Event{Type: "file", ID: o.ID, Peer: d.Device, Text: name, State: "delivered", Outgoing: true, Time: p.now()})
		}
	}
	return nil
}

// refillFileSlotsEvent runs a refill for Listen and reports what it made.
func (p *Profile) refillFileSlotsEvent(ctx context.Context, emit func(Event)) {
	n, err := p.RefillFileSlots(ctx)
	if n > 0 {
		emit(Event{Type: "file_slots", Text: fmt.Sprintf("%d file slots offered", n), Time: p.now()})
	}
	if err != nil {
		p.log.Debug("file slot refill failed", "err", err)
	}
	if err := p.announceFiles(ctx, emit); err != nil {
		p.log.Debug("file poll failed", "err", err)
	}
}
