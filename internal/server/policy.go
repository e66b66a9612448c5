package server

import (
	"context"
	"github.com/phonex/phonex/internal/throttle"
	"time"

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
		// Once per 10 s at most: this runs for every message.
		now := n.now().UnixNano()
		if last := n.policyWarned.Load(); now-last > int64(10*time.Second) && n.policyWarned.CompareAndSwap(last, now) {
			n.log.Warn("policy lookup failed, defaults apply", "err", err)
		}
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

// throttles are the node's password-attempt policies for an account, with
// the lock-out thresholds of its operator policy; a threshold is never
// below the free attempts plus one.
func (n *Node) throttles(ctx context.Context, account string) (dev, acc, login throttle.Policy) {
	p := n.effective(ctx, account)
	dev, acc, login = n.devPol, n.accPol, n.loginPol
	dev.LockAfter = max(p.DeviceAttemptsLock, dev.Free+1)
	acc.LockAfter = max(p.AccountAttemptsLock, acc.Free+1)
	login.LockAfter = max(p.LoginAttemptsLock, login.Free+1, login.HumanAfter+1)
	return dev, acc, login
}
