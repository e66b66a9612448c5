package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/filecrypt"
)

// The node's file service (docs/files-node.md): slots, resumable uploads
// and downloads of ciphertext the device made. Nothing here encrypts;
// the caller hands in opaque slots, headers and ciphertext.

// uploadChunk is how much one PATCH carries: a broken connection costs at
// most the unsynced part of one chunk, and progress moves in steps the
// node has acknowledged.
const uploadChunk = 8 << 20

// transferRetries bounds the reconnections of one upload or download.
const transferRetries = 5

// PutFileSlots stores slots of this device for contact.
func (p *Profile) PutFileSlots(ctx context.Context, contact string, slots []api.FileSlot) (api.FileSlotCount, error) {
	var out api.FileSlotCount
	err := p.c.call(ctx, "PUT", api.PathFileSlots, api.FileSlotsPut{Contact: contact, Slots: slots}, &out)
	return out, err
}

// FileSlotCounts tells, per contact, how many slots this device has left.
func (p *Profile) FileSlotCounts(ctx context.Context) ([]api.FileSlotCount, error) {
	var out api.FileSlotCounts
	err := p.c.call(ctx, "GET", api.PathFileSlots, nil, &out)
	return out.Contacts, err
}

// TakeFileSlots is step 1: one sealed slot per device of recipient.
func (p *Profile) TakeFileSlots(ctx context.Context, recipient string) (api.FileSlotTaken, error) {
	var out api.FileSlotTaken
	err := p.c.call(ctx, "POST", api.PathFileSlotTake, api.FileSlotTake{Recipient: recipient}, &out)
	return out, err
}

// ProveFileSlot is step 2: the proof of an opened slot
// (filecrypt.Slot.Proof) for its second nonce.
func (p *Profile) ProveFileSlot(ctx context.Context, device, slotID string, proof []byte) ([]byte, error) {
	var out api.FileSlotProven
	err := p.c.call(ctx, "POST", api.PathFileSlotProve, api.FileSlotProve{Device: device, SlotID: slotID, Proof: proof}, &out)
	return out.Nonce2, err
}

// CreateFile starts an upload.
func (p *Profile) CreateFile(ctx context.Context, req api.FileCreate) (api.FileCreated, error) {
	var out api.FileCreated
	err := p.c.call(ctx, "POST", api.PathFiles, req, &out)
	return out, err
}

// Files lists incoming and outgoing files.
func (p *Profile) Files(ctx context.Context) (api.FileList, error) {
	var out api.FileList
	err := p.c.call(ctx, "GET", api.PathFiles, nil, &out)
	return out, err
}

// CancelFile withdraws a file this device sends.
func (p *Profile) CancelFile(ctx context.Context, id string) error {
	return p.c.call(ctx, "DELETE", api.PathFiles+"/"+url.PathEscape(id), nil, nil)
}

// AckFile tells the node this device has the file.
func (p *Profile) AckFile(ctx context.Context, id string) error {
	return p.c.call(ctx, "POST", api.PathFiles+"/"+url.PathEscape(id)+"/ack", nil, nil)
}

// raw sends a request without the JSON conventions and without the API
// call's total timeout (a transfer takes as long as it takes); a non-2xx
// answer comes back as *api.Error.
func (c *conn) raw(ctx context.Context, method, path string, body io.Reader, size int64, hdr map[string]string) (*http.Response, error) {
	server := c.nodes.current()
	r, err := http.NewRequestWithContext(ctx, method, "https://"+server+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		r.ContentLength = size
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	hc := &http.Client{Transport: c.hc.Transport}
	res, err := hc.Do(r)
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %v", ErrUnreachable, server, err)
	}
	if res.StatusCode/100 != 2 {
		defer res.Body.Close()
		var eb api.ErrorBody
		if method == http.MethodHead || api.Decode(io.LimitReader(res.Body, api.MaxBody), &eb) != nil || eb.Error == nil {
			code := res.Header.Get(api.HeaderError)
			if code == "" {
				code = api.CodeInternal
			}
			return nil, &api.Error{Status: res.StatusCode, Code: code, Message: "server answered " + res.Status + " (" + code + ")"}
		}
		eb.Error.Status = res.StatusCode
		return nil, eb.Error
	}
	return res, nil
}

// FileOffset is what the node has of an upload of this device.
func (p *Profile) FileOffset(ctx context.Context, id string) (offset, size int64, err error) {
	res, err := p.c.raw(ctx, http.MethodHead, api.PathFiles+"/"+url.PathEscape(id), nil, 0, nil)
	if err != nil {
		return 0, 0, err
	}
	res.Body.Close()
	offset, err1 := strconv.ParseInt(res.Header.Get(api.HeaderUploadOffset), 10, 64)
	size, err2 := strconv.ParseInt(res.Header.Get(api.HeaderUploadLength), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("upload %s: bad offset headers: %w", id, err)
	}
	return offset, size, nil
}

