package files

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/store"
)

// Files across clusters (docs/federation.md, "Files"). A device talks only
// to its own node. For a recipient of a peer cluster the sender's node
// passes the slot take and proof on to the recipient's node, stores the
// upload as for a local recipient, and forwards the finished ciphertext
// (forward.go); the recipient's node stores it as a local file whose
// sender is of the peer cluster, and answers how its devices took it.

// Paths a peer's node calls, with the sending device's certificate.
const (
	PathPeerFiles     = "/v1/federation/files"
	PathPeerSlotTake  = PathPeerFiles + "/slots/take"
	PathPeerSlotProve = PathPeerFiles + "/slots/prove"
)

// Peers is how the service reaches the nodes of peer clusters.
type Peers interface {
	// Known reports whether domain is a federation peer of this cluster.
	Known(ctx context.Context, domain string) (bool, error)
	// Do calls domain's node for the device whose certificate is cert.
	// A JSON answer goes into out (nil: none read). A refusal of the peer
	// is an *api.Error with its status; an error of any other type means
	// the peer was not reached. The answer's header comes back either way.
	Do(ctx context.Context, domain, method, path string, cert []byte, hdr http.Header, body []byte, out any) (http.Header, error)
}

// SetPeers enables files for accounts of peer clusters.
func (s *Service) SetPeers(p Peers) { s.peers = p }

// Offer is what the sender's node sends the recipient's node for a file:
// the upload's creation, keyed by the sender node's id of the file so a
// repeated offer finds the first.
type Offer struct {
	OriginID string `json:"origin_id"`
	api.FileCreate
}

// PeerFileState answers a peer's question about a file it forwarded.
type PeerFileState struct {
	ID      string           `json:"id"`
	Offset  int64            `json:"offset"`
	State   string           `json:"state"`
	Devices []api.FileDevice `json:"devices"`
}

// ErrBadOffer is an offer that does not parse or breaks a rule of form.
var ErrBadOffer = errors.New("malformed file offer")

