package proxy

import (
	"context"
	"time"
)

// AccountLimits are the limits the proxy applies to one account.
type AccountLimits struct {
	Rate       float64       // MESSAGEs per second the account may average when sending
	Burst      int           // and burst
	MaxStored  int64         // bytes of undelivered copies held for the account
	MaxExpires time.Duration // longest registration of its devices
}

// Policies gives each account's limits as the operator set them, so a
// change applies to the next request without a restart. Without it the
// proxy applies Config's limits to every account.
type Policies interface {
	AccountLimits(ctx context.Context, account string) AccountLimits
}

// limitsOf is account's limits: from Policies when configured, else the
// configuration's.
func (p *Proxy) limitsOf(ctx context.Context, account string) AccountLimits {
	def := AccountLimits{Rate: p.cfg.Rate, Burst: p.cfg.Burst, MaxStored: p.cfg.MaxStored, MaxExpires: maxExpires * time.Second}
	if p.cfg.Policies == nil {
		return def
	}
	l := p.cfg.Policies.AccountLimits(ctx, account)
	if l.Rate <= 0 || l.Burst < 1 || l.MaxStored < 1 || l.MaxExpires < time.Second {
		return def
	}
	return l
}
