// Package files is the node's file service: half-key slots handed out in
// two steps, resumable uploads and downloads of opaque ciphertext, and the
// rules checked before anything is stored (mutual contacts, a slot per
// recipient device, quotas, expiry). The node never sees keys or
// plaintext; docs/files-node.md describes the API.
package files

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/filecrypt"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/store"
)

// Limits are the node's settings for files.
type Limits struct {
	MaxSlots    int           // ready and taken slots per recipient device and contact
	SlotTTL     time.Duration // life of a ready slot
	TakeTTL     time.Duration // from step 1 to the upload's creation
	Expiry      time.Duration // life of a file
	MaxFileSize int64         // bytes of one file's ciphertext
	Quota       int64         // bytes of stored files per sending account
	PairCap     int           // stored files from one account to another
}

// DefaultLimits are the defaults of the node's configuration.
var DefaultLimits = Limits{MaxSlots: 4, SlotTTL: 30 * 24 * time.Hour, TakeTTL: time.Hour, Expiry: 14 * 24 * time.Hour,
	MaxFileSize: 4 << 30, Quota: 8 << 30, PairCap: 16}

// Caller is the authenticated device of a request.
type Caller struct {
	AccountID int64
	Account   string // user@domain
	DeviceID  int64
	Device    string // the device's name
	Cert      []byte // the device certificate's DER, forwarded to peers

	// Remote is a device of a peer cluster, calling through its node
	// (federation.go): Origin is that cluster's domain, AccountID is -1 and
	// DeviceID the remote device's id for slot takes.
	Remote bool
	Origin string
}

// Store is what the service needs of the node's state.
type Store interface {
	store.Files
	store.FederatedFiles
	Account(ctx context.Context, name string) (store.Account, error)
	HasContact(ctx context.Context, owner, contact string) (bool, error)
	Contacts(ctx context.Context, accountID int64) ([]string, error)
	Devices(ctx context.Context, accountID int64) ([]store.Device, error)
	DeviceByName(ctx context.Context, account, name string) (store.Device, error)
}

// Service serves the file API.
type Service struct {
	st     Store
	blobs  FileStore
	lim    Limits
	policy SenderPolicy // per-account limits over lim; nil: lim for all (policy.go)
	peers  Peers        // nil: no federation (federation.go)
	kick   chan struct{}
	unseen peerBackoff // peers whose file state could not be read lately
	domain string
	log    *slog.Logger
	now    func() time.Time

	// IOTimeout bounds one read or write of a transfer: a long transfer
	// keeps going as long as bytes move.
	IOTimeout time.Duration

	mu    sync.Mutex
	locks map[string]chan struct{} // one transfer at a time per upload
}

// New makes a service for the accounts of domain.
func New(st Store, blobs FileStore, lim Limits, domain string, log *slog.Logger) *Service {
	return &Service{st: st, blobs: blobs, lim: lim, domain: domain, log: log, now: time.Now,
		IOTimeout: 30 * time.Second, locks: map[string]chan struct{}{}, kick: make(chan struct{}, 1)}
}

// SetClock replaces the clock (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// Auth finds the caller of a request; its errors are *api.Error.
type Auth func(r *http.Request) (Caller, error)

// Routes registers the API on m.
func (s *Service) Routes(m *http.ServeMux, auth Auth) {
	h := func(f func(ctx context.Context, w http.ResponseWriter, r *http.Request, c Caller) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			c, err := auth(r)
			if err == nil {
				err = f(r.Context(), w, r, c)
			}
			if err != nil {
				s.writeError(w, r, err)
			}
		}
	}
	m.HandleFunc("PUT "+api.PathFileSlots, h(s.putSlots))
	m.HandleFunc("GET "+api.PathFileSlots, h(s.slotCounts))
	m.HandleFunc("POST "+api.PathFileSlotTake, h(s.take))
	m.HandleFunc("POST "+api.PathFileSlotProve, h(s.prove))
	m.HandleFunc("POST "+api.PathFiles, h(s.create))
	m.HandleFunc("GET "+api.PathFiles, h(s.list))
	m.HandleFunc("PATCH "+api.PathFiles+"/{id}", h(s.patch))
	// GET patterns match HEAD too: HEAD on a file is the upload's offset.
	m.HandleFunc("GET "+api.PathFiles+"/{id}", h(s.headOrDownload))
	m.HandleFunc("POST "+api.PathFiles+"/{id}/ack", h(s.ack))
	m.HandleFunc("DELETE "+api.PathFiles+"/{id}", h(s.cancel))
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(v)
}

