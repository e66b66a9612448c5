package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ca"
)

// conn talks to the home cluster's API, at one of its nodes' addresses
// (failover.go).
type conn struct {
	nodes *nodeList
	hc    *http.Client
}

// newConn pins the CA: either caCert (known) or, at enrollment, the CA in the
// server's chain whose SHA-256 equals fingerprint. found receives that CA.
//
// server is one address or several separated by commas (ParseServers).
// With a known CA any of them may be used, each checked against its own
// host name; a fingerprint pins the CA at the first only.
func newConn(server string, caCert *x509.Certificate, fingerprint string, client *tls.Certificate, found func(*x509.Certificate)) (*conn, error) {
	servers, err := ParseServers(server)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(servers[0])
	tc := &tls.Config{MinVersion: tls.VersionTLS13}
	if client != nil {
		tc.Certificates = []tls.Certificate{*client}
	}
	if caCert != nil {
		pool := x509.NewCertPool()
		pool.AddCert(caCert)
		tc.RootCAs = pool
		// No ServerName: the HTTP transport sets it to the host of the
		// address dialled, so each node is checked under its own name.
	} else {
		servers = servers[:1]
		tc.ServerName = host
		want := ca.NormalizeFingerprint(fingerprint)
		// The usual verification is replaced, not skipped: VerifyConnection
		// finds the pinned CA in the chain and verifies the chain and host
		// name against it.
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			var root *x509.Certificate
			for _, c := range cs.PeerCertificates {
				if ca.Fingerprint(c) == want {
					root = c
				}
			}
			if root == nil {
				return ErrCAMismatch
			}
			if err := checkCA(root); err != nil {
				return err
			}
			pool := x509.NewCertPool()
			pool.AddCert(root)
			if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, DNSName: host}); err != nil {
				return fmt.Errorf("server certificate: %w", err)
			}
			if found != nil {
				found(root)
			}
			return nil
		}
	}
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true, TLSHandshakeTimeout: 10 * time.Second, IdleConnTimeout: 30 * time.Second}
	return &conn{nodes: newNodeList(servers), hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}, nil
}

// checkCA refuses to pin a certificate that is not a self-signed CA: a
// server (leaf) certificate given by mistake would verify the TLS
// connection, and the mistake would show only after the enrollment had
// spent the activation code.
func checkCA(c *x509.Certificate) error {
	if !c.BasicConstraintsValid || !c.IsCA || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		return ErrNotCA
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		return fmt.Errorf("%w: not self-signed: %v", ErrNotCA, err)
	}
	return nil
}

func (c *conn) close() { c.hc.CloseIdleConnections() }

// call sends req as JSON and decodes the answer into resp. API errors come
// back as *api.Error; transport failures wrap ErrUnreachable.
func (c *conn) call(ctx context.Context, method, path string, req, resp any) error {
	var b []byte
	if req != nil {
		var err error
		if b, err = json.Marshal(req); err != nil {
			return err
		}
	}
	var res *http.Response
	server, err := c.nodes.try(func(server string) error {
		var body io.Reader
		if b != nil {
			body = bytes.NewReader(b)
		}
		r, err := http.NewRequestWithContext(ctx, method, "https://"+server+path, body)
		if err != nil {
			return err
		}
		r.Header.Set("Content-Type", "application/json")
		res, err = c.hc.Do(r)
		return err
	})
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, ErrCAMismatch) || errors.Is(err, ErrNotCA) {
			return err
		}
		var ce *tls.CertificateVerificationError
		if errors.As(err, &ce) {
			return fmt.Errorf("server %s presented a certificate this profile does not trust: %w", server, err)
		}
		return fmt.Errorf("%w at %s: %v (is phonexd running there?)", ErrUnreachable, server, err)
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		var eb api.ErrorBody
		if err := api.Decode(io.LimitReader(res.Body, api.MaxBody), &eb); err != nil || eb.Error == nil {
			return fmt.Errorf("server answered %s", res.Status)
		}
		eb.Error.Status = res.StatusCode
		return eb.Error
	}
	if resp == nil {
		io.Copy(io.Discard, io.LimitReader(res.Body, api.MaxBody))
		return nil
	}
	dec := json.NewDecoder(io.LimitReader(res.Body, 4<<20))
	if err := dec.Decode(resp); err != nil {
		return fmt.Errorf("decode answer to %s: %w", path, err)
	}
	return nil
}
