package federation

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/phonex/phonex/internal/store"
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
	res, err := c.client(p).Do(req)
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
