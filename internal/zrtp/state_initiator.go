package zrtp

import (
	"bytes"
	"crypto/subtle"
	"fmt"
)

// sendCommit becomes initiator: it prepares the key pair and DHPart2 in
// advance so the Commit can carry hvi (§4.4.1.1), or a nonce in
// Multistream mode (§4.4.3.1).
func (e *Engine) sendCommit() error {
	if err := e.negotiate(); err != nil {
		return e.failWith(err)
	}
	e.initiator = true
	c := &Commit{
		H2: e.chain[2], ZID: e.cfg.ZID, Hash: e.hash.id, Cipher: e.cipher,
		AuthTag: e.authTag, KeyAgreement: e.ka, SAS: e.sasType,
	}
	if e.ka == Mult {
		nonce, err := readRand(e.rnd, 16)
		if err != nil {
			return e.failWith(err)
		}
		copy(c.Hvi[:16], nonce)
	} else {
		kex, err := newKeyAgreement(e.rnd, e.ka, true, cipherKeyLen(e.cipher), nil)
		if err != nil {
			return e.failWith(err)
		}
		e.kex = kex
		d := &DHPart{Part: 2, H1: e.chain[1], PV: kex.pv}
		if err := e.ourSecretIDs(d); err != nil {
			return e.failWith(err)
		}
		if _, err := d.encode(e.chain[0][:]); err != nil {
			return e.failWith(err)
		}
		e.dhPart2 = d
		copy(c.Hvi[:], e.hvi(d.raw))
		c.KEMKey = kex.kemKey
	}
	c.encode(e.chain[1][:])
	e.commit = c
	if e.ka == Mult {
		e.deriveMultistream()
	}
	e.state = stateCommitSent
	e.send(c.raw)
	e.arm(c.raw, e.cfg.T2, e.cfg.T2Max, e.cfg.MaxRetries)
	return nil
}

// onDHPart1 handles the responder's public value (§4.4.1.3).
func (e *Engine) onDHPart1(msg []byte) error {
	if e.state != stateCommitSent || e.ka == Mult {
		return ErrUnexpectedMessage // a repeat, or not ours to handle
	}
	d, err := ParseDHPart(msg, 1)
	if err != nil {
		return err
	}
	// H1 must hash twice to the responder's H3; H2 = hash(H1) then
	// authenticates the responder's Hello (§9).
	h2 := sha256Sum(d.H1[:])
	h3 := sha256Sum(h2[:])
	if subtle.ConstantTimeCompare(h3[:], e.peerHello.H3[:]) != 1 {
		return ErrHashChain
	}
	if !checkTrailingMAC(e.peerHello.raw, h2[:]) {
		return e.failWith(fmt.Errorf("%w: responder's Hello", ErrMessageMAC))
	}
	d.raw = bytes.Clone(msg)
	d.PV = d.raw[76 : len(d.raw)-macLen]
	dh, err := e.kex.result(d.PV)
	if err != nil {
		return e.failWith(err)
	}
	e.dhPart1 = d
	e.deriveDH(dh, d)
	e.kex = nil
	e.state = stateDHPart2Sent
	e.send(e.dhPart2.raw)
	e.arm(e.dhPart2.raw, e.cfg.T2, e.cfg.T2Max, e.cfg.MaxRetries)
	return nil
}

// onConfirm1 checks the responder's Confirm1, answers with Confirm2 and
// reports the keys (§4.6).
func (e *Engine) onConfirm1(msg []byte) error {
	if !(e.state == stateDHPart2Sent || e.state == stateCommitSent && e.ka == Mult) {
		return ErrUnexpectedMessage
	}
	c, err := e.openConfirm(msg)
	if err != nil {
		return e.failWith(err)
	}
	if e.ka == Mult {
		// H0 hashes three times to H3; H2 authenticates the Hello.
		h1 := sha256Sum(c.H0[:])
		h2 := sha256Sum(h1[:])
		h3 := sha256Sum(h2[:])
		if subtle.ConstantTimeCompare(h3[:], e.peerHello.H3[:]) != 1 {
			return ErrHashChain
		}
		if !checkTrailingMAC(e.peerHello.raw, h2[:]) {
			return e.failWith(fmt.Errorf("%w: responder's Hello", ErrMessageMAC))
		}
	} else {
		h1 := sha256Sum(c.H0[:])
		if subtle.ConstantTimeCompare(h1[:], e.dhPart1.H1[:]) != 1 {
			return ErrHashChain
		}
		if !checkTrailingMAC(e.dhPart1.raw, c.H0[:]) {
			return e.failWith(fmt.Errorf("%w: DHPart1", ErrMessageMAC))
		}
	}
	conf2, err := e.buildConfirm()
	if err != nil {
		return e.failWith(err)
	}
	e.secure = e.makeSecure(c)
	e.state = stateConfirm2Sent
	e.send(conf2)
	e.arm(conf2, e.cfg.T2, e.cfg.T2Max, e.cfg.MaxRetries)
	e.events = append(e.events, e.secure)
	return nil
}

// finishInitiator handles Conf2ACK (or authenticated SRTP from the
// responder): retransmission stops and the cache may be updated (§4.6.1).
func (e *Engine) finishInitiator() {
	e.stopTimer()
	e.state = stateSecure
	e.retain()
}
