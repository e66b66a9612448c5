package proxy

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Digest authentication (RFC 3261 §22.4, RFC 2617 with qop=auth) for
// standard SIP phones, which have per-device credentials and never the
// account password. Nonces are stateless: a timestamp and its HMAC.

const nonceLife = 5 * time.Minute

// HA1 is MD5(username:realm:password) (RFC 2617 §3.2.2.2); the server
// stores it instead of the password.
func HA1(username, realm, password string) []byte {
	h := md5.Sum([]byte(username + ":" + realm + ":" + password))
	out := make([]byte, hex.EncodedLen(len(h)))
	hex.Encode(out, h[:])
	return out
}

func (p *Proxy) nonce(now time.Time) string {
	b := make([]byte, 8, 24)
	binary.BigEndian.PutUint64(b, uint64(now.Unix()))
	m := hmac.New(sha256.New, p.cfg.NonceKey)
	m.Write(b)
	b = append(b, m.Sum(nil)[:16]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (p *Proxy) nonceValid(n string, now time.Time) bool {
	b, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil || len(b) != 24 {
		return false
	}
	m := hmac.New(sha256.New, p.cfg.NonceKey)
	m.Write(b[:8])
	if !hmac.Equal(m.Sum(nil)[:16], b[8:]) {
		return false
	}
	t := time.Unix(int64(binary.BigEndian.Uint64(b[:8])), 0)
	return now.Sub(t) < nonceLife && t.Sub(now) < time.Minute
}

func (p *Proxy) challenge(tx sip.ServerTransaction, req *sip.Request, stale bool) {
	c := fmt.Sprintf(`Digest realm="%s", nonce="%s", algorithm=MD5, qop="auth"`, p.cfg.Domain, p.nonce(time.Now()))
	if stale {
		c += ", stale=true"
	}
	p.respond(tx, req, 401, "Unauthorized", sip.NewHeader("WWW-Authenticate", c))
}

var errDigest = errors.New("digest authentication failed")

// checkDigest verifies credentials against the stored HA1.
func checkDigest(cr *digest.Credentials, method string, ha1 []byte) error {
	if cr.Algorithm != "" && !strings.EqualFold(cr.Algorithm, "MD5") {
		return fmt.Errorf("%w: algorithm %s", errDigest, cr.Algorithm)
	}
	h2 := md5.Sum([]byte(method + ":" + cr.URI))
	ha2 := hex.EncodeToString(h2[:])
	var in string
	switch cr.QOP {
	case "auth":
		in = fmt.Sprintf("%s:%s:%08x:%s:auth:%s", ha1, cr.Nonce, cr.Nc, cr.Cnonce, ha2)
	case "":
		in = fmt.Sprintf("%s:%s:%s", ha1, cr.Nonce, ha2)
	default:
		return fmt.Errorf("%w: qop %s", errDigest, cr.QOP)
	}
	want := md5.Sum([]byte(in))
	if !hmac.Equal([]byte(hex.EncodeToString(want[:])), []byte(strings.ToLower(cr.Response))) {
		return errDigest
	}
	return nil
}

func (p *Proxy) digest(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) (*Identity, bool) {
	h := req.GetHeader("Authorization")
	if h == nil {
		p.challenge(tx, req, false)
		return nil, false
	}
	cr, err := digest.ParseCredentials(h.Value())
	if err != nil || cr.Realm != p.cfg.Domain {
		p.respond(tx, req, 400, "Bad Authorization header")
		return nil, false
	}
	if !p.nonceValid(cr.Nonce, time.Now()) {
		p.challenge(tx, req, true)
		return nil, false
	}
	id, ha1, err := p.cfg.Auth.SIPCredential(ctx, cr.Username)
	if err == nil {
		err = checkDigest(cr, string(req.Method), ha1)
	}
	if err != nil {
		var r *Refusal
		if errors.As(err, &r) {
			p.respond(tx, req, r.Status, r.Reason)
			return nil, false
		}
		p.log.Warn("sip digest authentication failed")
		p.respond(tx, req, 403, "Forbidden")
		return nil, false
	}
	return &id, true
}
