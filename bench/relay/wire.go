package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// The load generator's devices speak SIP over TLS themselves, with
// requests and answers written from templates, as SIPp does for the
// reference: a generator built on a general SIP stack spent more CPU per
// MESSAGE than the node it measured, on the same two cores, and so held
// the node's figure down. What goes over the wire is what a device sends:
// a REGISTER, then MESSAGEs with Via, From (tagged), To, Call-ID, CSeq,
// Max-Forwards, Content-Type and Content-Length, over mutual TLS 1.3.

// wireConn is one device's TLS connection and its reader.
type wireConn struct {
	c    *tls.Conn
	r    *bufio.Reader
	user string
	host string // the device's sent-by in Via
	n    uint64 // requests sent, for CSeq, branch and Call-ID
	buf  []byte
}

func dialWire(addr string, tc *tls.Config, user string) (*wireConn, error) {
	c, err := tls.Dial("tcp", addr, tc)
	if err != nil {
		return nil, err
	}
	return &wireConn{c: c, r: bufio.NewReaderSize(c, 8192), user: user, host: c.LocalAddr().String()}, nil
}

// request writes one request and returns its number.
func (w *wireConn) request(method, to string, hdrs string, ctype string, body []byte) (uint64, error) {
	w.n++
	n := strconv.FormatUint(w.n, 10)
	b := w.buf[:0]
	b = append(b, method...)
	b = append(b, " sip:"...)
	b = append(b, to...)
	b = append(b, " SIP/2.0\r\nVia: SIP/2.0/TLS "...)
	b = append(b, w.host...)
	b = append(b, ";branch=z9hG4bK"...)
	b = append(b, n...)
	b = append(b, "\r\nMax-Forwards: 70\r\nFrom: <sip:"...)
	b = append(b, w.user...)
	b = append(b, ">;tag=f"...)
	b = append(b, n...)
	b = append(b, "\r\nTo: <sip:"...)
	b = append(b, to...)
	b = append(b, ">\r\nCall-ID: "...)
	b = append(b, n...)
	b = append(b, '.')
	b = append(b, w.host...)
	b = append(b, "\r\nCSeq: "...)
	b = append(b, n...)
	b = append(b, ' ')
	b = append(b, method...)
	b = append(b, "\r\n"...)
	b = append(b, hdrs...)
	if ctype != "" {
		b = append(b, "Content-Type: "...)
		b = append(b, ctype...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	w.buf = b
	_, err := w.c.Write(b)
	return w.n, err
}

// sipMsg is a message read off a connection: its start line, the header
// lines an answer copies, and its body (valid until the next read).
type sipMsg struct {
	start string
	echo  [][]byte // Via, From, Call-ID, CSeq lines
	to    []byte
	body  []byte
}

var errBadMessage = errors.New("malformed SIP message from the node")

// read reads the next message, skipping CRLF keep-alives.
func (w *wireConn) read(m *sipMsg) error {
	m.echo, m.to, m.body = m.echo[:0], nil, nil
	var line []byte
	var err error
	for {
		if line, err = w.r.ReadSlice('\n'); err != nil {
			return err
		}
		if len(bytes.TrimSpace(line)) > 0 {
			break
		}
	}
	m.start = string(bytes.TrimRight(line, "\r\n"))
	length := -1
	for {
		line, err = w.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		l := bytes.TrimRight(line, "\r\n")
		if len(l) == 0 {
			break
		}
		name, v, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			return errBadMessage
		}
		switch string(bytes.ToLower(bytes.TrimSpace(name))) {
		case "via", "v", "from", "f", "call-id", "i", "cseq":
			m.echo = append(m.echo, bytes.Clone(l))
		case "to", "t":
			m.to = bytes.Clone(l)
		case "content-length", "l":
			if length, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return errBadMessage
			}
		}
	}
	if length < 0 {
		return errBadMessage
	}
	if cap(m.body) < length {
		m.body = make([]byte, length)
	}
	m.body = m.body[:length]
	_, err = io.ReadFull(w.r, m.body)
	return err
}

// status is the code of a response's status line.
func (m *sipMsg) status() int {
	if len(m.start) < 12 || m.start[:8] != "SIP/2.0 " {
		return 0
	}
	n, _ := strconv.Atoi(m.start[8:11])
	return n
}

// answer writes a 200 to the request m (RFC 3261 §8.2.6).
func (w *wireConn) answer(m *sipMsg, tag string) error {
	b := append(w.buf[:0], "SIP/2.0 200 OK\r\n"...)
	for _, l := range m.echo {
		b = append(b, l...)
		b = append(b, "\r\n"...)
	}
	b = append(b, m.to...)
	if !bytes.Contains(m.to, []byte(";tag=")) {
		b = append(b, ";tag="...)
		b = append(b, tag...)
	}
	b = append(b, "\r\nContent-Length: 0\r\n\r\n"...)
	w.buf = b
	_, err := w.c.Write(b)
	return err
}

// do sends a request and waits for its final answer.
func (w *wireConn) do(method, to, hdrs, ctype string, body []byte) (int, error) {
	w.c.SetDeadline(time.Now().Add(10 * time.Second))
	defer w.c.SetDeadline(time.Time{})
	if _, err := w.request(method, to, hdrs, ctype, body); err != nil {
		return 0, err
	}
	var m sipMsg
	for {
		if err := w.read(&m); err != nil {
			return 0, err
		}
		if code := m.status(); code >= 200 {
			return code, nil
		} else if code == 0 {
			return 0, fmt.Errorf("%w: %q where an answer was due", errBadMessage, m.start)
		}
	}
}

// receive answers every MESSAGE on w with 200 until the connection ends,
// counting them in st (and their latency while st.record is set).
func (w *wireConn) receive(st *stats) {
	var m sipMsg
	tag := "r" + strconv.FormatUint(uint64(time.Now().UnixNano()), 36)
	for {
		if err := w.read(&m); err != nil {
			return
		}
		if m.status() != 0 {
			continue
		}
		now := time.Now()
		st.received.Add(1)
		if len(m.body) >= 8 && st.record.Load() {
			id := binary.BigEndian.Uint64(m.body)
			if t0, ok := sentAt.LoadAndDelete(id); ok {
				st.mu.Lock()
				st.lat = append(st.lat, now.Sub(t0.(time.Time)))
				st.mu.Unlock()
			}
		}
		if err := w.answer(&m, tag); err != nil {
			return
		}
	}
}
