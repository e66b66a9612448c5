// Package directory is the node's number directory behind the private API
// (mutual TLS, the device certificate is the caller): claiming a number by
// a one-time code delivered to the account's devices, publishing the
// number's SIP address and the account's device certificates, replacing
// them from a new device after a delay the other devices can cancel, and
// lookups and hashed discovery within a per-device budget. No query is
// logged or stored: lookups and discoveries only read, and the budget
// holds a count. docs/directory.md describes the API.
package directory

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"sync"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/e164"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/store"
)

// Limits are the node's settings for the directory.
type Limits struct {
	ClaimTTL     time.Duration // life of a claim and its code
	MaxAttempts  int           // wrong codes before a claim is dropped
	MaxOpen      int           // claims in progress per account
	ReplaceDelay time.Duration // from a replacement's request to its publication
	QueryBudget  int           // lookups plus discovered hashes per device and window
	QueryWindow  time.Duration
}

// DefaultLimits are the defaults of the node's configuration.
var DefaultLimits = Limits{ClaimTTL: 10 * time.Minute, MaxAttempts: 5, MaxOpen: 3,
	ReplaceDelay: 24 * time.Hour, QueryBudget: 1000, QueryWindow: time.Hour}

// Validate checks the limits.
func (l Limits) Validate() error {
	if l.ClaimTTL < time.Second || l.MaxAttempts < 1 || l.MaxAttempts > 20 || l.MaxOpen < 1 ||
		l.ReplaceDelay < 0 || l.QueryBudget < 1 || l.QueryWindow < time.Second {
		return errors.New("directory limits: directory_claim_ttl >= 1s, 1 <= directory_claim_attempts <= 20, directory_open_claims >= 1, directory_replace_delay >= 0, directory_query_budget >= 1, directory_query_window >= 1s")
	}
	return nil
}

// Caller is the authenticated device of a request.
type Caller struct {
	AccountID int64
	Account   string // user@domain
	DeviceID  int64
	Device    string // the device's name
}

// Store is what the service needs of the node's state.
type Store interface {
	store.Directory
	Devices(ctx context.Context, accountID int64) ([]store.Device, error)
}

// Service serves the directory API.
type Service struct {
	st     Store
	lim    Limits
	domain string
	log    *slog.Logger
	now    func() time.Time

	// Changed, when set, is called after the published set changed, with
	// every entry (to feed the signed zone).
	Changed func(ctx context.Context, entries []store.DirEntry)

	mu     sync.Mutex
	pushed []byte // hash of the entries Changed was given last
}

// New makes a service for the accounts of domain.
func New(st Store, lim Limits, domain string, log *slog.Logger) *Service {
	return &Service{st: st, lim: lim, domain: domain, log: log, now: time.Now}
}

// SetClock replaces the clock (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// Auth finds the caller of a request; its errors are *api.Error.
type Auth func(r *http.Request) (Caller, error)

// Routes registers the API on m.
func (s *Service) Routes(m *http.ServeMux, auth Auth) {
	h := func(f func(ctx context.Context, r *http.Request, c Caller) (any, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			c, err := auth(r)
			var v any
			if err == nil {
				v, err = f(r.Context(), r, c)
			}
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			json.NewEncoder(w).Encode(v)
		}
	}
	m.HandleFunc("POST "+api.PathDirClaims, h(s.begin))
	m.HandleFunc("POST "+api.PathDirClaims+"/{id}", h(s.prove))
	m.HandleFunc("GET "+api.PathDirNotices, h(s.notices))
	m.HandleFunc("DELETE "+api.PathDirReplacements+"/{id}", h(s.cancel))
	m.HandleFunc("POST "+api.PathDirLookup, h(s.lookup))
	m.HandleFunc("POST "+api.PathDirDiscover, h(s.discover))
}

func apiErr(status int, code, format string, a ...any) *api.Error {
	return &api.Error{Status: status, Code: code, Message: fmt.Sprintf(format, a...)}
}