// Progress reports bytes done of a transfer's total.
type Progress func(done, total int64)

// countingReader reports the bytes read through it.
type countingReader struct {
	r        io.Reader
	done     int64
	total    int64
	progress Progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.done += int64(n)
	if c.progress != nil && n > 0 {
		c.progress(c.done, c.total)
	}
	return n, err
}

// retryable tells a broken connection from an answer of the node.
func retryable(err error) bool {
	var ae *api.Error
	return !errors.As(err, &ae) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// UploadFile sends src (size bytes of ciphertext) from the offset the node
// has, so a run after a broken connection or a killed process sends only
// the rest; it reconnects a few times by itself.
func (p *Profile) UploadFile(ctx context.Context, id string, src io.ReaderAt, size int64, progress Progress) error {
	path := api.PathFiles + "/" + url.PathEscape(id)
	failures := 0
	for {
		off, total, err := p.FileOffset(ctx, id)
		if err == nil && total != size {
			return fmt.Errorf("upload %s: the node expects %d bytes, not %d", id, total, size)
		}
		for err == nil {
			n := min(uploadChunk, size-off)
			body := &countingReader{r: io.NewSectionReader(src, off, n), done: off, total: size, progress: progress}
			var res *http.Response
			res, err = p.c.raw(ctx, http.MethodPatch, path, body, n, map[string]string{
				"Content-Type": api.ContentTypeOffset, api.HeaderUploadOffset: strconv.FormatInt(off, 10)})
			if err != nil {
				break
			}
			res.Body.Close()
			if off += n; off == size {
				return nil
			}
		}
		if errors.Is(err, &api.Error{Code: api.CodeUploadComplete}) {
			return nil
		}
		if errors.Is(err, &api.Error{Code: api.CodeOffsetMismatch}) {
			continue // ask the node's offset again
		}
		if !retryable(err) || failures >= transferRetries {
			return fmt.Errorf("upload %s: %w", id, err)
		}
		failures++
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(failures) * 500 * time.Millisecond):
		}
	}
}

// DownloadFile writes a file's ciphertext to dst, resuming after what dst
// already holds (RFC 9110 Range, guarded by If-Range), and reconnects a
// few times by itself.
func (p *Profile) DownloadFile(ctx context.Context, id string, dst *os.File, size int64, progress Progress) error {
	path := api.PathFiles + "/" + url.PathEscape(id)
	failures := 0
	for {
		st, err := dst.Stat()
		if err != nil {
			return err
		}
		off := st.Size()
		if off == size {
			return nil
		}
		if off > size {
			return fmt.Errorf("download %s: %s holds %d bytes, more than the file's %d", id, dst.Name(), off, size)
		}
		hdr := map[string]string{}
		if off > 0 {
			hdr["Range"] = fmt.Sprintf("bytes=%d-", off)
			hdr["If-Range"] = `"` + id + `"`
		}
		res, err := p.c.raw(ctx, http.MethodGet, path, nil, 0, hdr)
		if err == nil {
			if res.StatusCode == http.StatusOK && res.ContentLength >= 0 && res.ContentLength < size {
				// The node holds less than the header declares: chunks are
				// missing at the end, which no retry mends.
				res.Body.Close()
				return fmt.Errorf("download %s: the node's copy has %d of %d bytes: %w", id, res.ContentLength, size, filecrypt.ErrTruncated)
			}
			if res.StatusCode == http.StatusOK && off > 0 {
				// The node sent the whole file: start again from zero.
				if err = dst.Truncate(0); err == nil {
					off = 0
				}
			}
			if err == nil {
				_, err = dst.Seek(off, io.SeekStart)
			}
			if err == nil {
				var n int64
				n, err = io.Copy(dst, &countingReader{r: io.LimitReader(res.Body, size-off), done: off, total: size, progress: progress})
				if err == nil && n == 0 {
					err = fmt.Errorf("the node sent nothing at offset %d", off)
				}
			}
			res.Body.Close()
			if err == nil {
				err = dst.Sync()
			}
			if err == nil {
				continue // the loop checks the length
			}
		}
		if !retryable(err) || failures >= transferRetries {
			return fmt.Errorf("download %s: %w", id, err)
		}
		failures++
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(failures) * 500 * time.Millisecond):
		}
	}
}
