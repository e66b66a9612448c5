// Package adminauth holds the admin panel's administrators: their creation
// and removal (for 'phonexd admin' and the panel alike), the password hash
// (Argon2id, RFC 9106), the second factor (TOTP, RFC 6238), sign-in with
// lock-out, and sessions.
package adminauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/totp"
)

// Errors callers branch on.
var (
	ErrBadName      = errors.New("administrator name must be 1-64 letters, digits, '.', '_' or '-'")
	ErrWeakPassword = errors.New("administrator password must have at least 12 characters")
	// ErrSignIn is every refused sign-in, so the answer does not tell a
	// wrong name from a wrong password or code, or a lock-out.
	ErrSignIn    = errors.New("sign-in refused: wrong name, password or code, or too many failures")
	ErrNoSession = errors.New("no valid session")
)

// Argon2id parameters: RFC 9106 §4 second recommended option scaled to the
// OWASP minimum for a server (m = 19 MiB, t = 2, p = 1), so a sign-in
// costs tens of milliseconds on the small machines a node runs on.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

var b64 = base64.RawStdEncoding

// HashPassword returns the PHC string of an Argon2id hash with a fresh salt.
func HashPassword(pw string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	k := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(k))
}

// CheckPassword compares pw with a PHC Argon2id string in constant time.
func CheckPassword(phc, pw string) (bool, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("password hash: not an argon2id PHC string")
	}
	var v int
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, fmt.Errorf("password hash: version %q", parts[2])
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || m > 1<<22 || t == 0 || t > 64 || p == 0 {
		return false, fmt.Errorf("password hash: parameters %q", parts[3])
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, fmt.Errorf("password hash: salt: %w", err)
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, fmt.Errorf("password hash: key: %v", err)
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummyHash is checked against when the name is unknown, so that case costs
// the same time as a wrong password.
var dummyHash = HashPassword("phonexd: no such administrator")

// Enrollment is what an administrator needs to set up the second factor.
type Enrollment struct {
	Admin  string `json:"admin"`
	Secret string `json:"totp_secret"` // base32, for typing into an app
	URI    string `json:"otpauth_uri"`
}

// Service manages administrators on a store.
type Service struct {
	St     store.Store
	Issuer string // shown in authenticator apps: "PhoneX " + domain
	Now    func() time.Time

	LockAfter   int           // failed sign-ins before a lock-out
	LockFor     time.Duration // how long it lasts
	IdleTimeout time.Duration // a session unused this long ends
	MaxAge      time.Duration // a session ends this long after sign-in
}

// NewService has the panel's defaults.
func NewService(st store.Store, domain string) *Service {
	return &Service{St: st, Issuer: "PhoneX " + domain, Now: time.Now,
		LockAfter: 5, LockFor: 15 * time.Minute, IdleTimeout: 15 * time.Minute, MaxAge: 8 * time.Hour}
}

func checkNew(name, pw string) error {
	if !nameRE.MatchString(name) {
		return ErrBadName
	}
	if len([]rune(pw)) < 12 {
		return ErrWeakPassword
	}
	return nil
}

func (s *Service) enrollment(name string, key []byte) Enrollment {
	return Enrollment{Admin: name, Secret: totp.EncodeSecret(key), URI: totp.URI(s.Issuer, name, key)}
}

// Add creates an administrator and returns its second-factor enrollment.
func (s *Service) Add(ctx context.Context, name, pw string) (Enrollment, error) {
	if err := checkNew(name, pw); err != nil {
		return Enrollment{}, err
	}
	key := totp.NewSecret()
	a := store.AdminAccount{Name: name, PassHash: HashPassword(pw), TOTPSecret: key, Created: s.Now().UTC()}
	if err := s.St.CreateAdmin(ctx, a); err != nil {
		return Enrollment{}, fmt.Errorf("add administrator: %w", err)
	}
	return s.enrollment(name, key), nil
}

// Reset gives an administrator a new password and a new second factor,
// lifts its lock-out and ends its sessions.
func (s *Service) Reset(ctx context.Context, name, pw string) (Enrollment, error) {
	if err := checkNew(name, pw); err != nil {
		return Enrollment{}, err
	}
	key := totp.NewSecret()
	if err := s.St.ResetAdmin(ctx, name, HashPassword(pw), key); err != nil {
		return Enrollment{}, fmt.Errorf("reset administrator %s: %w", name, err)
	}
	return s.enrollment(name, key), nil
}

// Remove deletes an administrator and its sessions.
func (s *Service) Remove(ctx context.Context, name string) error {
	if err := s.St.DeleteAdmin(ctx, name); err != nil {
		return fmt.Errorf("remove administrator %s: %w", name, err)
	}
	return nil
}

// AdminInfo is one line of 'phonexd admin list'.
type AdminInfo struct {
	Admin   string    `json:"admin"`
	Created time.Time `json:"created"`
	Locked  bool      `json:"locked,omitempty"`
}

// List lists the administrators.
func (s *Service) List(ctx context.Context) ([]AdminInfo, error) {
	as, err := s.St.AdminAccounts(ctx)
	if err != nil {
		return nil, err
	}
	now := s.Now()
	out := []AdminInfo{}
	for _, a := range as {
		out = append(out, AdminInfo{Admin: a.Name, Created: a.Created.UTC().Truncate(time.Second), Locked: now.Before(a.LockedUntil)})
	}
	return out, nil
}

// Check verifies a password and a one-time code. Every refusal is
// ErrSignIn (wrapping the reason for the log) and counts towards the
// lock-out; a locked administrator is refused without a check.
func (s *Service) Check(ctx context.Context, name, pw, code string) error {
	now := s.Now()
	a, err := s.St.AdminAccount(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		CheckPassword(dummyHash, pw)
		return fmt.Errorf("%w (unknown name)", ErrSignIn)
	} else if err != nil {
		return err
	}
	if now.Before(a.LockedUntil) {
		return fmt.Errorf("%w (locked until %s)", ErrSignIn, a.LockedUntil.UTC().Format(time.RFC3339))
	}
	pwOK, err := CheckPassword(a.PassHash, pw)
	if err != nil {
		return err
	}
	step, codeErr := totp.Verify(a.TOTPSecret, code, now)
	reason := ""
	switch {
	case !pwOK:
		reason = "wrong password"
	case codeErr != nil:
		reason = codeErr.Error()
	default:
		err := s.St.AdminSignedIn(ctx, name, step)
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrReplayed) {
			return err
		}
		reason = "one-time code already used"
	}
	if _, err := s.St.AdminFailure(ctx, name, now, s.LockAfter, s.LockFor); err != nil && !errors.Is(err, store.ErrAdminLocked) {
		return err
	}
	return fmt.Errorf("%w (%s)", ErrSignIn, reason)
}

