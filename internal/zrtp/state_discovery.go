package zrtp

import (
	"bytes"
	"crypto/hmac"
	"fmt"
)

// onHello handles the peer's Hello (§4.1): check it, remember it, look up
// the cache, acknowledge it and commit if we may.
func (e *Engine) onHello(msg []byte) error {
	h, err := ParseHello(msg)
	if err != nil {
		return err
	}
	if e.cfg.PeerHelloHash != "" {
		if err := CheckHelloHash(e.cfg.PeerHelloHash, msg); err != nil {
			return err // a false Hello is dropped; the real one may still come
		}
	}
	if e.peerHello != nil {
		if !bytes.Equal(e.peerHello.raw, msg) {
			return fmt.Errorf("%w: a different Hello from the same peer", ErrUnexpectedMessage)
		}
		e.send(ackMessage(typeHelloACK))
		return nil
	}
	if string(h.Version[:3]) != "1.1" {
		// We speak only 1.10; a peer with a higher version must fall back
		// to ours (§4.1.1), a lower one cannot.
		if string(h.Version[:]) > Version {
			return fmt.Errorf("%w: peer version %q", ErrUnexpectedMessage, h.Version[:])
		}
		return e.failWith(&Error{Code: CodeVersion, Detail: fmt.Sprintf("peer version %q", h.Version[:])})
	}
	if hmac.Equal(h.ZID[:], e.cfg.ZID[:]) {
		return e.failWith(&Error{Code: CodeEqualZID})
	}
	if s := e.cfg.Session; s != nil && s.peerZID != h.ZID {
		return e.failWith(&Error{Code: CodeHelloMismatch, Detail: "Multistream peer ZID differs from the first stream's"})
	}
	e.peerHello = h
	msgCopy := bytes.Clone(msg)
	e.peerHello.raw = msgCopy
	if e.cfg.Cache != nil && e.cfg.Session == nil {
		e.cached, e.haveCache = e.cfg.Cache.Lookup(h.ZID)
	}
	if e.state == stateDiscovery && e.timer.active {
		// The peer speaks ZRTP: stretch our Hello schedule to about 12 s
		// (§6).
		e.timer.limit = max(e.timer.limit, ExtendedHelloRetries)
	}
	e.send(ackMessage(typeHelloACK))
	return e.maybeCommit()
}

func (e *Engine) onHelloACK() error {
	if e.state != stateDiscovery {
		return nil // late or repeated
	}
	if !e.gotHelloACK {
		e.gotHelloACK = true
		e.stopTimer()
	}
	return e.maybeCommit()
}

// maybeCommit sends our Commit once both Hellos are acknowledged (§5.4).
func (e *Engine) maybeCommit() error {
	if e.state != stateDiscovery || !e.gotHelloACK || e.peerHello == nil || e.cfg.Passive {
		return nil
	}
	return e.sendCommit()
}

// negotiate picks the algorithms for our Commit (§4.1.2): the key agreement
// by the faster-of-the-first-choices rule, the others as our first common
// choice. With a Session it picks Multistream with the session's algorithms.
func (e *Engine) negotiate() error {
	p := e.peerHello
	theirs := func(kind int, l []Algo) []Algo { return withMandatory(kind, l) }
	pick := func(kind int, mine, peer []Algo, code Code) (Algo, error) {
		c := common(withMandatory(kind, mine), theirs(kind, peer))
		for _, a := range c {
			if supportedIn(kind, a) && a != Mult {
				return a, nil
			}
		}
		return 0, &Error{Code: code, Detail: "no algorithm in common"}
	}
	var err error
	if s := e.cfg.Session; s != nil {
		e.ka = Mult
		h, _ := hashFor(s.hash)
		e.hash, e.cipher, e.authTag, e.sasType = h, s.cipher, s.authTag, s.sasType
		for _, chk := range []struct {
			kind int
			a    Algo
			l    []Algo
			code Code
		}{
			{kindHash, s.hash, p.Hashes, CodeHashType},
			{kindCipher, s.cipher, p.Ciphers, CodeCipherType},
			{kindAuth, s.authTag, p.AuthTags, CodeAuthTagType},
		} {
			if !containsAlgo(theirs(chk.kind, chk.l), chk.a) {
				return &Error{Code: chk.code, Detail: "peer lacks the first stream's " + chk.a.String()}
			}
		}
		if !containsAlgo(p.KeyAgreements, Mult) {
			return &Error{Code: CodeKeyAgreementType, Detail: "peer does not offer Multistream"}
		}
		return nil
	}
	var hid Algo
	if hid, err = pick(kindHash, e.cfg.Hashes, p.Hashes, CodeHashType); err != nil {
		return err
	}
	e.hash, _ = hashFor(hid)
	if e.cipher, err = pick(kindCipher, e.cfg.Ciphers, p.Ciphers, CodeCipherType); err != nil {
		return err
	}
	if e.authTag, err = pick(kindAuth, e.cfg.AuthTags, p.AuthTags, CodeAuthTagType); err != nil {
		return err
	}
	if e.sasType, err = pick(kindSAS, e.cfg.SASTypes, p.SASTypes, CodeSASType); err != nil {
		return err
	}
	var mine, peer []Algo
	for _, a := range common(withMandatory(kindKA, e.cfg.KeyAgreements), theirs(kindKA, p.KeyAgreements)) {
		if a != Mult && supportedIn(kindKA, a) {
			mine = append(mine, a)
		}
	}
	for _, a := range common(theirs(kindKA, p.KeyAgreements), withMandatory(kindKA, e.cfg.KeyAgreements)) {
		if a != Mult && supportedIn(kindKA, a) {
			peer = append(peer, a)
		}
	}
	if len(mine) == 0 {
		return &Error{Code: CodeKeyAgreementType, Detail: "no key agreement in common"}
	}
	e.ka = mine[0]
	if peer[0] != mine[0] && kaRank(peer[0]) < kaRank(mine[0]) {
		e.ka = peer[0]
	}
	return nil
}
