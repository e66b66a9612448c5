package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPipelinedMessages sends, in single writes, several requests back to
// back with a keep-alive ping and a refused request among them, one of
// them larger than a pooled message buffer: each is answered once on the
// same connection (in any order: the handlers run concurrently), and again
// on a second round (buffers reused).
func TestPipelinedMessages(t *testing.T) {
	r, _ := newRig(t, nil)
	c, err := tls.Dial("tcp", r.addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	options := func(id string, pad int) string {
		h := ""
		if pad > 0 {
			h = "Subject: " + strings.Repeat("p", pad) + "\r\n"
		}
		return "OPTIONS sip:a@" + domain + " SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK" + id + "\r\nFrom: <sip:b@" + domain + ">;tag=1\r\n" +
			"To: <sip:a@" + domain + ">\r\nCall-ID: " + id + "\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n" + h + "Content-Length: 0\r\n\r\n"
	}
	in := bufio.NewReader(c)
	for round := 0; round < 2; round++ {
		id := func(n int) string { return fmt.Sprintf("r%dm%d", round, n) }
		// Refused with its end known, so the connection goes on.
		refused := strings.Replace(options(id(2), 0), " SIP/2.0\r\n", " SIP/3.0\r\n", 1)
		if _, err := c.Write([]byte(options(id(1), 0) + "\r\n\r\n" + refused + options(id(3), 6000) + options(id(4), 0))); err != nil {
			t.Fatal(err)
		}
		want := []string{"200 " + id(1), "200 " + id(3), "200 " + id(4), "505 " + id(2), "pong"}
		var got []string
		for range want {
			a, err := readAnswer(in)
			if err != nil {
				t.Fatalf("round %d, after %q: %v", round, got, err)
			}
			got = append(got, a)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: answers %q, want %q", round, got, want)
		}
	}
}

// readAnswer reads a CRLF pong ("pong") or a response ("code Call-ID").
func readAnswer(in *bufio.Reader) (string, error) {
	line, err := in.ReadString('\n')
	if err != nil {
		return "", err
	}
	if line == "\r\n" {
		return "pong", nil
	}
	code, callID, length := "", "", 0
	if f := strings.Fields(line); len(f) > 1 {
		code = f[1]
	}
	for {
		h, err := in.ReadString('\n')
		if err != nil {
			return "", err
		}
		if h == "\r\n" {
			break
		}
		name, v, _ := strings.Cut(h, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "call-id", "i":
			callID = strings.TrimSpace(v)
		case "content-length", "l":
			fmt.Sscan(strings.TrimSpace(v), &length)
		}
	}
	if _, err := in.Discard(length); err != nil {
		return "", err
	}
	return code + " " + callID, nil
}
