package zrtp

import (
	"bytes"
	"crypto/hmac"
	"fmt"
)

// Labels for the retained-secret IDs (§4.3.1).
const (
	labelInitiator = "Initiator"
	labelResponder = "Responder"
)

// ourSecretIDs computes rs1ID, rs2ID, auxsecretID and pbxsecretID for our
// DHPart. A missing secret is replaced by a random value so the peer cannot
// tell which secrets we hold (§4.3).
func (e *Engine) ourSecretIDs(d *DHPart) error {
	label := labelResponder
	if e.initiator {
		label = labelInitiator
	}
	nh := e.hash.new
	pick := func(s []byte) ([]byte, error) {
		if len(s) > 0 {
			return s, nil
		}
		return readRand(e.rnd, 32)
	}
	var rs1, rs2 []byte
	if e.haveCache {
		rs1, rs2 = e.cached.RS1, e.cached.RS2
	}
	for _, x := range []struct {
		secret []byte
		data   []byte
		dst    *[8]byte
	}{
		{rs1, []byte(label), &d.RS1ID},
		{rs2, []byte(label), &d.RS2ID},
		{e.cfg.AuxSecret, e.chain[3][:], &d.AuxID}, // MAC(auxsecret, our H3)
		{nil, []byte(label), &d.PBXID},             // no PBX secrets here
	} {
		s, err := pick(x.secret)
		if err != nil {
			return err
		}
		*x.dst = secretID(nh, s, x.data)
	}
	return nil
}

// matchSecrets determines s1 and s2 from the peer's DHPart (§4.3) and sets
// the cache match and mismatch flags.
func (e *Engine) matchSecrets(peer *DHPart) (s1, s2 []byte) {
	nh := e.hash.new
	var mine [][]byte
	if e.haveCache {
		for _, s := range [][]byte{e.cached.RS1, e.cached.RS2} {
			if len(s) > 0 {
				mine = append(mine, s)
			}
		}
	}
	if e.initiator {
		// s1 is our rs1 if it matches either of the responder's, else our
		// rs2 if that matches.
		for _, s := range mine {
			id := secretID(nh, s, []byte(labelResponder))
			if hmac.Equal(id[:], peer.RS1ID[:]) || hmac.Equal(id[:], peer.RS2ID[:]) {
				s1 = s
				break
			}
		}
	} else {
		// s1 is the initiator's rs1 if we hold it, else the initiator's rs2.
	outer:
		for _, peerID := range [][8]byte{peer.RS1ID, peer.RS2ID} {
			for _, s := range mine {
				id := secretID(nh, s, []byte(labelInitiator))
				if hmac.Equal(id[:], peerID[:]) {
					s1 = s
					break outer
				}
			}
		}
	}
	e.cacheMatched = s1 != nil
	e.cacheMismatch = e.haveCache && len(e.cached.RS1) > 0 && s1 == nil
	if len(e.cfg.AuxSecret) > 0 {
		id := secretID(nh, e.cfg.AuxSecret, e.peerHello.H3[:]) // MAC(auxsecret, peer's H3)
		if hmac.Equal(id[:], peer.AuxID[:]) {
			s2 = e.cfg.AuxSecret
		} else {
			e.auxMismatch = true
		}
	}
	return s1, s2
}

// deriveDH computes s0 and the stream keys once both DHParts are known
// (§4.4.1.4, §4.5).
func (e *Engine) deriveDH(dhResult []byte, peer *DHPart) {
	s1, s2 := e.matchSecrets(peer)
	total := hashAll(e.hash.new, e.responderHello().raw, e.commit.raw, e.dhPart1.raw, e.dhPart2.raw)
	zidi, zidr := e.zids()
	s0 := computeS0(e.hash.new, dhResult, zidi, zidr, total, s1, s2, nil)
	clear(dhResult)
	e.keys = deriveKeys(e.hash, s0, kdfContext(zidi, zidr, total), cipherKeyLen(e.cipher), true)
	clear(s0)
}

// deriveMultistream computes the stream keys from ZRTPSess (§4.4.3.2).
func (e *Engine) deriveMultistream() {
	total := hashAll(e.hash.new, e.responderHello().raw, e.commit.raw)
	zidi, zidr := e.zids()
	ctx := kdfContext(zidi, zidr, total)
	s0 := multistreamS0(e.hash, e.cfg.Session.key, ctx)
	e.keys = deriveKeys(e.hash, s0, ctx, cipherKeyLen(e.cipher), false)
	clear(s0)
}

func (e *Engine) responderHello() *Hello {
	if e.initiator {
		return e.peerHello
	}
	return e.hello
}

func (e *Engine) zids() (zidi, zidr ZID) {
	if e.initiator {
		return e.cfg.ZID, e.peerHello.ZID
	}
	return e.peerHello.ZID, e.cfg.ZID
}

// hvi is hash(initiator's DHPart2 || responder's Hello) truncated to 256
// bits (§4.4.1.1).
func (e *Engine) hvi(dhPart2 []byte) []byte {
	return hashAll(e.hash.new, dhPart2, e.responderHello().raw)[:32]
}

// confirmFlags are the flags we send in our Confirm: V when our record says
// the SAS was verified and the cache matched. We never allow GoClear.
func (e *Engine) confirmFlags() byte {
	if e.haveCache && e.cached.Verified && e.cacheMatched {
		return FlagSASVerified
	}
	return 0
}