func apiErr(status int, code, format string, a ...any) *api.Error {
	return &api.Error{Status: status, Code: code, Message: fmt.Sprintf(format, a...)}
}

func (s *Service) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *api.Error
	if !errors.As(err, &ae) {
		if errors.Is(err, syscall.ENOSPC) {
			ae = apiErr(http.StatusInsufficientStorage, api.CodeStorageFull, "the node's disk is full; try again later")
		} else {
			s.log.Error("file request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			ae = apiErr(http.StatusInternalServerError, api.CodeInternal, "internal error; the operator can find it in the server log")
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set(api.HeaderError, ae.Code)
	w.WriteHeader(ae.Status)
	if r.Method != http.MethodHead {
		json.NewEncoder(w).Encode(api.ErrorBody{Error: ae})
	}
}

func decode(r *http.Request, v any) error {
	if err := api.Decode(r.Body, v); err != nil {
		return apiErr(http.StatusBadRequest, api.CodeBadRequest, "malformed request: %v", err)
	}
	return nil
}

func badRequest(err error) error {
	return apiErr(http.StatusBadRequest, api.CodeBadRequest, "%v", err)
}

// local parses an account of this cluster.
func (s *Service) local(name string) (ident.Account, error) {
	a, err := ident.ParseAccount(name)
	if err != nil {
		return a, badRequest(err)
	}
	if a.Domain != s.domain {
		return a, apiErr(http.StatusBadRequest, api.CodeFederation, "%s is not an account of this cluster; federation is not supported yet", a)
	}
	return a, nil
}

// mutual checks that both accounts have each other as contacts and returns
// the other account.
func (s *Service) mutual(ctx context.Context, c Caller, other string) (store.Account, error) {
	acct, err := s.local(other)
	if err != nil {
		return store.Account{}, err
	}
	a, err := s.st.Account(ctx, acct.String())
	if errors.Is(err, store.ErrNotFound) || (err == nil && a.Status != store.StatusActive) {
		return a, apiErr(http.StatusNotFound, api.CodeUnknownUser, "no active account %s on this cluster", acct)
	}
	if err != nil {
		return a, err
	}
	if a.ID == c.AccountID {
		return a, apiErr(http.StatusBadRequest, api.CodeBadRequest, "files to your own account go to your other devices with any file you send")
	}
	pairs := [][2]string{{c.Account, a.Name}, {a.Name, c.Account}}
	if c.Remote {
		pairs = pairs[1:] // the caller's side was checked by its own node
	}
	for _, pair := range pairs {
		ok, err := s.st.HasContact(ctx, pair[0], pair[1])
		if err != nil {
			return a, err
		}
		if !ok {
			return a, apiErr(http.StatusForbidden, api.CodeNotContact, "%s and %s are not each other's contacts", c.Account, a.Name)
		}
	}
	return a, nil
}

// fileDevices are the devices of an account that can take files.
func (s *Service) fileDevices(ctx context.Context, accountID int64) ([]store.Device, error) {
	ds, err := s.st.Devices(ctx, accountID)
	if err != nil {
		return nil, err
	}
	out := ds[:0]
	for _, d := range ds {
		if d.Status == store.StatusActive && d.Suite != "sip" {
			out = append(out, d)
		}
	}
	return out, nil
}

// putSlots stores slots the calling device made for one of its contacts.
func (s *Service) putSlots(ctx context.Context, w http.ResponseWriter, r *http.Request, c Caller) error {
	var req api.FileSlotsPut
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := checkSlots(&req); err != nil {
		return badRequest(err)
	}
	contact, err := s.slotContact(ctx, req.Contact)
	if err != nil {
		return err
	}
	ok, err := s.st.HasContact(ctx, c.Account, contact.String())
	if err != nil {
		return err
	}
	if !ok {
		return apiErr(http.StatusForbidden, api.CodeNotContact, "%s is not on your contact list", contact)
	}
	now := s.now()
	slots := make([]store.FileSlot, len(req.Slots))
	for i, sl := range req.Slots {
		slots[i] = store.FileSlot{SlotID: sl.ID, Sealed: sl.Sealed, ProofHash: sl.ProofHash, Nonce2: sl.Nonce2, Expires: now.Add(s.lim.SlotTTL)}
	}
	ready, err := s.st.AddFileSlots(ctx, c.DeviceID, contact.String(), slots, s.lim.MaxSlots, now)
	switch {
	case errors.Is(err, store.ErrSlotsFull):
		return apiErr(http.StatusConflict, api.CodeSlotsFull, "at most %d slots per contact: %v", s.lim.MaxSlots, err)
	case errors.Is(err, store.ErrExists):
		return apiErr(http.StatusConflict, api.CodeSlotExists, "%v", err)
	case err != nil:
		return err
	}
	return writeJSON(w, api.FileSlotCount{Contact: contact.String(), Ready: ready, Max: s.lim.MaxSlots})
}

// slotCounts tells a device how many slots each contact on its account's
// list has left (none: zero), so it refills what senders consumed.
func (s *Service) slotCounts(ctx context.Context, w http.ResponseWriter, r *http.Request, c Caller) error {
	cs, err := s.st.FileSlotCounts(ctx, c.DeviceID, s.now())
	if err != nil {
		return err
	}
	contacts, err := s.st.Contacts(ctx, c.AccountID)
	if err != nil {
		return err
	}
	have := map[string]store.SlotCount{}
	for _, x := range cs {
		have[x.Contact] = x
	}
	out := api.FileSlotCounts{Contacts: []api.FileSlotCount{}}
	for _, name := range contacts {
		x := have[name]
		out.Contacts = append(out.Contacts, api.FileSlotCount{Contact: name, Ready: x.Ready, Taken: x.Taken, Max: s.lim.MaxSlots})
	}
	return writeJSON(w, out)
}

// take is step 1: one sealed slot of each of the recipient's devices,
// each handed out once.
func (s *Service) take(ctx context.Context, w http.ResponseWriter, r *http.Request, c Caller) error {
	var req api.FileSlotTake
	if err := decode(r, &req); err != nil {
		return err
	}
	if peer, err := s.peerOf(ctx, c, req.Recipient); err != nil || peer {
		if err != nil {
			return err
		}
		return s.takeRemote(ctx, w, c, req)
	}
	rcpt, err := s.mutual(ctx, c, req.Recipient)
	if err != nil {
		return err
	}
	ds, err := s.fileDevices(ctx, rcpt.ID)
	if err != nil {
		return err
	}
	now := s.now()
	out := api.FileSlotTaken{Slots: []api.TakenSlot{}, Missing: []string{}}
	for _, d := range ds {
		name := rcpt.Name + "/" + d.Name
		sl, err := s.st.TakeFileSlot(ctx, d.ID, c.Account, c.DeviceID, now.Add(s.lim.TakeTTL), now)
		if errors.Is(err, store.ErrNotFound) {
			out.Missing = append(out.Missing, name)
			continue
		}
		if err != nil {
			return err
		}
		out.Slots = append(out.Slots, api.TakenSlot{Device: name, SlotID: sl.SlotID, Sealed: sl.Sealed, Expires: sl.Expires})
	}
	if len(out.Slots) == 0 {
		return apiErr(http.StatusConflict, api.CodeNoSlot, "%s has no file slot left for you; they refill when they are online", rcpt.Name)
	}
	return writeJSON(w, out)
}

// slotDevice finds a recipient device named user@domain/device.
func (s *Service) slotDevice(ctx context.Context, name string) (store.Device, error) {
	id, err := ident.ParseDevice(name)
	if err != nil {
		return store.Device{}, badRequest(err)
	}
	d, err := s.st.DeviceByName(ctx, id.Account.String(), id.Name)
	if errors.Is(err, store.ErrNotFound) {
		return d, apiErr(http.StatusNotFound, api.CodeSlotUnknown, "no device %s", id)
	}
	return d, err
}

func slotError(err error, slotID string) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return apiErr(http.StatusNotFound, api.CodeSlotUnknown, "no slot %q for that device", slotID)
	case errors.Is(err, store.ErrSlotUsed):
		return apiErr(http.StatusConflict, api.CodeSlotUsed, "slot %q was used by an upload already", slotID)
	case errors.Is(err, store.ErrSlotExpired):
		return apiErr(http.StatusGone, api.CodeSlotExpired, "slot %q expired; take a new one", slotID)
	case errors.Is(err, store.ErrSlotNotYours):
		return apiErr(http.StatusForbidden, api.CodeSlotNotYours, "slot %q was not handed to this device", slotID)
	case errors.Is(err, store.ErrSlotNotProven):
		return apiErr(http.StatusConflict, api.CodeSlotNotProven, "slot %q: prove the first nonce first", slotID)
	case errors.Is(err, store.ErrSlotNonce):
		return apiErr(http.StatusForbidden, api.CodeSlotNonce, "slot %q: the second nonce does not match", slotID)
	}
	return err
}

