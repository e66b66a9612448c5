package client

import (
	"crypto"
	"crypto/rsa"
)

func rsaKey(s crypto.Signer) *rsa.PrivateKey {
	k, _ := s.(*rsa.PrivateKey)
	return k
}
