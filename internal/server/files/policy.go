package files

import (
	"context"
	"time"
)

// SenderLimits are the file limits of one sending account.
type SenderLimits struct {
	MaxFileSize int64
	Quota       int64
	Expiry      time.Duration
}

// SenderPolicy gives an account's file limits as the operator set them,
// read at each upload so a change needs no restart.
type SenderPolicy func(ctx context.Context, account string) SenderLimits

// SetSenderPolicy makes uploads use f's limits for the sending account
// instead of the node's file_max_size, file_quota and file_expiry.
func (s *Service) SetSenderPolicy(f SenderPolicy) { s.policy = f }

// limitsFor is the node's limits with the sender's own in place.
func (s *Service) limitsFor(ctx context.Context, account string) Limits {
	lim := s.lim
	if s.policy == nil {
		return lim
	}
	if p := s.policy(ctx, account); p.MaxFileSize > 0 && p.Quota > 0 && p.Expiry > 0 {
		lim.MaxFileSize, lim.Quota, lim.Expiry = p.MaxFileSize, p.Quota, p.Expiry
	}
	return lim
}
