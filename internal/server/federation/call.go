package federation

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/phonex/phonex/internal/store"
)

// A body over bulkFrom bytes gets hc0Timeout plus a second per bulkRate
// bytes (32 KiB/s, a slow link), instead of the client's fixed bound.
const (
	bulkFrom   = 256 << 10
	bulkRate   = 32 << 10
	hc0Timeout = 15 * time.Second
)

// Do calls method path on the API of domain's peer for the device whose
// certificate is deviceCert, with hdr and body (nil: none), and decodes a
// JSON answer into out (nil: the answer's body is not read beyond its
// bound). It returns the answer's header, also with a refusal of the
// peer, which comes back as its *api.Error.
func (c *Client) Do(ctx context.Context, domain, method, path string, deviceCert []byte, hdr http.Header, body []byte, out any) (http.Header, error) {
	p, err := c.Pins.St.Peer(ctx, domain)
	if errors.Is(err, store.ErrNotFound) {
		return http.Header{}, fmt.Errorf("%s: %w", domain, ErrUnknownPeer)
	}
	if err != nil {
		return http.Header{}, err
	}
	u := url.URL{Scheme: "https", Host: p.API, Path: path}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return http.Header{}, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set(HeaderDeviceCert, EncodeCert(deviceCert))
	hc := c.client(p)
	if len(body) > bulkFrom {
		// A large body may take longer than a call's bound on a slow
		// link: its own bound grows with its size.
		hc = &http.Client{Transport: hc.Transport}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, hc0Timeout+time.Duration(len(body)/bulkRate)*time.Second)
		defer cancel()
		req = req.WithContext(ctx)
	}
	res, err := hc.Do(req)
	if err != nil {
		return http.Header{}, fmt.Errorf("peer %s: %w", domain, err)
	}
	defer res.Body.Close()
	ans, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer+1))
	if err != nil {
		return res.Header, fmt.Errorf("peer %s: %w", domain, err)
	}
	if res.StatusCode/100 == 2 && (out == nil || res.StatusCode == http.StatusNoContent) {
		return res.Header, nil
	}
	if err := DecodeAnswer(res.StatusCode, ans, out); err != nil {
		return res.Header, fmt.Errorf("peer %s: %w", domain, err)
	}
	return res.Header, nil
}
