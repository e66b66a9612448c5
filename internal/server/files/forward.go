package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/store"
)

// The forward of a finished file to the recipient's node: the offer
// (again, if the peer was down when the sender created the upload), then
// the ciphertext from the peer's offset in chunks, each answered with
// the bytes the peer made durable, as a device uploads (tus core 1.0.0).
// The peer commits the file, and only then is the forward done. A peer
// that cannot be reached is retried after a backoff; one that refuses
// for good (not a contact any more, a slot expired, its quota) ends the
// forward, and the sender sees the refusal.

// Backoff of a peer that did not take a file, as for messages.
const (
	forwardFirstRetry = 500 * time.Millisecond
	forwardMaxRetry   = 30 * time.Second
	forwardChunk      = 4 << 20
)

// kickForwards wakes the forwarder.
func (s *Service) kickForwards() {
	if s.peers == nil {
		return
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// RunForwards forwards finished files to peers' nodes until ctx ends,
// resuming those of before a restart. Each file backs off on its own, so
// one that cannot go (its content unreadable here) holds up no other.
func (s *Service) RunForwards(ctx context.Context) {
	if s.peers == nil {
		return
	}
	next := map[string]time.Time{} // a file's next try
	fails := map[string]int{}
	wait := time.Duration(0)
	for {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-s.kick:
			case <-t.C:
			}
			t.Stop()
		}
		wait = forwardMaxRetry
		fws, err := s.st.WaitingForwards(ctx, 256)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Error("read the files waiting for peers", "err", err)
			continue
		}
		waiting := map[string]bool{}
		for _, fw := range fws {
			waiting[fw.FileID] = true
			if t, ok := next[fw.FileID]; ok && time.Now().Before(t) {
				wait = min(wait, time.Until(t))
				continue
			}
			err := s.forwardOne(ctx, fw)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				fails[fw.FileID]++
				d := min(forwardFirstRetry<<min(fails[fw.FileID]-1, 10), forwardMaxRetry)
				next[fw.FileID] = time.Now().Add(d)
				wait = min(wait, d)
				s.log.Debug("file forward deferred", "file", fw.FileID, "domain", fw.Domain, "retry", d, "err", logged(err))
				continue
			}
			delete(fails, fw.FileID)
			delete(next, fw.FileID)
		}
		if len(fws) < 256 {
			for id := range next {
				if !waiting[id] {
					delete(next, id)
					delete(fails, id)
				}
			}
		}
	}
}

// forwardOne makes one attempt; an error means try again later.
func (s *Service) forwardOne(ctx context.Context, fw store.FileForward) error {
	unlock, err := s.lock(ctx, fw.FileID)
	if err != nil {
		return err
	}
	defer unlock()
	f, err := s.st.StoredFile(ctx, fw.FileID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // withdrawn or expired meanwhile
	}
	if err != nil {
		return err
	}
	if f.State == api.FileUploading || !s.now().Before(f.Expires) {
		return nil
	}
	cert, err := s.senderCert(ctx, f)
	if err != nil {
		return s.endForward(ctx, fw, api.CodeCertUnknown, err)
	}
	rts, err := s.st.RemoteFileTargets(ctx, f.ID)
	if err != nil {
		return err
	}
	req := api.FileCreate{Recipient: f.Recipient, Size: f.Size, Header: f.Header}
	for _, t := range rts {
		req.Slots = append(req.Slots, api.FileSlotUse{Device: t.Device, SlotID: t.SlotID, Nonce2: t.Nonce2})
	}
	st, err := s.offer(ctx, f, cert, req)
	if refusal(err) {
		return s.endForward(ctx, fw, codeOf(err), err)
	}
	if err != nil {
		return err
	}
	fw.RemoteID = st.ID
	off := st.Offset
	if st.State == api.FileUploading {
		b, err := s.blobs.Open(f.ID)
		if err != nil {
			return fmt.Errorf("file %s: %w", f.ID, err)
		}
		defer b.Close()
		buf := make([]byte, forwardChunk)
		for off < f.Size {
			if _, err := b.Seek(off, io.SeekStart); err != nil {
				return err
			}
			n, err := io.ReadFull(b, buf[:min(int64(len(buf)), f.Size-off)])
			if err != nil {
				return fmt.Errorf("file %s at %d: %w", f.ID, off, err)
			}
			hdr := http.Header{}
			hdr.Set("Content-Type", api.ContentTypeOffset)
			hdr.Set(api.HeaderUploadOffset, strconv.FormatInt(off, 10))
			rh, err := s.peers.Do(ctx, fw.Domain, http.MethodPatch, PathPeerFiles+"/"+st.ID, cert, hdr, buf[:n], nil)
			got, perr := strconv.ParseInt(rh.Get(api.HeaderUploadOffset), 10, 64)
			var ae *api.Error
			switch {
			case err == nil && perr == nil && got > off && got <= f.Size:
				off = got
			case errors.As(err, &ae) && ae.Code == api.CodeOffsetMismatch && perr == nil && got >= 0 && got <= f.Size:
				off = got
			case errors.As(err, &ae) && ae.Code == api.CodeUploadComplete:
				off = f.Size
			case refusal(err):
				return s.endForward(ctx, fw, codeOf(err), err)
			case err != nil:
				return err
			default:
				return fmt.Errorf("%s: no progress at offset %d", fw.Domain, off)
			}
		}
	}
	fw.State, fw.Error = store.ForwardSent, ""
	if err := s.st.SetFileForward(ctx, fw); err != nil {
		return err
	}
	s.log.Debug("file forwarded", "file", f.ID, "size", f.Size)
	return s.dropForwarded(ctx, f)
}

// dropForwarded removes the content once the peer has it and every local
// device (the sender's others) took theirs.
func (s *Service) dropForwarded(ctx context.Context, f store.StoredFile) error {
	ts, err := s.st.FileTargets(ctx, f.ID)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if t.Acked == nil {
			return nil
		}
	}
	if err := s.blobs.Remove(f.ID); err != nil {
		return err
	}
	return s.st.SetFileState(ctx, f.ID, api.FileDelivered)
}

// endForward records a refusal for good; the content goes unless the
// sender's other devices still want it.
func (s *Service) endForward(ctx context.Context, fw store.FileForward, code string, err error) error {
	s.log.Info("file refused by a peer", "file", fw.FileID, "domain", fw.Domain, "code", code)
	fw.State, fw.Error = store.ForwardRefused, code
	if err := s.st.SetFileForward(ctx, fw); err != nil {
		return err
	}
	f, ferr := s.st.StoredFile(ctx, fw.FileID)
	if ferr != nil {
		return nil
	}
	return s.dropForwarded(ctx, f)
}

// refusal reports whether a peer's answer refuses for good: a 4xx other
// than a timeout or a rate limit, and 501 or 507 (its quota).
func refusal(err error) bool {
	var ae *api.Error
	if !errors.As(err, &ae) {
		return false
	}
	switch {
	case ae.Status == http.StatusRequestTimeout || ae.Status == http.StatusTooManyRequests:
		return false
	case ae.Status == http.StatusConflict && ae.Code == api.CodeOffsetMismatch:
		return false
	case ae.Status/100 == 4, ae.Status == http.StatusNotImplemented, ae.Code == api.CodeQuota:
		return true
	}
	return false
}

// logged is what the log says of a peer's error: a refusal's code only,
// since its message may name the accounts.
func logged(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return err.Error()
}

func codeOf(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) && ae.Code != "" {
		return ae.Code
	}
	return api.CodeInternal
}
