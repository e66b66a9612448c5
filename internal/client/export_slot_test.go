package client

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ident"
)

// PrepareSend takes and proves the recipient's slots and encrypts the file
// as SendFile does, without uploading; it returns what the upload will
// present to the node, so a test can present it twice.
func PrepareSend(ctx context.Context, p *Profile, to, path string) (api.FileCreate, error) {
	acct, err := ident.ParseAccount(to)
	if err != nil {
		return api.FileCreate{}, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return api.FileCreate{}, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return api.FileCreate{}, err
	}
	var out SentFile
	s, err := p.prepareSend(ctx, acct, abs, st, 0, &out, func(string, int64, int64) {})
	if err != nil {
		return api.FileCreate{}, err
	}
	var uses []api.FileSlotUse
	if err := json.Unmarshal(s.slots, &uses); err != nil {
		return api.FileCreate{}, err
	}
	return api.FileCreate{Recipient: acct.String(), Size: s.encSize, Header: s.blob, Slots: uses}, nil
}
