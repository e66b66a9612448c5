package sipua

import (
	"github.com/phonex/phonex/internal/media"
	"github.com/phonex/phonex/internal/media/codec"
)

// Redundant audio in a call (RFC 2198; docs/calls.md "Redundant audio"):
// both sides must have red over Opus in their descriptions. It is sent
// only while the peer reports at least redMinLoss of loss, where it was
// measured to help within the budget; below that the primary keeps the
// whole bitrate.
const (
	redMinLoss  = 10   // percent, over the last several seconds
	redBitrate  = 6000 // the redundant encoding's: the lowest libopus's SILK codes well
	redHeadroom = 7000 // the primary gives up this much while it is on
)

// redundancy is a call's redundant audio, when negotiated.
type redundancy struct {
	pt  uint8
	enc codec.Codec // the redundant encoder, nil when it could not be made
}

// setupRedundancy prepares redundant audio for the media of a call
// whose descriptions both have it; the encoder follows the primary's
// packet time.
func (c *Call) setupRedundancy(st *mediaState, local, remote *Media, chosen Codec) {
	pt, ok := NegotiatedRED(local, remote, chosen)
	if !ok {
		return
	}
	st.red = &redundancy{pt: pt}
	enc, err := codec.NewOpus(codec.OpusConfig{PayloadType: chosen.PT, Frame: st.sendCodec.FrameDuration(), Bitrate: redBitrate})
	if err != nil {
		// We still take the peer's redundancy; we only send none.
		c.log.Warn("redundant audio encoder", "err", err)
		return
	}
	st.red.enc = enc
}

func (st *mediaState) sendRedundancy(bitrate int) *media.SendRedundancy {
	if st.red == nil || st.red.enc == nil {
		return nil
	}
	return &media.SendRedundancy{PT: st.red.pt, Codec: st.red.enc, PrimaryBitrate: max(6000, bitrate-redHeadroom), MinLoss: redMinLoss}
}

func (st *mediaState) recvRedundancy() *media.RecvRedundancy {
	if st.red == nil {
		return nil
	}
	return &media.RecvRedundancy{PT: st.red.pt}
}

func (st *mediaState) closeRedundancy() {
	if st.red != nil && st.red.enc != nil {
		st.red.enc.Close()
	}
}
