package proxy

import (
	"slices"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// allowHeader lists the methods the node handles: whatever handlers are
// registered with the SIP server, so a method added later shows without
// another list to keep in step.
func (p *Proxy) allowHeader() sip.Header {
	ms := p.srv.RegisteredMethods()
	slices.Sort(ms)
	return sip.NewHeader("Allow", strings.Join(ms, ", "))
}

// notAllowed answers a method without a handler: 405 with the Allow
// header RFC 3261 §21.4.6 requires. An ACK is never answered (RFC 3261
// §17.1.1.3 and §12.2.2: it has no response; the ACK to a non-2xx final
// response ends the server transaction, §17.2.1), so it is dropped.
func (p *Proxy) notAllowed(req *sip.Request, tx sip.ServerTransaction) {
	if req.Method == sip.ACK {
		return
	}
	p.respond(tx, req, 405, "Method Not Allowed", p.allowHeader())
}
