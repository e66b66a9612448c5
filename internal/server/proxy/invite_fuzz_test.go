package proxy

import (
	"crypto/x509"
	"strings"
	"sync"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// fuzzTx is a server transaction that keeps the response the handler gave.
type fuzzTx struct {
	mu    sync.Mutex
	codes []int
	done  chan struct{}
}

func (t *fuzzTx) Respond(res *sip.Response) error {
	t.mu.Lock()
	t.codes = append(t.codes, res.StatusCode)
	t.mu.Unlock()
	return nil
}
func (t *fuzzTx) Acks() <-chan *sip.Request          { return nil }
func (t *fuzzTx) OnCancel(sip.FnTxCancel) bool       { return true }
func (t *fuzzTx) Terminate()                         {}
func (t *fuzzTx) OnTerminate(sip.FnTxTerminate) bool { return true }
func (t *fuzzTx) Done() <-chan struct{}              { return t.done }
func (t *fuzzTx) Err() error                         { return nil }

const fuzzSource = "127.0.0.1:1"

// FuzzInvite feeds arbitrary requests, as the SIP parser hands them over,
// through the node's INVITE handling as if alice@example.org/a1 had sent
// them on her TLS connection. Whatever the input, the handler must answer
// with an error status (no device of bob's is registered, so nothing can
// ring), never panic or hang, and store nothing.
func FuzzInvite(f *testing.F) {
	seeds := []string{
		"INVITE sip:bob@example.org SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:1;branch=z9hG4bK.1\r\nFrom: <sip:alice@example.org>;tag=1\r\nTo: <sip:bob@example.org>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		"INVITE sip:carol@example.org;device=c1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:1;branch=z9hG4bK.2\r\nFrom: <sip:alice@example.org>;tag=1\r\nTo: <sip:carol@example.org>\r\nCall-ID: c2\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		"INVITE sip:bob@example.org SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:1;branch=z9hG4bK.3\r\nFrom: <sip:carol@example.org>;tag=1\r\nTo: <sip:bob@example.org>\r\nCall-ID: c3\r\nCSeq: 1 INVITE\r\nMax-Forwards: 0\r\nContent-Length: 0\r\n\r\n",
		"INVITE sip:bob@example.org SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:1;branch=z9hG4bK.4\r\nFrom: <sip:alice@example.org>;tag=1\r\nTo: <sip:bob@example.org>;tag=x\r\nCall-ID: c4\r\nCSeq: 2 INVITE\r\nContent-Length: 0\r\n\r\n",
		"INVITE sip:bob@other.example SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:1;branch=z9hG4bK.5\r\nFrom: <sip:alice@example.org>;tag=1\r\nTo: <sip:bob@other.example>\r\nCall-ID: c5\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
		"INVITE sip:alice@example.org SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:1;branch=z9hG4bK.6\r\nFrom: <sip:alice@example.org>;tag=1\r\nTo: <sip:alice@example.org>\r\nCall-ID: c6\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	r, _ := newRig(f, nil)
	r.account("alice", "a1")
	r.account("bob", "b1")
	r.account("carol", "c1")
	r.friends("alice", "bob")
	r.contact("carol", "alice")
	r.p.router.limits = newLimiter(1e9, 1<<30)
	cert, err := x509.ParseCertificate(r.issue("alice@"+domain+"/a1", nil).Certificate[0])
	if err != nil {
		f.Fatal(err)
	}
	r.p.ln.mu.Lock()
	r.p.ln.conns[fuzzSource] = &peerConn{cert: cert}
	r.p.ln.mu.Unlock()
	before := r.rows()
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := sip.ParseMessage(data)
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok {
			return
		}
		req.SetSource(fuzzSource)
		tx := &fuzzTx{done: make(chan struct{})}
		switch req.Method {
		case sip.ACK:
			r.p.router.onAck(req, tx)
		case sip.INVITE:
			r.p.router.onInvite(req, tx)
		default:
			r.p.router.inDialog(req, tx)
		}
		tx.mu.Lock()
		codes := tx.codes
		tx.mu.Unlock()
		if req.Method == sip.ACK {
			if len(codes) != 0 {
				t.Fatalf("an ACK was answered: %v", codes)
			}
			return
		}
		if len(codes) != 1 || codes[0] < 400 || codes[0] == 500 {
			t.Fatalf("answers %v to %q", codes, strings.SplitN(string(data), "\r\n", 2)[0])
		}
		if r.p.ActiveCalls() != 0 {
			t.Fatal("a dialog was recorded")
		}
	})
	if after := r.rows(); after != before {
		f.Errorf("the store changed: %s -> %s", before, after)
	}
}
