package client

import (
	"context"
	"strconv"
)

// MarkKeyChanged leaves the notice that pinning leaves when a contact
// device's key changes (notices.go), without a second certificate.
func MarkKeyChanged(ctx context.Context, p *Profile, device string) error {
	return kvPut(ctx, p.db.db, kvNotice+NoticeKeyChanged+"/"+device, strconv.FormatInt(p.now().UnixMilli(), 10))
}
