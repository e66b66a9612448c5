package proxy

import (
	"testing"
	"time"

	"github.com/phonex/phonex/internal/bus"
)

// FuzzHop feeds arbitrary SIP messages to the node as hops from another
// node: requests (an initial INVITE with a caller, CANCEL, ACK, in-dialog
// requests) and responses for transactions it never sent. Whatever the
// input, nothing may panic or hang; bob has no device on this node, so
// nothing rings.
func FuzzHop(f *testing.F) {
	for _, s := range []string{
		"INVITE sip:bob@example.org SIP/2.0\r\nVia: SIP/2.0/TLS example.org:5061;branch=z9hG4bK.1\r\nFrom: <sip:alice@example.org>;tag=1\r\nTo: <sip:bob@example.org>\r\nCall-ID: h1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 69\r\nContent-Length: 0\r\n\r\n",
		"CANCEL sip:bob@example.org SIP/2.0\r\nVia: SIP/2.0/TLS example.org:5061;branch=z9hG4bK.1\r\nFrom: <sip:alice@example.org>;tag=1\r\nTo: <sip:bob@example.org>\r\nCall-ID: h1\r\nCSeq: 1 CANCEL\r\nReason: SIP;cause=200\r\nContent-Length: 0\r\n\r\n",
		"ACK sip:bob@example.org SIP/2.0\r\nVia: SIP/2.0/TLS example.org:5061;branch=z9hG4bK.2\r\nFrom: <sip:alice@example.org>;tag=1\r\nTo: <sip:bob@example.org>;tag=2\r\nCall-ID: h1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
		"BYE sip:bob@example.org SIP/2.0\r\nVia: SIP/2.0/TLS example.org:5061;branch=z9hG4bK.3\r\nFrom: <sip:alice@example.org>;tag=1\r\nTo: <sip:bob@example.org>;tag=2\r\nCall-ID: h1\r\nCSeq: 2 BYE\r\nMax-Forwards: 69\r\nContent-Length: 0\r\n\r\n",
		"SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS example.org:5061;branch=z9hG4bK.4\r\nFrom: <sip:alice@example.org>;tag=1\r\nTo: <sip:bob@example.org>;tag=2\r\nCall-ID: h2\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	rs := clusterRigs(f, 1)
	r := rs[0]
	r.account("alice", "a1")
	r.account("bob", "b1")
	r.friends("alice", "bob")
	alice := &bus.Caller{AccountID: 1, DeviceID: r.deviceID("alice", "a1"), Account: "alice@" + domain, Device: "a1"}
	f.Fuzz(func(t *testing.T, msg []byte, withCaller bool) {
		if len(msg) == 0 {
			return
		}
		h := &bus.Hop{To: "n1", Tx: "fuzz", Msg: msg}
		if withCaller {
			h.Caller = alice
		}
		done := make(chan struct{})
		go func() {
			r.p.onHop(bus.Event{V: 1, Node: "n9", Kind: bus.KindSIP, Hop: h})
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("a hop hung: %q", msg)
		}
	})
}
