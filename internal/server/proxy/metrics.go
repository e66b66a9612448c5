package proxy

import (
	"sync/atomic"

	"github.com/emiago/sipgo/sip"

	"github.com/phonex/phonex/internal/metrics"
)

// outcomeTx remembers the last final answer sent on a server transaction,
// so a request's outcome is counted once, where its handler returns,
// whichever of its many exits answered it.
type outcomeTx struct {
	sip.ServerTransaction
	final atomic.Int32
}

func (t *outcomeTx) Respond(res *sip.Response) error {
	if res.StatusCode >= 200 {
		t.final.Store(int32(res.StatusCode))
	}
	return t.ServerTransaction.Respond(res)
}

// countMessage counts a MESSAGE's refusal; acceptance is counted where
// the copies are stored. A digest challenge is the normal first step of a
// phone's request, not a refusal.
func (p *Proxy) countMessage(t *outcomeTx) { p.countAnswer(int(t.final.Load())) }

// countAnswer counts a MESSAGE's final answer code, on either SIP path.
func (p *Proxy) countAnswer(code int) {
	switch {
	case code < 300, code == 401, code == 407:
	default:
		p.cfg.Metrics.MessageRefused(code)
	}
}

// countCall counts a call's outcome. No answer of ours means sipgo
// answered the INVITE itself: 487 after the caller's CANCEL.
func (p *Proxy) countCall(t *outcomeTx) {
	code := int(t.final.Load())
	if code == 0 {
		code = 487
	}
	p.cfg.Metrics.CallFinal(code)
}

// connKind is the metrics kind of the connection from source.
func (p *Proxy) connKind(source string) string {
	if p.ln != nil && p.ln.peer(source) != nil {
		return metrics.KindDevice
	}
	return metrics.KindPhone
}

// conns counts the listener's established connections.
func (l *peerListener) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}
