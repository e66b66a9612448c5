package files

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/filecrypt"
)

// Errors of request parsing; handlers answer them with 400.
var (
	ErrBadOffset = errors.New("bad Upload-Offset")
	ErrBadSlot   = errors.New("bad slot")
	ErrBadFile   = errors.New("bad file request")
)

// parseOffset reads an Upload-Offset value (tus core 1.0.0 §Upload-Offset:
// a non-negative integer): decimal digits only, no sign, no leading zero,
// at most 18 digits so it always fits an int64.
func parseOffset(s string) (int64, error) {
	if s == "" || len(s) > 18 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%w: %q", ErrBadOffset, s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: %q", ErrBadOffset, s)
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// parseSlotID reads a slot id: the 16 bytes of filecrypt.SlotID in
// lowercase hex, one spelling per id.
func parseSlotID(s string) (filecrypt.SlotID, error) {
	var id filecrypt.SlotID
	if len(s) != 2*api.SlotIDSize {
		return id, fmt.Errorf("%w: id must be %d hex digits", ErrBadSlot, 2*api.SlotIDSize)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return id, fmt.Errorf("%w: id %q: lowercase hex only", ErrBadSlot, s)
		}
	}
	hex.Decode(id[:], []byte(s))
	return id, nil
}

func checkSlotID(s string) error {
	_, err := parseSlotID(s)
	return err
}

// checkSlots validates an upload of slots before anything is stored.
func checkSlots(p *api.FileSlotsPut) error {
	if len(p.Slots) == 0 || len(p.Slots) > api.MaxSlotsPerPut {
		return fmt.Errorf("%w: 1 to %d slots per upload", ErrBadSlot, api.MaxSlotsPerPut)
	}
	seen := map[string]bool{}
	for _, s := range p.Slots {
		if err := checkSlotID(s.ID); err != nil {
			return err
		}
		if seen[s.ID] {
			return fmt.Errorf("%w: id %q twice", ErrBadSlot, s.ID)
		}
		seen[s.ID] = true
		if len(s.Sealed) == 0 || len(s.Sealed) > api.MaxSlotSealed {
			return fmt.Errorf("%w: %q: sealed blob of 1 to %d bytes", ErrBadSlot, s.ID, api.MaxSlotSealed)
		}
		if len(s.ProofHash) != 32 {
			return fmt.Errorf("%w: %q: proof_hash must have 32 bytes", ErrBadSlot, s.ID)
		}
		if len(s.Nonce2) != api.Nonce2Size {
			return fmt.Errorf("%w: %q: nonce2 must have %d bytes", ErrBadSlot, s.ID, api.Nonce2Size)
		}
	}
	return nil
}

// checkCreate validates a new upload's fields (the limits are the node's
// configuration and are checked by the service).
func checkCreate(c *api.FileCreate) error {
	if c.Size < 1 {
		return fmt.Errorf("%w: size must be positive", ErrBadFile)
	}
	if len(c.Header) == 0 || len(c.Header) > api.MaxFileHeader {
		return fmt.Errorf("%w: header of 1 to %d bytes", ErrBadFile, api.MaxFileHeader)
	}
	if len(c.Slots) > 64 {
		return fmt.Errorf("%w: at most 64 slots", ErrBadFile)
	}
	seen := map[string]bool{}
	for _, s := range c.Slots {
		if err := checkSlotID(s.SlotID); err != nil {
			return err
		}
		if seen[s.Device] {
			return fmt.Errorf("%w: device %q twice", ErrBadFile, s.Device)
		}
		seen[s.Device] = true
		if len(s.Nonce2) != api.Nonce2Size {
			return fmt.Errorf("%w: nonce2 must have %d bytes", ErrBadFile, api.Nonce2Size)
		}
	}
	return nil
}