// Session is a signed-in browser as the panel sees it.
type Session struct {
	ID     string // the cookie value; only its hash is stored
	Admin  string
	CSRF   string // the form token bound to this session
	AuthAt time.Time
}

func idHash(id string) []byte {
	h := sha256.Sum256([]byte("phonexd/admin-session\x00" + id))
	return h[:]
}

func random() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Start creates a session for an administrator who just passed Check.
func (s *Service) Start(ctx context.Context, admin string) (Session, error) {
	now := s.Now()
	ss := Session{ID: random(), Admin: admin, CSRF: random(), AuthAt: now}
	err := s.St.CreateAdminSession(ctx, store.AdminSession{IDHash: idHash(ss.ID), Admin: admin, CSRF: []byte(ss.CSRF), Created: now, Seen: now, AuthAt: now})
	return ss, err
}

// Session looks up a cookie value: ErrNoSession when unknown, idle past
// IdleTimeout or older than MaxAge (an expired one is deleted). A valid
// session's idle clock restarts.
func (s *Service) Session(ctx context.Context, id string) (Session, error) {
	if id == "" || len(id) > 128 {
		return Session{}, ErrNoSession
	}
	h := idHash(id)
	st, err := s.St.AdminSession(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return Session{}, ErrNoSession
	} else if err != nil {
		return Session{}, err
	}
	now := s.Now()
	if now.Sub(st.Seen) > s.IdleTimeout || now.Sub(st.Created) > s.MaxAge {
		s.St.DeleteAdminSession(ctx, h)
		return Session{}, ErrNoSession
	}
	if err := s.St.TouchAdminSession(ctx, h, now); err != nil {
		return Session{}, err
	}
	return Session{ID: id, Admin: st.Admin, CSRF: string(st.CSRF), AuthAt: st.AuthAt}, nil
}

// End signs a session out.
func (s *Service) End(ctx context.Context, id string) error {
	return s.St.DeleteAdminSession(ctx, idHash(id))
}

// Prune forgets expired sessions.
func (s *Service) Prune(ctx context.Context) (int, error) {
	now := s.Now()
	return s.St.PruneAdminSessions(ctx, now.Add(-s.IdleTimeout), now.Add(-s.MaxAge))
}

// ValidCSRF compares a submitted form token with the session's in
// constant time.
func (ss Session) ValidCSRF(token string) bool {
	return ss.CSRF != "" && subtle.ConstantTimeCompare([]byte(ss.CSRF), []byte(token)) == 1
}

// ValidName reports whether name is a possible administrator name.
func ValidName(name string) bool { return nameRE.MatchString(name) }
