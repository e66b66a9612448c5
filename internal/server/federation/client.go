package federation

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/store"
)

// Client calls peers' APIs as this node, on behalf of a local device.
type Client struct {
	Pins *Pins
	Node tls.Certificate // this node's certificate and its CA

	mu sync.Mutex
	tr map[string]*clientEntry // by domain
}

type clientEntry struct {
	key string // the peer's pin and address the client was made for
	c   *http.Client
}

// maxAnswer bounds a peer's answer.
const maxAnswer = 1 << 20

func (c *Client) client(p store.Peer) *http.Client {
	key := p.CASHA256 + " " + p.API
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.tr[p.Domain]; e != nil && e.key == key {
		return e.c
	}
	if c.tr == nil {
		c.tr = map[string]*clientEntry{}
	}
	if e := c.tr[p.Domain]; e != nil {
		e.c.CloseIdleConnections()
	}
	hc := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: c.Pins.ClientTLS(p.Domain, c.Node),
		MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute, ForceAttemptHTTP2: true}}
	c.tr[p.Domain] = &clientEntry{key: key, c: hc}
	return hc
}

// Get calls GET path (with query) on the API of domain's peer for the device
// whose certificate is deviceCert, and decodes the JSON answer into out. A
// refusal of the peer comes back as its *api.Error.
func (c *Client) Get(ctx context.Context, domain, path string, query url.Values, deviceCert []byte, out any) (store.Peer, error) {
	p, err := c.Pins.St.Peer(ctx, domain)
	if errors.Is(err, store.ErrNotFound) {
		return p, fmt.Errorf("%s: %w", domain, ErrUnknownPeer)
	}
	if err != nil {
		return p, err
	}
	u := url.URL{Scheme: "https", Host: p.API, Path: path, RawQuery: query.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return p, err
	}
	req.Header.Set(HeaderDeviceCert, EncodeCert(deviceCert))
	res, err := c.client(p).Do(req)
	if err != nil {
		return p, fmt.Errorf("peer %s: %w", domain, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer+1))
	if err != nil {
		return p, fmt.Errorf("peer %s: %w", domain, err)
	}
	if err := DecodeAnswer(res.StatusCode, body, out); err != nil {
		return p, fmt.Errorf("peer %s: %w", domain, err)
	}
	return p, nil
}

// ErrBadAnswer is a peer's answer that is not what the API sends.
var ErrBadAnswer = errors.New("malformed answer")

// DecodeAnswer reads a peer's answer: its JSON into out for a 2xx, its
// *api.Error (with the status) otherwise.
func DecodeAnswer(status int, body []byte, out any) error {
	if len(body) > maxAnswer {
		return fmt.Errorf("%w: longer than %d bytes", ErrBadAnswer, maxAnswer)
	}
	if status/100 != 2 {
		var eb api.ErrorBody
		if json.Unmarshal(body, &eb) == nil && eb.Error != nil {
			eb.Error.Status = status
			return eb.Error
		}
		return fmt.Errorf("%w: status %d", ErrBadAnswer, status)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%w: %v", ErrBadAnswer, err)
	}
	return nil
}
