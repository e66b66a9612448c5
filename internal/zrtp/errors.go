package zrtp

import (
	"errors"
	"fmt"
)

// Code is a ZRTP error code as carried in the Error message (RFC 6189 §5.9).
type Code uint32

// Error codes from RFC 6189 §5.9, Table 8.
const (
	CodeMalformed        Code = 0x10
	CodeSoftware         Code = 0x20
	CodeVersion          Code = 0x30
	CodeHelloMismatch    Code = 0x40
	CodeHashType         Code = 0x51
	CodeCipherType       Code = 0x52
	CodeKeyAgreementType Code = 0x53
	CodeAuthTagType      Code = 0x54
	CodeSASType          Code = 0x55
	CodeNoSharedSecret   Code = 0x56
	CodeBadPV            Code = 0x61
	CodeBadHVI           Code = 0x62
	CodeUntrustedMiTM    Code = 0x63
	CodeBadConfirmMAC    Code = 0x70
	CodeNonceReuse       Code = 0x80
	CodeEqualZID         Code = 0x90
	CodeSSRCCollision    Code = 0x91
	CodeUnavailable      Code = 0xA0
	CodeTimeout          Code = 0xB0
	CodeGoClearRefused   Code = 0x100
)

var codeText = map[Code]string{
	CodeMalformed:        "malformed packet",
	CodeSoftware:         "critical software error",
	CodeVersion:          "unsupported ZRTP version",
	CodeHelloMismatch:    "Hello components mismatch",
	CodeHashType:         "hash type not supported",
	CodeCipherType:       "cipher type not supported",
	CodeKeyAgreementType: "public key exchange not supported",
	CodeAuthTagType:      "SRTP auth tag not supported",
	CodeSASType:          "SAS rendering scheme not supported",
	CodeNoSharedSecret:   "no shared secret available, DH mode required",
	CodeBadPV:            "DH error: bad pvi or pvr",
	CodeBadHVI:           "DH error: hvi does not match hashed data",
	CodeUntrustedMiTM:    "relayed SAS from untrusted MiTM",
	CodeBadConfirmMAC:    "bad Confirm MAC",
	CodeNonceReuse:       "nonce reuse",
	CodeEqualZID:         "equal ZIDs in Hello",
	CodeSSRCCollision:    "SSRC collision",
	CodeUnavailable:      "service unavailable",
	CodeTimeout:          "protocol timeout",
	CodeGoClearRefused:   "GoClear received but not allowed",
}

func (c Code) String() string {
	if s, ok := codeText[c]; ok {
		return s
	}
	return fmt.Sprintf("unknown error 0x%x", uint32(c))
}

// Error is a ZRTP protocol error carrying its wire code. Remote is true when
// the peer sent it in an Error message, false when this engine detected it.
type Error struct {
	Code   Code
	Remote bool
	Detail string
}

func (e *Error) Error() string {
	who := "local"
	if e.Remote {
		who = "peer"
	}
	if e.Detail != "" {
		return fmt.Sprintf("zrtp: %s error 0x%x (%s): %s", who, uint32(e.Code), e.Code, e.Detail)
	}
	return fmt.Sprintf("zrtp: %s error 0x%x (%s)", who, uint32(e.Code), e.Code)
}

// Sentinel errors for packets that are dropped without ending the exchange.
var (
	ErrShortPacket        = errors.New("zrtp: packet too short")
	ErrNotZRTP            = errors.New("zrtp: not a ZRTP packet")
	ErrBadCRC             = errors.New("zrtp: CRC mismatch")
	ErrMalformed          = errors.New("zrtp: malformed message")
	ErrUnknownMessage     = errors.New("zrtp: unknown message type")
	ErrHashChain          = errors.New("zrtp: hash image does not chain to the previous message")
	ErrHelloHashMismatch  = errors.New("zrtp: Hello does not match the signalled zrtp-hash")
	ErrUnexpectedMessage  = errors.New("zrtp: message not expected in this state")
	ErrMessageMAC         = errors.New("zrtp: MAC of an earlier message does not verify")
	ErrClosed             = errors.New("zrtp: engine has finished")
	ErrRetransmitExceeded = errors.New("zrtp: retransmission limit reached")
)