// prove is step 2: the sender shows it opened the sealed slot with a
// proof keyed by the slot's first nonce; the node compares the proof's hash
// with the stored one in constant time (filecrypt.VerifySlotProof) and
// hands out the second nonce.
func (s *Service) prove(ctx context.Context, w http.ResponseWriter, r *http.Request, c Caller) error {
	var req api.FileSlotProve
	if err := decode(r, &req); err != nil {
		return err
	}
	slotID, err := parseSlotID(req.SlotID)
	if err != nil {
		return badRequest(err)
	}
	if len(req.Proof) != api.SlotProofSize {
		return badRequest(fmt.Errorf("proof must have %d bytes", api.SlotProofSize))
	}
	if peer, err := s.peerDevice(ctx, c, req.Device); err != nil || peer {
		if err != nil {
			return err
		}
		return s.proveRemote(ctx, w, c, req)
	}
	d, err := s.slotDevice(ctx, req.Device)
	if err != nil {
		return err
	}
	sl, err := s.st.FileSlot(ctx, d.ID, req.SlotID)
	if err == nil && sl.Contact != c.Account {
		err = store.ErrNotFound // another contact's slot: not even its existence is told
	}
	if err != nil {
		return slotError(err, req.SlotID)
	}
	now := s.now()
	switch {
	case sl.State == store.SlotUsed:
		return slotError(store.ErrSlotUsed, req.SlotID)
	case sl.State == store.SlotReady || sl.TakerDevice != c.DeviceID:
		return slotError(store.ErrSlotNotYours, req.SlotID)
	case !now.Before(sl.Expires):
		return slotError(store.ErrSlotExpired, req.SlotID)
	}
	var stored [32]byte
	copy(stored[:], sl.ProofHash)
	if filecrypt.VerifySlotProof(slotID, stored, req.Proof) != nil {
		return apiErr(http.StatusForbidden, api.CodeSlotProof, "slot %q: the proof does not match", req.SlotID)
	}
	got, err := s.st.ProveFileSlot(ctx, d.ID, req.SlotID, c.DeviceID, now)
	if err != nil {
		return slotError(err, req.SlotID)
	}
	return writeJSON(w, api.FileSlotProven{Nonce2: got})
}