// writeError answers with err. Only internal errors are logged, by kind
// of request and without the body: the path names no number.
func (s *Service) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *api.Error
	if !errors.As(err, &ae) {
		s.log.Error("directory request failed", "method", r.Method, "pattern", r.Pattern, "err", err)
		ae = apiErr(http.StatusInternalServerError, api.CodeInternal, "internal error; the operator can find it in the server log")
	}
	if ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int(ae.RetryAfter+0.999)))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(ae.Status)
	json.NewEncoder(w).Encode(api.ErrorBody{Error: ae})
}

func decode(r *http.Request, v any) error {
	if err := api.Decode(r.Body, v); err != nil {
		return apiErr(http.StatusBadRequest, api.CodeBadRequest, "malformed request: %v", err)
	}
	return nil
}

// ParseClaimBegin reads and checks a claim's first request.
func ParseClaimBegin(body []byte) (string, error) {
	var req api.DirClaimBegin
	if err := api.Decode(bytes.NewReader(body), &req); err != nil {
		return "", err
	}
	if err := e164.Canonical(req.Number); err != nil {
		return "", fmt.Errorf("number: %w", err)
	}
	return req.Number, nil
}

// ParseClaimProve reads a claim's answer: the code, 8 digits.
func ParseClaimProve(body []byte) (string, error) {
	var req api.DirClaimProve
	if err := api.Decode(bytes.NewReader(body), &req); err != nil {
		return "", err
	}
	if len(req.Code) != codeDigits {
		return "", fmt.Errorf("code: want %d digits", codeDigits)
	}
	for _, c := range []byte(req.Code) {
		if c < '0' || c > '9' {
			return "", fmt.Errorf("code: want %d digits", codeDigits)
		}
	}
	return req.Code, nil
}

// ParseLookup reads a lookup: exactly one canonical number or account.
func ParseLookup(body []byte) (api.DirLookup, error) {
	var req api.DirLookup
	if err := api.Decode(bytes.NewReader(body), &req); err != nil {
		return req, err
	}
	switch {
	case (req.Number == "") == (req.AOR == ""):
		return req, errors.New("want one of number and aor")
	case req.Number != "":
		if err := e164.Canonical(req.Number); err != nil {
			return req, fmt.Errorf("number: %w", err)
		}
	default:
		a, err := ident.ParseAccount(req.AOR)
		if err != nil {
			return req, fmt.Errorf("aor: %w", err)
		}
		req.AOR = a.String()
	}
	return req, nil
}

// ParseDiscover reads a discovery: 1 to api.MaxDiscover hashes of
// e164.HashLen bytes.
func ParseDiscover(body []byte) ([][]byte, error) {
	var req api.DirDiscover
	if err := api.Decode(bytes.NewReader(body), &req); err != nil {
		return nil, err
	}
	if len(req.Hashes) == 0 || len(req.Hashes) > api.MaxDiscover {
		return nil, fmt.Errorf("hashes: want 1 to %d", api.MaxDiscover)
	}
	for i, h := range req.Hashes {
		if len(h) != e164.HashLen {
			return nil, fmt.Errorf("hash %d: want %d bytes, got %d", i, e164.HashLen, len(h))
		}
	}
	return req.Hashes, nil
}

func readBody(r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	if _, err := b.ReadFrom(http.MaxBytesReader(nil, r.Body, api.MaxBody)); err != nil {
		return nil, apiErr(http.StatusBadRequest, api.CodeBadRequest, "request body: %v", err)
	}
	return b.Bytes(), nil
}

func badRequest(err error) error {
	return apiErr(http.StatusBadRequest, api.CodeBadRequest, "%v", err)
}

// codeDigits is the length of a claim's code: 10^8 codes against at most
// MaxAttempts guesses in ClaimTTL.
const codeDigits = 8

func newCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(100_000_000))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return fmt.Sprintf("%0*d", codeDigits, n)
}

func newID() string {
	b := make([]byte, 15)
	rand.Read(b)
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)
}

// codeHash binds a code to its claim, so a stored hash is no use for
// another claim.
func codeHash(claim, code string) []byte {
	h := sha256.Sum256([]byte("phonex/v1/directory-claim\x00" + claim + "\x00" + code))
	return h[:]
}