// ParseOffer reads a peer's offer.
func ParseOffer(r io.Reader) (Offer, error) {
	var o Offer
	if err := api.Decode(r, &o); err != nil {
		return o, fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	if checkID(o.OriginID) != nil {
		return o, fmt.Errorf("%w: origin id", ErrBadOffer)
	}
	if err := checkCreate(&o.FileCreate); err != nil {
		return o, fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	if len(o.Slots) == 0 {
		return o, fmt.Errorf("%w: no slot", ErrBadOffer)
	}
	return o, nil
}

// ParsePeerFileState reads the answer of a peer about a forwarded file.
func ParsePeerFileState(body []byte) (PeerFileState, error) {
	var st PeerFileState
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	return st, st.check()
}

// check bounds a peer's answer about a file: its id, offset and devices.
func (st PeerFileState) check() error {
	if checkID(st.ID) != nil || st.Offset < 0 || len(st.Devices) > 64 {
		return fmt.Errorf("%w: state out of range", ErrBadOffer)
	}
	switch st.State {
	case api.FileUploading, api.FileComplete, api.FileDelivered:
	default:
		return fmt.Errorf("%w: state %q", ErrBadOffer, st.State)
	}
	for _, d := range st.Devices {
		if _, err := ident.ParseDevice(d.Device); err != nil {
			return fmt.Errorf("%w: %v", ErrBadOffer, err)
		}
	}
	return nil
}

// PeerRoutes registers the calls peers' nodes make; auth finds the remote
// device (Caller.Remote) behind the peer node's certificate.
func (s *Service) PeerRoutes(m *http.ServeMux, auth Auth) {
	h := func(f func(ctx context.Context, w http.ResponseWriter, r *http.Request, c Caller) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			c, err := auth(r)
			if err == nil && !c.Remote {
				err = apiErr(http.StatusForbidden, api.CodeNotAllowed, "only peers' nodes call this")
			}
			if err == nil {
				err = f(r.Context(), w, r, c)
			}
			if err != nil {
				s.writeError(w, r, err)
			}
		}
	}
	m.HandleFunc("POST "+PathPeerSlotTake, h(s.take))
	m.HandleFunc("POST "+PathPeerSlotProve, h(s.prove))
	m.HandleFunc("POST "+PathPeerFiles, h(s.inbound))
	m.HandleFunc("PATCH "+PathPeerFiles+"/{id}", h(s.patch))
	m.HandleFunc("GET "+PathPeerFiles+"/{id}", h(s.inboundState))
}

// peerOf reports whether account is of a peer cluster, for a local caller.
func (s *Service) peerOf(ctx context.Context, c Caller, account string) (bool, error) {
	a, err := ident.ParseAccount(account)
	if err != nil {
		return false, badRequest(err)
	}
	if a.Domain == s.domain || c.Remote || s.peers == nil {
		return false, nil
	}
	ok, err := s.peers.Known(ctx, a.Domain)
	if err != nil {
		return false, err
	}
	if !ok {
		return false, apiErr(http.StatusBadRequest, api.CodeFederation, "%s is not an account of this cluster nor of a federation peer", a)
	}
	return true, nil
}

// peerDevice is peerOf for a device name.
func (s *Service) peerDevice(ctx context.Context, c Caller, device string) (bool, error) {
	d, err := ident.ParseDevice(device)
	if err != nil {
		return false, badRequest(err)
	}
	return s.peerOf(ctx, c, d.Account.String())
}

// slotContact is the contact a device makes slots for: an account of
// this cluster or of a peer.
func (s *Service) slotContact(ctx context.Context, name string) (ident.Account, error) {
	a, err := ident.ParseAccount(name)
	if err != nil {
		return a, badRequest(err)
	}
	if a.Domain != s.domain && s.peers != nil {
		if ok, err := s.peers.Known(ctx, a.Domain); err != nil || ok {
			return a, err
		}
	}
	return s.local(name)
}

// listsRecipient is the sender's side of the contact gate for a
// recipient of a peer cluster; the recipient's node checks its side.
func (s *Service) listsRecipient(ctx context.Context, c Caller, rcpt string) error {
	ok, err := s.st.HasContact(ctx, c.Account, rcpt)
	if err != nil {
		return err
	}
	if !ok {
		return apiErr(http.StatusForbidden, api.CodeNotContact, "%s is not on your contact list", rcpt)
	}
	return nil
}

// peerError passes a peer's refusal on as it is, and names a peer that
// cannot be reached.
func peerError(domain string, err error) error {
	var ae *api.Error
	if errors.As(err, &ae) {
		if ae.Status == 0 {
			ae.Status = http.StatusBadGateway
		}
		return ae
	}
	return apiErr(http.StatusBadGateway, api.CodePeerUnreachable, "the cluster %s cannot be reached now: %v", domain, err)
}

// takeRemote passes step 1 on to the recipient's node.
func (s *Service) takeRemote(ctx context.Context, w http.ResponseWriter, c Caller, req api.FileSlotTake) error {
	a, _ := ident.ParseAccount(req.Recipient)
	if err := s.listsRecipient(ctx, c, a.String()); err != nil {
		return err
	}
	body, _ := json.Marshal(api.FileSlotTake{Recipient: a.String()})
	var out api.FileSlotTaken
	if _, err := s.peers.Do(ctx, a.Domain, http.MethodPost, PathPeerSlotTake, c.Cert, nil, body, &out); err != nil {
		return peerError(a.Domain, err)
	}
	taken := api.FileSlotTaken{Slots: []api.TakenSlot{}, Missing: []string{}}
	for _, t := range out.Slots {
		if d, err := ident.ParseDevice(t.Device); err == nil && d.Account == a {
			taken.Slots = append(taken.Slots, t)
		}
	}
	for _, m := range out.Missing {
		if d, err := ident.ParseDevice(m); err == nil && d.Account == a {
			taken.Missing = append(taken.Missing, m)
		}
	}
	return writeJSON(w, taken)
}

// proveRemote passes step 2 on to the recipient's node.
func (s *Service) proveRemote(ctx context.Context, w http.ResponseWriter, c Caller, req api.FileSlotProve) error {
	d, _ := ident.ParseDevice(req.Device)
	if err := s.listsRecipient(ctx, c, d.Account.String()); err != nil {
		return err
	}
	body, _ := json.Marshal(req)
	var out api.FileSlotProven
	if _, err := s.peers.Do(ctx, d.Account.Domain, http.MethodPost, PathPeerSlotProve, c.Cert, nil, body, &out); err != nil {
		return peerError(d.Account.Domain, err)
	}
	if len(out.Nonce2) != api.Nonce2Size {
		return apiErr(http.StatusBadGateway, api.CodeInternal, "%s answered a malformed second nonce", d.Account.Domain)
	}
	return writeJSON(w, out)
}

// createOutbound stores a file for an account of a peer cluster and
// offers it to that cluster's node at once, so its refusal (not a
// contact, size, quota, a slot) reaches the sender before the upload.
// When the peer cannot be reached the upload goes on all the same and the
// file waits here; the forward retries until the peer takes it.
func (s *Service) createOutbound(ctx context.Context, w http.ResponseWriter, c Caller, req api.FileCreate, lim Limits) error {
	a, _ := ident.ParseAccount(req.Recipient)
	if err := s.listsRecipient(ctx, c, a.String()); err != nil {
		return err
	}
	if len(req.Slots) == 0 {
		return apiErr(http.StatusForbidden, api.CodeNoSlot, "an upload needs a proven slot of each recipient device")
	}
	var remote []store.RemoteFileTarget
	for _, u := range req.Slots {
		d, err := ident.ParseDevice(u.Device)
		if err != nil {
			return badRequest(err)
		}
		if d.Account != a {
			return apiErr(http.StatusBadRequest, api.CodeBadRequest, "%s is not a device of %s", u.Device, a)
		}
		remote = append(remote, store.RemoteFileTarget{Device: d.String(), SlotID: u.SlotID, Nonce2: u.Nonce2})
	}
	var targets []store.FileTarget
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
	f := store.StoredFile{ID: newID(), SenderAccount: c.AccountID, SenderDevice: c.DeviceID, Recipient: a.String(),
		Size: req.Size, Header: req.Header, State: api.FileUploading, Created: now, Expires: now.Add(lim.Expiry)}
	err = s.st.CreateOutboundFile(ctx, f, targets, remote, a.Domain, store.FileLimits{Quota: lim.Quota})
	if errors.Is(err, store.ErrStorageFull) {
		return apiErr(http.StatusInsufficientStorage, api.CodeQuota, "your account may keep %d bytes of files on the node", lim.Quota)
	}
	if err != nil {
		return err
	}
	forget := func() {
		if err := s.blobs.Remove(f.ID); err != nil {
			s.log.Error("remove a file not created", "file", f.ID, "err", err)
		}
		if err := s.st.DeleteFile(ctx, f.ID); err != nil {
			s.log.Error("forget a file not created", "file", f.ID, "err", err)
		}
	}
	if err := s.blobs.Create(f.ID); err != nil {
		forget()
		return err
	}
	out := api.FileCreated{ID: f.ID, Expires: f.Expires}
	_, err = s.offer(ctx, f, c.Cert, req)
	var ae *api.Error
	switch {
	case refusal(err) && errors.As(err, &ae):
		// Refused for good: nothing stays here either.
		forget()
		return ae
	case err != nil:
		// Unreachable, or a transient refusal (its disk full, say).
		s.log.Debug("peer did not take the offer; the file waits for it", "file", f.ID, "domain", a.Domain, "err", logged(err))
		out.Waiting = a.Domain
	}
	s.log.Debug("file upload for a peer created", "file", f.ID, "size", f.Size)
	return writeJSON(w, out)
}

// offer sends the peer the file's creation; the peer answers the same for
// the same file again, with its offset. A refusal is an *api.Error.
func (s *Service) offer(ctx context.Context, f store.StoredFile, cert []byte, req api.FileCreate) (PeerFileState, error) {
	a, err := ident.ParseAccount(f.Recipient)
	if err != nil {
		return PeerFileState{}, err
	}
	body, _ := json.Marshal(Offer{OriginID: f.ID, FileCreate: req})
	var st PeerFileState
	_, err = s.peers.Do(ctx, a.Domain, http.MethodPost, PathPeerFiles, cert, nil, body, &st)
	if err != nil {
		return st, err
	}
	if err := st.check(); err != nil || st.Offset > f.Size {
		return st, fmt.Errorf("%s: malformed answer to an offer: %v", a.Domain, err)
	}
	return st, nil
}

// inbound is the recipient's node taking a peer's offer: the rules of a
// local upload, with this node's limits and its user's side of the
// contact gate, the slots taken and proven by the remote device.
func (s *Service) inbound(ctx context.Context, w http.ResponseWriter, r *http.Request, c Caller) error {
	o, err := ParseOffer(r.Body)
	if err != nil {
		return badRequest(err)
	}
	if f, err := s.st.InboundFile(ctx, c.Origin, o.OriginID); err == nil {
		return s.writeInbound(ctx, w, f, c)
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	// This node's policy for its user (size, quota, expiry) applies to
	// what the user receives from a peer cluster; the quota counts the
	// remote sending account's files here.
	lim := s.limitsFor(ctx, o.Recipient)
	if o.Size > lim.MaxFileSize {
		return apiErr(http.StatusRequestEntityTooLarge, api.CodeFileTooLarge, "%d bytes: %s takes files of at most %d bytes", o.Size, s.domain, lim.MaxFileSize)
	}
	rcpt, err := s.mutual(ctx, c, o.Recipient)
	if err != nil {
		return err
	}
	var uses []store.SlotUse
	var targets []store.FileTarget
	for _, u := range o.Slots {
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
	now := s.now()
	// The file keeps the sender's node's id where it is free here, so
	// sender and recipients name it alike, as within one cluster.
	f := store.StoredFile{ID: o.OriginID, RecipientAccount: rcpt.ID, Size: o.Size, Header: o.Header, State: api.FileUploading,
		Created: now, Expires: now.Add(lim.Expiry), RemoteSender: c.Account + "/" + c.Device, RemoteAccount: c.Account,
		Origin: c.Origin, OriginID: o.OriginID}
	if _, err := s.st.StoredFile(ctx, f.ID); err == nil {
		f.ID = newID()
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	flim := store.FileLimits{PairCap: s.lim.PairCap, Quota: lim.Quota}
	err = s.st.CreateInboundFile(ctx, f, uses, c.DeviceID, targets, flim, now)
	if errors.Is(err, store.ErrExists) && f.ID == o.OriginID {
		if _, ierr := s.st.InboundFile(ctx, c.Origin, o.OriginID); errors.Is(ierr, store.ErrNotFound) {
			// The id was taken meanwhile by a file of another origin.
			f.ID = newID()
			err = s.st.CreateInboundFile(ctx, f, uses, c.DeviceID, targets, flim, now)
		}
	}
	var se *store.SlotError
	switch {
	case errors.Is(err, store.ErrExists):
		// The same offer at once: the first one stored it.
		f, err := s.st.InboundFile(ctx, c.Origin, o.OriginID)
		if err != nil {
			return err
		}
		return s.writeInbound(ctx, w, f, c)
	case errors.Is(err, store.ErrPairCap):
		return apiErr(http.StatusConflict, api.CodePairCap, "%d files to %s wait already; they go once delivered or expired", s.lim.PairCap, rcpt.Name)
	case errors.Is(err, store.ErrStorageFull):
		return apiErr(http.StatusInsufficientStorage, api.CodeQuota, "%s keeps at most %d bytes of files from %s", s.domain, lim.Quota, c.Account)
	case errors.As(err, &se):
		return slotError(se.Err, se.SlotID)
	case err != nil:
		return err
	}
	if err := s.blobs.Create(f.ID); err != nil {
		if derr := s.st.DeleteFile(ctx, f.ID); derr != nil {
			s.log.Error("forget file after a failed create", "file", f.ID, "err", derr)
		}
		return err
	}
	s.log.Debug("file from a peer created", "file", f.ID, "size", f.Size)
	return s.writeInbound(ctx, w, f, c)
}

// sentBy reports whether c is the device that sends f.
func sentBy(f store.StoredFile, c Caller) bool {
	if f.RemoteSender != "" || c.Remote {
		return c.Remote && f.Origin == c.Origin && f.RemoteSender == c.Account+"/"+c.Device
	}
	return f.SenderDevice == c.DeviceID
}

// inboundState answers the sending node how its file stands here.
func (s *Service) inboundState(ctx context.Context, w http.ResponseWriter, r *http.Request, c Caller) error {
	f, err := s.st.StoredFile(ctx, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && !sentBy(f, c)) {
		return apiErr(http.StatusNotFound, api.CodeNotFound, "no file %q from this device", r.PathValue("id"))
	}
	if err != nil {
		return err
	}
	return s.writeInbound(ctx, w, f, c)
}

func (s *Service) writeInbound(ctx context.Context, w http.ResponseWriter, f store.StoredFile, c Caller) error {
	if !sentBy(f, c) {
		return apiErr(http.StatusConflict, api.CodeBadRequest, "file %q was offered by another device", f.OriginID)
	}
	ts, err := s.st.FileTargets(ctx, f.ID)
	if err != nil {
		return err
	}
	st := PeerFileState{ID: f.ID, Offset: f.Offset, State: f.State, Devices: []api.FileDevice{}}
	for _, t := range ts {
		st.Devices = append(st.Devices, api.FileDevice{Device: t.Device, Delivered: t.Acked != nil, At: t.Acked})
	}
	return writeJSON(w, st)
}

// outboundDevices adds a forwarded file's remote devices to its entry
// for the sender, asking the peer how they stand when some have not taken
// it yet (briefly: the list does not wait for a peer that is down).
func (s *Service) outboundDevices(ctx context.Context, f store.StoredFile, o *api.OutgoingFile) error {
	fw, err := s.st.FileForward(ctx, f.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	rts, err := s.st.RemoteFileTargets(ctx, f.ID)
	if err != nil {
		return err
	}
	open := false
	for _, t := range rts {
		open = open || t.Acked == nil
	}
	if fw.State == store.ForwardSent && open && s.peers != nil && s.unseen.ready(fw.Domain, s.now()) {
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		s.refreshRemote(qctx, f, fw, rts)
		cancel()
		if rts, err = s.st.RemoteFileTargets(ctx, f.ID); err != nil {
			return err
		}
	}
	all := true
	for _, d := range o.Devices {
		all = all && d.Delivered
	}
	for _, t := range rts {
		o.Devices = append(o.Devices, api.FileDevice{Device: t.Device, Delivered: t.Acked != nil, At: t.Acked})
		all = all && t.Acked != nil
	}
	switch fw.State {
	case store.ForwardWaiting:
		if f.State != api.FileUploading {
			o.Waiting = fw.Domain
		}
	case store.ForwardRefused:
		o.Refused = fw.Error
	}
	if o.State == api.FileDelivered && !all {
		o.State = api.FileComplete // here the local copies went; the peer's devices have yet to take theirs
	}
	return nil
}

// refreshRemote records the remote devices that took a forwarded file.
func (s *Service) refreshRemote(ctx context.Context, f store.StoredFile, fw store.FileForward, rts []store.RemoteFileTarget) {
	cert, err := s.senderCert(ctx, f)
	if err != nil {
		return
	}
	var st PeerFileState
	_, err = s.peers.Do(ctx, fw.Domain, http.MethodGet, PathPeerFiles+"/"+fw.RemoteID, cert, nil, nil, &st)
	if err == nil {
		err = st.check()
	}
	if err != nil {
		s.log.Debug("peer file state not read", "file", f.ID, "err", logged(err))
		var ae *api.Error
		if !errors.As(err, &ae) {
			// Down: a list of many files does not wait for it once each.
			s.unseen.failed(fw.Domain, s.now())
		}
		return
	}
	for _, d := range st.Devices {
		if !d.Delivered {
			continue
		}
		for _, t := range rts {
			if t.Device == d.Device && t.Acked == nil {
				at := s.now()
				if d.At != nil {
					at = *d.At
				}
				if err := s.st.AckRemoteFileTarget(ctx, f.ID, t.Device, at); err != nil {
					s.log.Error("record a remote delivery", "file", f.ID, "err", err)
				}
			}
		}
	}
}

// senderCert is the certificate of the device that sent f, which the
// peer checks against the CA it pinned for this cluster.
func (s *Service) senderCert(ctx context.Context, f store.StoredFile) ([]byte, error) {
	acct, name, ok := strings.Cut(f.Sender, "/")
	if !ok {
		return nil, fmt.Errorf("file %s: sender %q", f.ID, f.Sender)
	}
	d, err := s.st.DeviceByName(ctx, acct, name)
	if err != nil {
		return nil, fmt.Errorf("file %s: sender device: %w", f.ID, err)
	}
	if d.Status != store.StatusActive {
		return nil, fmt.Errorf("file %s: sender device is %s", f.ID, d.Status)
	}
	return d.Cert, nil
}

// forwardPending reports whether the content of id still has to go to a
// peer's node.
func (s *Service) forwardPending(ctx context.Context, id string) bool {
	fw, err := s.st.FileForward(ctx, id)
	return err == nil && fw.State == store.ForwardWaiting
}

// peerBackoff remembers the peers that could not be reached, so that
// listing files asks a peer that is down again only after a pause.
type peerBackoff struct {
	mu   sync.Mutex
	last map[string]time.Time
}

const peerPause = 30 * time.Second

func (p *peerBackoff) ready(domain string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.last[domain]
	return !ok || now.Sub(t) >= peerPause
}

func (p *peerBackoff) failed(domain string, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil || len(p.last) > 1024 {
		p.last = map[string]time.Time{}
	}
	p.last[domain] = now
}