func newID() string {
	b := make([]byte, 20)
	rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// create starts an upload once every rule holds; nothing is stored before.
func (s *Service) create(ctx context.Context, w http.ResponseWriter, r *http.Request, c Caller) error {
	var req api.FileCreate
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := checkCreate(&req); err != nil {
		return badRequest(err)
	}
	lim := s.limitsFor(ctx, c.Account)
	if req.Size > lim.MaxFileSize {
		return apiErr(http.StatusRequestEntityTooLarge, api.CodeFileTooLarge, "%d bytes: this node takes files of at most %d bytes", req.Size, lim.MaxFileSize)
	}
	if peer, err := s.peerOf(ctx, c, req.Recipient); err != nil || peer {
		if err != nil {
			return err
		}
		return s.createOutbound(ctx, w, c, req, lim)
	}
	rcpt, err := s.mutual(ctx, c, req.Recipient)
	if err != nil {
		return err
	}
	if len(req.Slots) == 0 {
		return apiErr(http.StatusForbidden, api.CodeNoSlot, "an upload needs a proven slot of each recipient device")
	}
	var uses []store.SlotUse
	var targets []store.FileTarget
	for _, u := range req.Slots {
		d, err := s.slotDevice(ctx, u.Device)
		if err != nil {
			return err
		}
		if d.AccountID != rcpt.ID || d.Status != store.StatusActive {
			return apiErr(http.StatusBadRequest, api.CodeBadRequest, "%s is not an active device of %s", u.Device, rcpt.Name)
		}
		uses = append(uses, store.SlotUse{DeviceID: d.ID, SlotID: u.SlotID, Nonce2: u.Nonce2})
		targets = append(targets, store.FileTarget{DeviceID: d.ID, SlotID: u.SlotID, Nonce2: u.Nonce2})
	}
	own, err := s.fileDevices(ctx, c.AccountID)
	if err != nil {
		return err
	}
	for _, d := range own {
		if d.ID != c.DeviceID {
			targets = append(targets, store.FileTarget{DeviceID: d.ID})
		}
	}
	now := s.now()
	f := store.StoredFile{ID: newID(), SenderAccount: c.AccountID, SenderDevice: c.DeviceID, RecipientAccount: rcpt.ID,
		Size: req.Size, Header: req.Header, State: api.FileUploading, Created: now, Expires: now.Add(lim.Expiry)}
	err = s.st.CreateFile(ctx, f, uses, targets, store.FileLimits{PairCap: s.lim.PairCap, Quota: lim.Quota}, now)
	switch {
	case errors.Is(err, store.ErrPairCap):
		return apiErr(http.StatusConflict, api.CodePairCap, "%d files to %s wait already; they go once delivered or expired", s.lim.PairCap, rcpt.Name)
	case errors.Is(err, store.ErrStorageFull):
		return apiErr(http.StatusInsufficientStorage, api.CodeQuota, "your account may keep %d bytes of files on the node", lim.Quota)
	case err != nil:
		var se *store.SlotError
		if errors.As(err, &se) {
			return slotError(se.Err, se.SlotID)
		}
		return err
	}
	if err := s.blobs.Create(f.ID); err != nil {
		// The slots went with the file: the sender takes new ones.
		if derr := s.st.DeleteFile(ctx, f.ID); derr != nil {
			s.log.Error("forget file after a failed create", "file", f.ID, "err", derr)
		}
		return err
	}
	s.log.Debug("file upload created", "file", f.ID, "size", f.Size)
	return writeJSON(w, api.FileCreated{ID: f.ID, Offset: 0, Expires: f.Expires})
}

// lock serialises the transfers of one upload; a HEAD waits for a PATCH
// in flight, so it reports the offset the PATCH left.
func (s *Service) lock(ctx context.Context, id string) (func(), error) {
	for {
		s.mu.Lock()
		ch, busy := s.locks[id]
		if !busy {
			ch = make(chan struct{})
			s.locks[id] = ch
			s.mu.Unlock()
			return func() {
				s.mu.Lock()
				delete(s.locks, id)
				s.mu.Unlock()
				close(ch)
			}, nil
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// ownUpload finds an upload of the calling device.
func (s *Service) ownUpload(ctx context.Context, id string, c Caller) (store.StoredFile, error) {
	f, err := s.st.StoredFile(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !sentBy(f, c)) {
		return f, apiErr(http.StatusNotFound, api.CodeNotFound, "no upload %q of this device", id)
	}
	if err == nil && !s.now().Before(f.Expires) {
		return f, apiErr(http.StatusGone, api.CodeFileUnavailable, "upload %q expired", id)
	}
	return f, err
}

func (s *Service) headOrDownload(ctx context.Context, w http.ResponseWriter, r *http.Request, c Caller) error {
	if r.Method == http.MethodHead {
		return s.head(ctx, w, r, c)
	}
	return s.download(ctx, w, r, c)
}

// head reports an upload's offset (tus core 1.0.0 §HEAD).
func (s *Service) head(ctx context.Context, w http.ResponseWriter, r *http.Request, c Caller) error {
	id := r.PathValue("id")
	unlock, err := s.lock(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	f, err := s.ownUpload(ctx, id, c)
	if err != nil {
		return err
	}
	w.Header().Set(api.HeaderUploadOffset, fmt.Sprint(f.Offset))
	w.Header().Set(api.HeaderUploadLength, fmt.Sprint(f.Size))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return nil
}

// patch appends a chunk at the node's offset (tus core 1.0.0 §PATCH).
func (s *Service) patch(ctx context.Context, w http.ResponseWriter, r *http.Request, c Caller) error {
	if ct := r.Header.Get("Content-Type"); ct != api.ContentTypeOffset {
		return apiErr(http.StatusUnsupportedMediaType, api.CodeBadRequest, "Content-Type must be %s", api.ContentTypeOffset)
	}
	off, err := parseOffset(r.Header.Get(api.HeaderUploadOffset))
	if err != nil {
		return badRequest(err)
	}
	id := r.PathValue("id")
	unlock, err := s.lock(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	f, err := s.ownUpload(ctx, id, c)
	if err != nil {
		return err
	}
	w.Header().Set(api.HeaderUploadOffset, fmt.Sprint(f.Offset))
	if f.State != api.FileUploading {
		return apiErr(http.StatusConflict, api.CodeUploadComplete, "upload %q is complete", id)
	}
	if off != f.Offset {
		return apiErr(http.StatusConflict, api.CodeOffsetMismatch, "the node has %d bytes of upload %q; send from there", f.Offset, id)
	}
	left := f.Size - f.Offset
	if r.ContentLength > left {
		return apiErr(http.StatusRequestEntityTooLarge, api.CodeBeyondSize, "%d bytes at %d run past the declared size %d", r.ContentLength, off, f.Size)
	}
	body := &deadlineReader{r: io.LimitReader(r.Body, left), rc: http.NewResponseController(w), d: s.IOTimeout}
	end, aerr := s.blobs.Append(id, off, body)
	if end != f.Offset {
		// A broken connection cancels the request's context; what arrived
		// before is durable and must be recorded all the same.
		if err := s.st.SetFileOffset(context.WithoutCancel(ctx), id, end); err != nil {
			return err
		}
	}
	w.Header().Set(api.HeaderUploadOffset, fmt.Sprint(end))
	if aerr != nil {
		if errors.Is(aerr, syscall.ENOSPC) {
			return apiErr(http.StatusInsufficientStorage, api.CodeStorageFull, "the node's disk is full after %d bytes of upload %q; resume later", end, id)
		}
		// The connection broke: the durable part counts, the rest is resent.
		s.log.Debug("upload interrupted", "file", id, "offset", end, "err", aerr)
		return aerr
	}
	if end == f.Size {
		// Anything past the declared size is refused, not cut silently.
		var one [1]byte
		if n, _ := r.Body.Read(one[:]); n > 0 {
			return apiErr(http.StatusRequestEntityTooLarge, api.CodeBeyondSize, "the chunk runs past the declared size %d; the node kept the first %d bytes", f.Size, end)
		}
		if err := s.blobs.Commit(id); err != nil {
			return err
		}
		if err := s.st.SetFileState(ctx, id, api.FileComplete); err != nil {
			return err
		}
		s.log.Debug("file upload complete", "file", id)
		s.kickForwards() // a file for a peer cluster goes on (forward.go)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// cancel lets the sending device withdraw a file, complete or not: the
// content and the record go, and with them the quota they held. The slots
// it used stay used.
func (s *Service) cancel(ctx context.Context, w http.ResponseWriter, r *http.Request, c Caller) error {
	id := r.PathValue("id")
	unlock, err := s.lock(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	f, err := s.st.StoredFile(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && f.SenderDevice != c.DeviceID) {
		return apiErr(http.StatusNotFound, api.CodeNotFound, "no file %q of this device", id)
	}
	if err != nil {
		return err
	}
	if err := s.blobs.Remove(id); err != nil {
		return err
	}
	if err := s.st.DeleteFile(ctx, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// target finds the calling device among a complete file's recipients.
func (s *Service) target(ctx context.Context, id string, c Caller) (store.StoredFile, error) {
	unavailable := apiErr(http.StatusNotFound, api.CodeFileUnavailable, "file %q is not offered to this device (unknown, incomplete, expired or acknowledged)", id)
	f, err := s.st.StoredFile(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return f, unavailable
	}
	if err != nil {
		return f, err
	}
	if f.State != api.FileComplete || !s.now().Before(f.Expires) {
		return f, unavailable
	}
	ts, err := s.st.FileTargets(ctx, id)
	if err != nil {
		return f, err
	}
	for _, t := range ts {
		if t.DeviceID == c.DeviceID && t.Acked == nil {
			return f, nil
		}
	}
	return f, unavailable
}

// download serves a complete file with Range support (RFC 9110 §14), so
// a broken download resumes where it stopped.
func (s *Service) download(ctx context.Context, w http.ResponseWriter, r *http.Request, c Caller) error {
	id := r.PathValue("id")
	f, err := s.target(ctx, id, c)
	if err != nil {
		return err
	}
	b, err := s.blobs.Open(id)
	if err != nil {
		return err
	}
	defer b.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	// A strong validator for If-Range: a file's content never changes.
	w.Header().Set("ETag", `"`+id+`"`)
	http.ServeContent(&deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), d: s.IOTimeout}, r, "", f.Created, b)
	return nil
}

// ack records that a recipient device has the file; once every one has,
// the content is deleted.
func (s *Service) ack(ctx context.Context, w http.ResponseWriter, r *http.Request, c Caller) error {
	id := r.PathValue("id")
	if _, err := s.target(ctx, id, c); err != nil {
		return err
	}
	all, err := s.st.AckFile(ctx, id, c.DeviceID, s.now())
	if err != nil {
		return err
	}
	state := api.FileComplete
	if all && s.forwardPending(ctx, id) {
		all = false // the peer's node has yet to take the content (forward.go)
	}
	if all {
		if err := s.blobs.Remove(id); err != nil {
			return err
		}
		if err := s.st.SetFileState(ctx, id, api.FileDelivered); err != nil {
			return err
		}
		state = api.FileDelivered
	}
	return writeJSON(w, map[string]string{"state": state})
}

func (s *Service) list(ctx context.Context, w http.ResponseWriter, r *http.Request, c Caller) error {
	now := s.now()
	in, ts, err := s.st.IncomingFiles(ctx, c.DeviceID, now)
	if err != nil {
		return err
	}
	out := api.FileList{Incoming: []api.IncomingFile{}, Outgoing: []api.OutgoingFile{}}
	for i, f := range in {
		out.Incoming = append(out.Incoming, api.IncomingFile{ID: f.ID, Sender: f.Sender, Size: f.Size, Header: f.Header,
			SlotID: ts[i].SlotID, Nonce2: ts[i].Nonce2, Created: f.Created, Expires: f.Expires})
	}
	og, err := s.st.OutgoingFiles(ctx, c.DeviceID)
	if err != nil {
		return err
	}
	for _, f := range og {
		o := api.OutgoingFile{ID: f.ID, Recipient: f.Recipient, Size: f.Size, Offset: f.Offset, State: f.State,
			Created: f.Created, Expires: f.Expires, Devices: []api.FileDevice{}}
		targets, err := s.st.FileTargets(ctx, f.ID)
		if err != nil {
			return err
		}
		for _, t := range targets {
			o.Devices = append(o.Devices, api.FileDevice{Device: t.Device, Delivered: t.Acked != nil, At: t.Acked})
		}
		if f.RecipientAccount == 0 {
			if err := s.outboundDevices(ctx, f, &o); err != nil {
				return err
			}
		}
		out.Outgoing = append(out.Outgoing, o)
	}
	return writeJSON(w, out)
}

// Sweep deletes files past their expiry (content first, then the record)
// and slots past their life. It returns how many files went.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	now := s.now()
	n := 0
	for {
		ids, err := s.st.ExpiredFiles(ctx, now, 100)
		if err != nil {
			return n, err
		}
		for _, id := range ids {
			// An upload in flight finishes first, so no write follows the removal.
			unlock, err := s.lock(ctx, id)
			if err != nil {
				return n, err
			}
			err = s.blobs.Remove(id)
			if err == nil {
				err = s.st.DeleteFile(ctx, id)
			}
			unlock()
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return n, err
			}
			n++
		}
		if len(ids) < 100 {
			break
		}
	}
	if _, err := s.st.DeleteExpiredSlots(ctx, now); err != nil {
		return n, err
	}
	return n, s.removeOrphans(ctx)
}

// removeOrphans removes content without a record: a file's record goes
// with its account or sender device. A record is always written before
// its content, so content without one is never an upload starting.
func (s *Service) removeOrphans(ctx context.Context) error {
	l, ok := s.blobs.(Lister)
	if !ok {
		return nil
	}
	ids, err := l.List()
	if err != nil {
		return err
	}
	for _, id := range ids {
		_, err := s.st.StoredFile(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			s.log.Info("content without a record removed", "file", id)
			err = s.blobs.Remove(id)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Run sweeps every interval until ctx ends.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := s.Sweep(ctx); err != nil {
				s.log.Error("file sweep", "err", err)
			} else if n > 0 {
				s.log.Info("expired files deleted", "count", n)
			}
		}
	}
}

// deadlineReader moves the connection's deadlines forward while bytes
// arrive, so the server's request timeouts cut neither a long upload nor
// its answer, and a stalled one still ends.
type deadlineReader struct {
	r    io.Reader
	rc   *http.ResponseController
	d    time.Duration
	last time.Time
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	if now := time.Now(); now.Sub(d.last) > d.d/8 {
		d.rc.SetReadDeadline(now.Add(d.d))
		d.rc.SetWriteDeadline(now.Add(2 * d.d))
		d.last = now
	}
	return d.r.Read(p)
}

// deadlineWriter does the same for a download's writes.
type deadlineWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	d    time.Duration
	last time.Time
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if now := time.Now(); now.Sub(d.last) > d.d/8 {
		d.rc.SetWriteDeadline(now.Add(d.d))
		d.last = now
	}
	return d.ResponseWriter.Write(p)
}