func (e *Engine) ourExpiry() uint32 {
	if e.ka == Mult {
		return CacheExpiryForever // ignored in Multistream mode (§4.9)
	}
	if e.cfg.NoCache {
		return 0
	}
	return CacheExpiryForever
}

// buildConfirm encrypts our Confirm1 (responder) or Confirm2 (initiator).
func (e *Engine) buildConfirm() ([]byte, error) {
	c := &Confirm{Part: 1, H0: e.chain[0], Flags: e.confirmFlags(), CacheExpiry: e.ourExpiry()}
	zk, mk := e.keys.zrtpKeyR, e.keys.macKeyR
	if e.initiator {
		c.Part = 2
		zk, mk = e.keys.zrtpKeyI, e.keys.macKeyI
	}
	iv, err := readRand(e.rnd, 16)
	if err != nil {
		return nil, err
	}
	copy(c.IV[:], iv)
	return c.encode(e.hash.new, zk, mk)
}

// openConfirm checks and decrypts the peer's Confirm.
func (e *Engine) openConfirm(msg []byte) (*Confirm, error) {
	part, zk, mk := 2, e.keys.zrtpKeyI, e.keys.macKeyI
	if e.initiator {
		part, zk, mk = 1, e.keys.zrtpKeyR, e.keys.macKeyR
	}
	c, err := ParseConfirm(msg, part)
	if err != nil {
		return nil, err
	}
	if err := c.open(e.hash.new, zk, mk); err != nil {
		return nil, err
	}
	return c, nil
}

// makeSecure builds the Secure event from the derived keys.
func (e *Engine) makeSecure(c *Confirm) *Secure {
	e.peerFlags, e.peerExpiry = c.Flags, c.CacheExpiry
	zidPeer := e.peerHello.ZID
	s := &Secure{
		Cipher: e.cipher, Hash: e.hash.id, KeyAgreement: e.ka, AuthTag: e.authTag,
		Keys: SRTPKeys{
			InitiatorKey: e.keys.srtpKeyI, InitiatorSalt: e.keys.srtpSaltI,
			ResponderKey: e.keys.srtpKeyR, ResponderSalt: e.keys.srtpSaltR,
		},
		Initiator:     e.initiator,
		PeerZID:       zidPeer,
		PeerVerified:  c.Flags&FlagSASVerified != 0,
		CacheMatched:  e.cacheMatched,
		CacheMismatch: e.cacheMismatch,
		AuxMismatch:   e.auxMismatch,
	}
	s.PreviouslyVerified = e.cacheMatched && e.haveCache && e.cached.Verified
	if e.ka == Mult {
		sess := e.cfg.Session
		s.Multistream = true
		s.SAS, s.SASType = sess.sas, sess.sasType
		s.KeyAgreement = Mult
		return s
	}
	s.SASType = e.sasType
	s.SASValue = uint32(e.keys.sasHash[0])<<24 | uint32(e.keys.sasHash[1])<<16 | uint32(e.keys.sasHash[2])<<8 | uint32(e.keys.sasHash[3])
	s.SAS = RenderSAS(e.sasType, s.SASValue)
	s.ExportedKey = e.keys.exported
	s.Session = &Session{
		key: e.keys.session, hash: e.hash.id, cipher: e.cipher, authTag: e.authTag,
		keyAgreement: e.ka, sas: s.SAS, sasType: e.sasType, peerZID: zidPeer,
	}
	return s
}

// retain emits the cache update once the RFC allows it (§4.6.1).
func (e *Engine) retain() {
	if e.ka == Mult || e.keys == nil || e.keys.rs1 == nil {
		return
	}
	expiry := min(e.ourExpiry(), e.peerExpiry)
	if expiry == 0 {
		return
	}
	rec := CachedSecret{RS1: bytes.Clone(e.keys.rs1)}
	if e.haveCache && len(e.cached.RS1) > 0 {
		rec.RS2 = bytes.Clone(e.cached.RS1)
	}
	rec.Verified = e.cacheMatched && e.haveCache && e.cached.Verified
	e.events = append(e.events, &Retain{
		PeerZID: e.peerHello.ZID, Record: rec, Expiry: expiry,
		RequiresVerification: e.cacheMismatch,
	})
}

// checkAlgos checks that a Commit only selects algorithms we offered
// (including the implicit mandatory ones, §5.2).
func (e *Engine) checkAlgos(c *Commit) error {
	checks := []struct {
		kind int
		a    Algo
		mine []Algo
		code Code
	}{
		{kindHash, c.Hash, e.cfg.Hashes, CodeHashType},
		{kindCipher, c.Cipher, e.cfg.Ciphers, CodeCipherType},
		{kindAuth, c.AuthTag, e.cfg.AuthTags, CodeAuthTagType},
		{kindSAS, c.SAS, e.cfg.SASTypes, CodeSASType},
		{kindKA, c.KeyAgreement, e.cfg.KeyAgreements, CodeKeyAgreementType},
	}
	for _, ch := range checks {
		if ch.kind == kindSAS && c.KeyAgreement == Mult {
			continue // the SAS type is ignored in Multistream mode (§4.4.3.1)
		}
		if !supportedIn(ch.kind, ch.a) || !containsAlgo(withMandatory(ch.kind, ch.mine), ch.a) {
			return &Error{Code: ch.code, Detail: fmt.Sprintf("Commit selects %q", ch.a)}
		}
	}
	return nil
}
