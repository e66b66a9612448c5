package zrtp

import (
	"bytes"
	"crypto/subtle"
	"fmt"
)

// onCommit handles a Commit: as responder, or as a rival initiator when
// both sides committed (§4.2).
func (e *Engine) onCommit(msg []byte) error {
	c, err := ParseCommit(msg)
	if err != nil {
		return err
	}
	if e.peerHello == nil {
		return fmt.Errorf("%w: Commit before the peer's Hello", ErrUnexpectedMessage)
	}
	// The Commit's H2 must hash to the Hello's H3; it then authenticates
	// the Hello (§9).
	h3 := sha256Sum(c.H2[:])
	if subtle.ConstantTimeCompare(h3[:], e.peerHello.H3[:]) != 1 {
		return ErrHashChain
	}
	switch e.state {
	case stateDHPart1Sent, stateConfirm1Sent, stateSecure:
		if !e.initiator && e.commit != nil && bytes.Equal(e.commit.raw, msg) && e.lastReply != nil && e.state != stateSecure {
			e.send(e.lastReply) // our reply was lost
		}
		return nil
	case stateCommitSent:
		ours := e.commit
		if (ours.KeyAgreement == Mult) != (c.KeyAgreement == Mult) {
			return e.failWith(&Error{Code: CodeSoftware, Detail: "Multistream and DH Commits crossed"})
		}
		if c.KeyAgreement == Prsh {
			return nil // a Preshared Commit loses to our DH Commit
		}
		// The lower hvi (or nonce) loses (§4.2).
		var a, b []byte
		if c.KeyAgreement == Mult {
			a, b = ours.Nonce(), c.Nonce()
		} else {
			a, b = ours.Hvi[:], c.Hvi[:]
		}
		if bytes.Compare(a, b) >= 0 {
			return nil // we stay initiator; the peer will yield
		}
		// We yield: drop our Commit and its key pair.
		e.stopTimer()
		e.initiator = false
		e.commit, e.kex, e.dhPart2, e.keys = nil, nil, nil, nil
	case stateDiscovery:
	default:
		return ErrUnexpectedMessage
	}
	if !checkTrailingMAC(e.peerHello.raw, c.H2[:]) {
		return e.failWith(fmt.Errorf("%w: initiator's Hello", ErrMessageMAC))
	}
	if c.ZID != e.peerHello.ZID {
		return e.failWith(&Error{Code: CodeHelloMismatch, Detail: "Commit ZID differs from Hello ZID"})
	}
	return e.respond(c, bytes.Clone(msg))
}

// respond takes the responder role for Commit c (§4.4.1.2, §4.4.3).
func (e *Engine) respond(c *Commit, raw []byte) error {
	e.stopTimer() // a Commit acknowledges our Hello
	e.initiator = false
	if c.KeyAgreement == Prsh {
		return e.failWith(&Error{Code: CodeNoSharedSecret, Detail: "Preshared mode not supported"})
	}
	if err := e.checkAlgos(c); err != nil {
		return e.failWith(err)
	}
	c.raw = raw
	if c.KeyAgreement == X2K7 {
		c.KEMKey = raw[108 : len(raw)-macLen]
	}
	e.commit = c
	e.hash, _ = hashFor(c.Hash)
	e.cipher, e.authTag, e.ka, e.sasType = c.Cipher, c.AuthTag, c.KeyAgreement, c.SAS
	if e.ka == Mult {
		if e.cfg.Session == nil {
			return e.failWith(&Error{Code: CodeNoSharedSecret, Detail: "Multistream Commit without a session key"})
		}
		e.deriveMultistream()
		conf1, err := e.buildConfirm()
		if err != nil {
			return e.failWith(err)
		}
		e.state = stateConfirm1Sent
		e.lastReply = conf1
		e.send(conf1)
		e.arm(nil, ResponderTimeout, ResponderTimeout, 0)
		return nil
	}
	kex, err := newKeyAgreement(e.rnd, e.ka, false, cipherKeyLen(e.cipher), c.KEMKey)
	if err != nil {
		return e.failWith(err)
	}
	e.kex = kex
	d := &DHPart{Part: 1, H1: e.chain[1], PV: kex.pv}
	if err := e.ourSecretIDs(d); err != nil {
		return e.failWith(err)
	}
	if _, err := d.encode(e.chain[0][:]); err != nil {
		return e.failWith(err)
	}
	e.dhPart1 = d
	e.state = stateDHPart1Sent
	e.lastReply = d.raw
	e.send(d.raw)
	e.arm(nil, ResponderTimeout, ResponderTimeout, 0)
	return nil
}

