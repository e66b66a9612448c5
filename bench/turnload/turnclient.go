package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/pion/stun/v4"
)

// rawClient is a minimal TURN client (RFC 8656) for the load generator: it
// sets up an allocation and a channel with pion/stun messages, then sends
// and receives ChannelData (§12.4) on its own UDP socket in batches, so
// that the generator spends little CPU per datagram and the relay, not the
// generator, is what a run measures.
type rawClient struct {
	conn   *net.UDPConn
	server *net.UDPAddr
	user   string
	pass   string
	realm  string
	nonce  string
	relay  *net.UDPAddr
}

func dialRaw(server, user, pass string) (*rawClient, error) {
	sa, err := net.ResolveUDPAddr("udp4", server)
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	conn.SetReadBuffer(4 << 20)
	conn.SetWriteBuffer(4 << 20)
	return &rawClient{conn: conn, server: sa, user: user, pass: pass}, nil
}

var requestedUDP = stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}

// do runs one request with long-term credentials (RFC 8489 §9.2),
// answering the first 401 and a 438 (stale nonce) with the realm and
// nonce they carry.
func (c *rawClient) do(method stun.Method, attrs ...stun.Setter) (*stun.Message, error) {
	for try := 0; try < 3; try++ {
		setters := []stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}
		setters = append(setters, attrs...)
		if c.nonce != "" {
			setters = append(setters, stun.NewUsername(c.user), stun.NewRealm(c.realm), stun.NewNonce(c.nonce),
				stun.NewLongTermIntegrity(c.user, c.realm, c.pass))
		}
		setters = append(setters, stun.Fingerprint)
		req, err := stun.Build(setters...)
		if err != nil {
			return nil, err
		}
		res, err := c.roundTrip(req)
		if err != nil {
			return nil, err
		}
		if res.Type.Class == stun.ClassSuccessResponse {
			return res, nil
		}
		var ec stun.ErrorCodeAttribute
		ec.GetFrom(res)
		if ec.Code != stun.CodeUnauthorized && ec.Code != stun.CodeStaleNonce {
			return nil, fmt.Errorf("%s: error %d %s", method, ec.Code, ec.Reason)
		}
		var nonce stun.Nonce
		var realm stun.Realm
		if nonce.GetFrom(res) != nil {
			return nil, fmt.Errorf("%s: %d without a nonce", method, ec.Code)
		}
		if realm.GetFrom(res) == nil {
			c.realm = realm.String()
		}
		c.nonce = nonce.String()
	}
	return nil, errors.New("authentication failed")
}

func (c *rawClient) roundTrip(req *stun.Message) (*stun.Message, error) {
	buf := make([]byte, 1600)
	for attempt := 0; attempt < 5; attempt++ {
		if _, err := c.conn.WriteToUDP(req.Raw, c.server); err != nil {
			return nil, err
		}
		deadline := time.Now().Add(500 * time.Millisecond)
		c.conn.SetReadDeadline(deadline)
		for {
			n, _, err := c.conn.ReadFromUDP(buf)
			if err != nil {
				break // retransmit (RFC 8489 §6.2.1)
			}
			if !stun.IsMessage(buf[:n]) {
				continue
			}
			res := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if res.Decode() != nil || res.TransactionID != req.TransactionID {
				continue
			}
			c.conn.SetReadDeadline(time.Time{})
			return res, nil
		}
	}
	return nil, errors.New("no answer from the relay")
}

// allocate asks for a relayed UDP address (RFC 8656 §7.1).
func (c *rawClient) allocate() error {
	res, err := c.do(stun.MethodAllocate, requestedUDP)
	if err != nil {
		return err
	}
	var ra stun.XORMappedAddress
	if err := ra.GetFromAs(res, stun.AttrXORRelayedAddress); err != nil {
		return fmt.Errorf("allocate: %w", err)
	}
	c.relay = &net.UDPAddr{IP: ra.IP, Port: ra.Port}
	return nil
}

// bind binds channel ch to peer (RFC 8656 §11), which also installs the
// permission for the peer's address.
func (c *rawClient) bind(ch uint16, peer *net.UDPAddr) error {
	num := stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{byte(ch >> 8), byte(ch), 0, 0}}
	_, err := c.do(stun.MethodChannelBind, num, peerAttr{peer})
	return err
}

type peerAttr struct{ a *net.UDPAddr }

func (p peerAttr) AddTo(m *stun.Message) error {
	return stun.XORMappedAddress{IP: p.a.IP, Port: p.a.Port}.AddToAs(m, stun.AttrXORPeerAddress)
}

// release ends the allocation with a Refresh of LIFETIME 0 (§7.3), sent
// once without waiting: the receiver goroutine owns the socket's reads, and
// an allocation whose refresh is lost expires on its own.
func (c *rawClient) release() {
	m, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodRefresh, stun.ClassRequest),
		stun.RawAttribute{Type: stun.AttrLifetime, Value: []byte{0, 0, 0, 0}},
		stun.NewUsername(c.user), stun.NewRealm(c.realm), stun.NewNonce(c.nonce),
		stun.NewLongTermIntegrity(c.user, c.realm, c.pass), stun.Fingerprint)
	if err == nil {
		c.conn.WriteToUDP(m.Raw, c.server)
	}
	c.conn.Close()
}

// channelData frames payload for channel ch (§12.4).
func channelData(ch uint16, payload []byte) []byte {
	b := make([]byte, 4+len(payload))
	binary.BigEndian.PutUint16(b, ch)
	binary.BigEndian.PutUint16(b[2:], uint16(len(payload)))
	copy(b[4:], payload)
	return b
}
