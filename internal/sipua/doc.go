// Package sipua is the SIP user agent of direct voice calls: INVITE, answer,
// re-INVITE, CANCEL and BYE over UDP or TCP on sipgo (RFC 3261), the SDP
// offer/answer of one audio stream (RFC 3264, RFC 4566) with the ZRTP
// a=zrtp-hash attribute (RFC 6189 §8.1), and a Call that runs the media
// path: ZRTP demultiplexed from RTP on one UDP socket, SRTP keyed by ZRTP,
// audio played from and recorded to WAV files.
//
// A call never sends media in the clear and fails when the peer does not
// speak ZRTP, unless the caller allows it explicitly.
package sipua
