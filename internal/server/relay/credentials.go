package relay

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" // #nosec: the TURN REST format fixes HMAC-SHA1 (coturn's use-auth-secret)
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors of a TURN REST username.
var (
	ErrMalformedUsername = errors.New("relay: username is not EXPIRY:USER")
	ErrExpired           = errors.New("relay: credentials expired")
)

// maxUsername is the bound RFC 8489 §14.3 puts on USERNAME (fewer than 509
// bytes of UTF-8).
const maxUsername = 508

// Credentials are short-lived TURN credentials in the TURN REST format
// (draft-uberti-behave-turn-rest-00 §2.2), the one coturn checks with
// use-auth-secret and static-auth-secret: the username is the expiry in Unix
// seconds, a colon and the user; the password is
// base64(HMAC-SHA1(secret, username)). Any relay holding the secret can
// check them without asking the node, so relays can run apart from it.
type Credentials struct {
	Username string
	Password string
	Expires  time.Time
}

// Issue makes credentials for user valid for ttl from now.
func Issue(secret []byte, user string, ttl time.Duration, now time.Time) Credentials {
	exp := now.Add(ttl).Truncate(time.Second)
	u := strconv.FormatInt(exp.Unix(), 10) + ":" + user
	return Credentials{Username: u, Password: Password(secret, u), Expires: exp}
}

// Password is the password that goes with a TURN REST username.
func Password(secret []byte, username string) string {
	m := hmac.New(sha1.New, secret)
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// ParseUsername splits a TURN REST username into its expiry and user. The
// expiry is decimal Unix seconds; the user is what the node put there (an
// account), non-empty printable UTF-8.
func ParseUsername(username string) (time.Time, string, error) {
	if len(username) > maxUsername || !utf8.ValidString(username) {
		return time.Time{}, "", ErrMalformedUsername
	}
	ts, user, ok := strings.Cut(username, ":")
	if !ok || ts == "" || len(ts) > 12 || user == "" {
		return time.Time{}, "", ErrMalformedUsername
	}
	for _, c := range ts {
		if c < '0' || c > '9' {
			return time.Time{}, "", ErrMalformedUsername
		}
	}
	for _, c := range user {
		if c < 0x20 || c == 0x7f {
			return time.Time{}, "", ErrMalformedUsername
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, "", ErrMalformedUsername
	}
	return time.Unix(sec, 0), user, nil
}

// Check parses username and refuses it once expired.
func Check(username string, now time.Time) (string, error) {
	exp, user, err := ParseUsername(username)
	if err != nil {
		return "", err
	}
	if !now.Before(exp) {
		return "", ErrExpired
	}
	return user, nil
}

// SecretFile is the relay's shared secret inside the data directory.
const SecretFile = "relay.secret"

// LoadSecret reads a shared secret file: one line of text, used as it is
// (without surrounding white space) as the HMAC key, the way coturn uses
// static-auth-secret, so the same line can go into turnserver.conf.
func LoadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("relay secret: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if len(s) < 16 {
		return nil, fmt.Errorf("relay secret %s: shorter than 16 characters", path)
	}
	return []byte(s), nil
}

// EnsureSecret loads path, creating it with 256 random bits (hex) first if
// it does not exist.
func EnsureSecret(path string) ([]byte, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		b := make([]byte, 32)
		rand.Read(b)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("relay secret: %w", err)
		}
		_, werr := f.WriteString(hex.EncodeToString(b) + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return nil, fmt.Errorf("relay secret: %w", werr)
		}
	}
	return LoadSecret(path)
}

// Pseudonym is the user part the node puts in an account's credentials: a
// MAC of the account under the shared secret (HMAC-SHA256, first 80 bits,
// base32), the same for all of an account's devices so that the per-user
// quotas count them together, but not the account's name, so that a relay
// run apart from the node, its logs and anyone reading usernames on the
// wire learn no names.
func Pseudonym(secret []byte, account string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("phonex/v1/turn-user\x00" + account))
	return strings.ToLower(base32.StdEncoding.EncodeToString(m.Sum(nil)[:10]))
}
