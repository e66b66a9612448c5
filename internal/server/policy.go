package server

import (
	"context"

	"github.com/phonex/phonex/internal/server/files"
	"github.com/phonex/phonex/internal/server/operator"
	"github.com/phonex/phonex/internal/server/proxy"
)

// Operator is the node's operator service: the policies it enforces per
// account, and what the admin panel works through.
func (n *Node) Operator() *operator.Service { return n.op }

// effective is account's policy; on a store error the node's defaults,
// logged, so a store hiccup never stops messaging.
func (n *Node) effective(ctx context.Context, account string) operator.Policy {
	p, err := n.op.Effective(ctx, account)
	if err != nil {
		n.log.Warn("policy lookup failed, defaults apply", "err", err)
	}
	return p
}

// AccountLimits implements proxy.Policies.
func (n *Node) AccountLimits(ctx context.Context, account string) proxy.AccountLimits {
	p := n.effective(ctx, account)
	return proxy.AccountLimits{Rate: p.MessageRate, Burst: p.MessageBurst, MaxStored: p.MaxStoredBytes, MaxExpires: p.RegistrationExpiry}
}

// fileLimits implements files.SenderPolicy.
func (n *Node) fileLimits(ctx context.Context, account string) files.SenderLimits {
	p := n.effective(ctx, account)
	return files.SenderLimits{MaxFileSize: p.FileMaxSize, Quota: p.FileQuota, Expiry: p.FileExpiry}
}