// onDHPart2 checks the hash commitment and the initiator's public value,
// derives the keys and sends Confirm1 (§4.4.1.2).
func (e *Engine) onDHPart2(msg []byte) error {
	if e.state == stateConfirm1Sent && e.ka != Mult && bytes.Equal(msg, e.dhPart2.raw) {
		e.send(e.lastReply) // Confirm1 was lost
		return nil
	}
	if e.state != stateDHPart1Sent {
		return ErrUnexpectedMessage
	}
	d, err := ParseDHPart(msg, 2)
	if err != nil {
		return err
	}
	h2 := sha256Sum(d.H1[:])
	if subtle.ConstantTimeCompare(h2[:], e.commit.H2[:]) != 1 {
		return ErrHashChain
	}
	if !checkTrailingMAC(e.commit.raw, d.H1[:]) {
		return e.failWith(fmt.Errorf("%w: Commit", ErrMessageMAC))
	}
	raw := bytes.Clone(msg)
	if subtle.ConstantTimeCompare(e.hvi(raw), e.commit.Hvi[:]) != 1 {
		return e.failWith(&Error{Code: CodeBadHVI})
	}
	d.raw = raw
	d.PV = raw[76 : len(raw)-macLen]
	dh, err := e.kex.result(d.PV)
	if err != nil {
		return e.failWith(err)
	}
	e.dhPart2 = d
	e.deriveDH(dh, d)
	e.kex = nil
	conf1, err := e.buildConfirm()
	if err != nil {
		return e.failWith(err)
	}
	e.state = stateConfirm1Sent
	e.lastReply = conf1
	e.send(conf1)
	e.arm(nil, ResponderTimeout, ResponderTimeout, 0)
	return nil
}

// onConfirm2 verifies the initiator's Confirm2, acknowledges it and
// reports the keys; the cache may now be updated (§4.6.1).
func (e *Engine) onConfirm2(msg []byte) error {
	if e.state == stateSecure && !e.initiator {
		e.send(ackMessage(typeConf2ACK)) // Conf2ACK was lost
		return nil
	}
	if e.state != stateConfirm1Sent {
		return ErrUnexpectedMessage
	}
	c, err := e.openConfirm(msg)
	if err != nil {
		return e.failWith(err)
	}
	h1 := sha256Sum(c.H0[:])
	if e.ka == Mult {
		h2 := sha256Sum(h1[:])
		if subtle.ConstantTimeCompare(h2[:], e.commit.H2[:]) != 1 {
			return ErrHashChain
		}
		if !checkTrailingMAC(e.commit.raw, h1[:]) {
			return e.failWith(fmt.Errorf("%w: Commit", ErrMessageMAC))
		}
	} else {
		if subtle.ConstantTimeCompare(h1[:], e.dhPart2.H1[:]) != 1 {
			return ErrHashChain
		}
		if !checkTrailingMAC(e.dhPart2.raw, c.H0[:]) {
			return e.failWith(fmt.Errorf("%w: DHPart2", ErrMessageMAC))
		}
	}
	e.secure = e.makeSecure(c)
	e.state = stateSecure
	e.stopTimer()
	e.lastReply = nil
	e.send(ackMessage(typeConf2ACK))
	e.events = append(e.events, e.secure)
	e.retain()
	return nil
}
