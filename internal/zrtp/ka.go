package zrtp

import (
	"crypto/ecdh"
	"crypto/mlkem"
	"fmt"
	"io"
	"math/big"
)

// dh3kPrime is the 3072-bit MODP group of RFC 3526 §4, generator 2.
var dh3kPrime, _ = new(big.Int).SetString(
	"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1"+
		"29024E088A67CC74020BBEA63B139B22514A08798E3404DD"+
		"EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245"+
		"E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"+
		"EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D"+
		"C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"+
		"83655D23DCA3AD961C62F356208552BB9ED529077096966D"+
		"670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"+
		"E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9"+
		"DE2BCBF6955817183995497CEA956AE515D2261898FA0510"+
		"15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64"+
		"ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"+
		"ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6B"+
		"F12FFA06D98A0864D87602733EC86A64521F2B18177B200C"+
		"BBE117577A615D6C770988C0BAD946E208E24FA074E5AB31"+
		"43DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF", 16)

var dh3kPMinus1 = new(big.Int).Sub(dh3kPrime, big.NewInt(1))

const dh3kLen = 384

// pvLen is the length in bytes of the public value a party sends in its
// DHPart message for a key agreement type (§5.1.5; docs/zrtp-hybrid.md).
func pvLen(ka Algo, initiator bool) int {
	switch ka {
	case DH3k:
		return dh3kLen
	case EC25:
		return 64
	case X255, E255:
		return 32
	case X2K7:
		if initiator {
			return 32
		}
		return 32 + mlkem.CiphertextSize768
	}
	return 0
}

// keyAgreement is one party's half of a key exchange.
type keyAgreement struct {
	alg       Algo
	initiator bool
	dhPriv    *big.Int
	ecPriv    *ecdh.PrivateKey
	kemDK     *mlkem.DecapsulationKey768 // hybrid initiator
	kemShared []byte                     // hybrid responder
	pv        []byte                     // what goes into our DHPart
	kemKey    []byte                     // hybrid initiator: encapsulation key for the Commit
}

func readRand(r io.Reader, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("zrtp: read random: %w", err)
	}
	return b, nil
}

// newKeyAgreement makes a fresh key pair from the injected randomness. For
// the hybrid responder, kemKey is the initiator's encapsulation key from the
// Commit. aesLen sizes the DH exponent at twice the AES key (§5.1.5).
func newKeyAgreement(rnd io.Reader, ka Algo, initiator bool, aesLen int, kemKey []byte) (*keyAgreement, error) {
	k := &keyAgreement{alg: ka, initiator: initiator}
	switch ka {
	case DH3k:
		b, err := readRand(rnd, 2*aesLen)
		if err != nil {
			return nil, err
		}
		k.dhPriv = new(big.Int).SetBytes(b)
		if k.dhPriv.Sign() == 0 {
			k.dhPriv.SetInt64(2)
		}
		pub := new(big.Int).Exp(big.NewInt(2), k.dhPriv, dh3kPrime)
		k.pv = pub.FillBytes(make([]byte, dh3kLen))
	case EC25:
		for range 16 {
			b, err := readRand(rnd, 32)
			if err != nil {
				return nil, err
			}
			if priv, err := ecdh.P256().NewPrivateKey(b); err == nil {
				k.ecPriv = priv
				break
			}
		}
		if k.ecPriv == nil {
			return nil, fmt.Errorf("zrtp: no valid P-256 scalar from the random source")
		}
		k.pv = k.ecPriv.PublicKey().Bytes()[1:] // X || Y without the 0x04 prefix
	case X255, E255, X2K7:
		b, err := readRand(rnd, 32)
		if err != nil {
			return nil, err
		}
		priv, err := ecdh.X25519().NewPrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("zrtp: X25519 key: %w", err)
		}
		k.ecPriv = priv
		k.pv = priv.PublicKey().Bytes()
		if ka != X2K7 {
			break
		}
		if initiator {
			seed, err := readRand(rnd, mlkem.SeedSize)
			if err != nil {
				return nil, err
			}
			dk, err := mlkem.NewDecapsulationKey768(seed)
			if err != nil {
				return nil, fmt.Errorf("zrtp: ML-KEM key: %w", err)
			}
			k.kemDK = dk
			k.kemKey = dk.EncapsulationKey().Bytes()
		} else {
			ek, err := mlkem.NewEncapsulationKey768(kemKey)
			if err != nil {
				return nil, &Error{Code: CodeBadPV, Detail: "bad ML-KEM encapsulation key: " + err.Error()}
			}
			// crypto/mlkem draws the encapsulation randomness itself.
			shared, ct := ek.Encapsulate()
			k.kemShared = shared
			k.pv = append(k.pv, ct...)
		}
	default:
		return nil, &Error{Code: CodeKeyAgreementType, Detail: ka.String()}
	}
	return k, nil
}

// result computes DHResult from the peer's public value, rejecting weak
// values (§4.4.1.2, §4.4.1.3).
func (k *keyAgreement) result(peer []byte) ([]byte, error) {
	if len(peer) != pvLen(k.alg, !k.initiator) {
		return nil, &Error{Code: CodeMalformed, Detail: fmt.Sprintf("%s public value of %d bytes", k.alg, len(peer))}
	}
	switch k.alg {
	case DH3k:
		pv := new(big.Int).SetBytes(peer)
		if pv.Cmp(big.NewInt(1)) <= 0 || pv.Cmp(dh3kPMinus1) >= 0 {
			return nil, &Error{Code: CodeBadPV}
		}
		return new(big.Int).Exp(pv, k.dhPriv, dh3kPrime).FillBytes(make([]byte, dh3kLen)), nil
	case EC25:
		pub, err := ecdh.P256().NewPublicKey(append([]byte{4}, peer...))
		if err != nil {
			return nil, &Error{Code: CodeBadPV, Detail: err.Error()}
		}
		z, err := k.ecPriv.ECDH(pub)
		if err != nil {
			return nil, &Error{Code: CodeBadPV, Detail: err.Error()}
		}
		return z, nil
	case X255, E255, X2K7:
		pub, err := ecdh.X25519().NewPublicKey(peer[:32])
		if err != nil {
			return nil, &Error{Code: CodeBadPV, Detail: err.Error()}
		}
		z, err := k.ecPriv.ECDH(pub) // fails on a low-order point
		if err != nil {
			return nil, &Error{Code: CodeBadPV, Detail: err.Error()}
		}
		if k.alg != X2K7 {
			return z, nil
		}
		if k.initiator {
			shared, err := k.kemDK.Decapsulate(peer[32:])
			if err != nil {
				return nil, &Error{Code: CodeBadPV, Detail: err.Error()}
			}
			return append(z, shared...), nil
		}
		return append(z, k.kemShared...), nil
	}
	return nil, &Error{Code: CodeKeyAgreementType, Detail: k.alg.String()}
}
