package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// torture reads one of RFC 4475's messages from testdata. The files hold
// the RFC's text with LF line ends; SIP's are CRLF.
func torture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "rfc4475", name+".sip"))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

// TestFrameTorture runs RFC 4475's torture messages through the framing
// layer. status 0 means the message is framed whole and handed to the SIP
// parser; fatal means the connection cannot go on after the answer.
func TestFrameTorture(t *testing.T) {
	for _, tc := range []struct {
		name    string // RFC 4475 section and message
		status  int
		fatal   bool
		partial bool
	}{
		{name: "wsinv"},      // 3.1.1.1 short tortuous INVITE: folding, odd spacing, compact forms
		{name: "esc01"},      // 3.1.1.3 escaped characters in URIs
		{name: "escnull"},    // 3.1.1.4 escaped NUL (%00) in URIs, compact "L"
		{name: "lwsdisp"},    // 3.1.1.6 no LWS between display name and <
		{name: "semiuri"},    // 3.1.1.9 semicolon-separated user part
		{name: "transports"}, // 3.1.1.10 unknown transports in Via
		{name: "unreason"},   // 3.1.1.12 UTF-8 reason phrase
		{name: "noreason"},   // 3.1.1.13 empty reason phrase
		// 3.1.1.2 is valid SIP, but its quoted strings carry raw BEL, NUL
		// and DEL. This node refuses control characters in headers on
		// purpose: they are how header injection and log forging start.
		{name: "intmeth", status: 400, fatal: true},
		// 3.1.2.1: extraneous separators in Via and Contact are the SIP
		// parser's to refuse; the framing is sound.
		{name: "badinv01"},
		{name: "clerr", partial: true},               // 3.1.2.2 Content-Length beyond the data: waits, the read timeout ends it
		{name: "scalar02", status: 400, fatal: true}, // 3.1.2.3 negative Content-Length
		{name: "scalarlg", status: 400},              // 3.1.2.4 overlarge CSeq (a response: dropped, not answered)
		{name: "ltgtruri", status: 400, fatal: true}, // 3.1.2.6 <> around the Request-URI
		{name: "lwsruri", status: 400, fatal: true},  // 3.1.2.7 LWS within the Request-URI
		{name: "lwsstart", status: 400, fatal: true}, // 3.1.2.8 several SP between request line elements
		{name: "trws", status: 400, fatal: true},     // 3.1.2.9 SP at the end of the request line
		{name: "escruri", status: 400},               // 3.1.2.10 escaped headers in the Request-URI
		{name: "mismatch01", status: 400},            // 3.1.2.15 CSeq method does not match
		{name: "mismatch02", status: 400},            // 3.1.2.16 unknown method, CSeq method does not match
		{name: "bigcode", status: 400, fatal: true},  // 3.1.2.17 status code out of range
		{name: "badvers", status: 505},               // 3.3.? SIP/7.0
		{name: "unkscm", status: 416},                // 3.3.? unknown URI scheme
		{name: "mcl01", status: 400, fatal: true},    // 3.1.2.? multiple Content-Length values
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := torture(t, tc.name)
			n, err := frame(msg)
			var fe *FrameError
			switch {
			case tc.partial:
				if !errors.Is(err, errPartial) {
					t.Fatalf("want incomplete, got %d %v", n, err)
				}
			case tc.status == 0:
				if err != nil || n != len(msg) {
					t.Fatalf("want %d bytes framed, got %d %v", len(msg), n, err)
				}
			case !errors.As(err, &fe):
				t.Fatalf("want %d, got %d %v", tc.status, n, err)
			case fe.Status != tc.status || (fe.Length == 0) != tc.fatal:
				t.Fatalf("want %d fatal=%v, got %d length %d", tc.status, tc.fatal, fe.Status, fe.Length)
			case !tc.fatal && fe.Length != len(msg):
				t.Fatalf("refused message length %d, want %d", fe.Length, len(msg))
			}
		})
	}
}

const okOptions = "OPTIONS sip:a@example.org SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\nFrom: <sip:b@example.org>;tag=1\r\n" +
	"To: <sip:a@example.org>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"

const okResponse = "SIP/2.0 200 OK\r\nCSeq: 1 MESSAGE\r\nContent-Length: 2\r\n\r\nhi"

func TestFrameStrict(t *testing.T) {
	smuggle := strings.Replace(okOptions, "Content-Length: 0\r\n", "Content-Length: 0\r\nContent-Length: 60\r\n", 1) +
		"OPTIONS sip:x@example.org SIP/2.0\r\nContent-Length: 0\r\n\r\n"
	for _, tc := range []struct {
		name   string
		in     string
		status int // 0: framed
		n      int // framed length when status is 0
	}{
		{"valid", okOptions, 0, len(okOptions)},
		{"two messages", okOptions + okOptions, 0, len(okOptions)},
		{"smuggled by a second Content-Length", smuggle, 400, 0},
		{"Content-Length and l", strings.Replace(okOptions, "Content-Length: 0\r\n", "Content-Length: 0\r\nl: 5\r\n", 1), 400, 0},
		{"missing Content-Length", strings.Replace(okOptions, "Content-Length: 0\r\n", "", 1), 400, 0},
		{"NUL in a header", strings.Replace(okOptions, "Call-ID: c1", "Call-ID: c\x001", 1), 400, 0},
		{"NUL before the header ends", "OPTIONS sip:a@example.org SIP/2.0\r\nVia: x\x00", 400, 0},
		{"CR in a header", strings.Replace(okOptions, "Call-ID: c1", "Call-ID: c\r1", 1), 400, 0},
		{"Content-Length with sign", strings.Replace(okOptions, "Content-Length: 0", "Content-Length: +0", 1), 400, 0},
		{"huge Content-Length", strings.Replace(okOptions, "Content-Length: 0", "Content-Length: 999999999", 1), 513, 0},
		{"header too large", "OPTIONS sip:a@example.org SIP/2.0\r\nX: " + strings.Repeat("a", maxHeaderBytes), 513, 0},
		{"SIP/3.0", strings.Replace(okOptions, "SIP/2.0\r\n", "SIP/3.0\r\n", 1), 505, 0},
		{"tel URI", strings.Replace(okOptions, "sip:a@example.org SIP", "tel:+1234 SIP", 1), 416, 0},
		{"bad header name", strings.Replace(okOptions, "Call-ID:", "Call ID:", 1), 400, 0},
		{"continuation first", strings.Replace(okOptions, "Via:", " Via:", 1), 400, 0},
		{"response", okResponse + "more", 0, len(okResponse)},
		{"body with a run of zeros over a whole read", zeroBody(2*readBuffer, false), 400, 0},
		{"body ending in a short read of zeros", zeroTail(), 400, 0},
		{"body with a shorter run of zeros", zeroBody(readBuffer/2, false), 0, len(zeroBody(readBuffer/2, false))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := frame([]byte(tc.in))
			if tc.status == 0 {
				if err != nil || n != tc.n {
					t.Fatalf("want %d framed, got %d %v", tc.n, n, err)
				}
				return
			}
			var fe *FrameError
			if !errors.As(err, &fe) || fe.Status != tc.status {
				t.Fatalf("want %d, got %d %v", tc.status, n, err)
			}
		})
	}
}

// TestRefusalEchoesNoControlCharacters checks the answer to a refused
// request copies the identifying headers and nothing smuggled.
func TestRefusalEchoesNoControlCharacters(t *testing.T) {
	in := strings.Replace(okOptions, "Call-ID: c1", "Call-ID: c\x00<script>", 1)
	_, err := frame([]byte(in))
	var fe *FrameError
	if !errors.As(err, &fe) {
		t.Fatal(err)
	}
	out := string(refusal([]byte(in), fe))
	if !strings.HasPrefix(out, "SIP/2.0 400 ") || strings.ContainsRune(out, 0) || strings.Contains(out, "script") ||
		!strings.Contains(out, "CSeq: 1 OPTIONS\r\n") || !strings.Contains(out, "Via: SIP/2.0/TLS h;branch=z9hG4bK1\r\n") {
		t.Fatalf("%q", out)
	}
}

func FuzzFrame(f *testing.F) {
	for _, name := range []string{"wsinv", "esc01", "escnull", "intmeth", "unreason", "noreason", "scalar02", "mcl01", "badvers", "unkscm", "clerr"} {
		f.Add(torture(f, name))
	}
	f.Add([]byte(okOptions + okOptions))
	f.Add([]byte("\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := frame(b)
		var fe *FrameError
		switch {
		case err == nil:
			if n <= 0 || n > len(b) {
				t.Fatalf("framed %d of %d bytes", n, len(b))
			}
			if m, err := frame(b[:n]); err != nil || m != n {
				t.Fatalf("the framed message alone: %d %v", m, err)
			}
		case errors.As(err, &fe):
			if fe.Length < 0 || fe.Length > len(b) || fe.Status < 400 || fe.Status > 599 {
				t.Fatalf("refusal %+v of %d bytes", fe, len(b))
			}
			refusal(b, fe)
		case !errors.Is(err, errPartial):
			t.Fatalf("unexpected error %v", err)
		}
	})
}

func BenchmarkFrame(b *testing.B) {
	body := strings.Repeat("x", 1024)
	msg := []byte("MESSAGE sip:bravo@example.org SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:40000;branch=z9hG4bK.abcdef;rport\r\n" +
		"From: <sip:alpha@example.org>;tag=0123456789abcdef\r\nTo: <sip:bravo@example.org>\r\nCall-ID: 0123456789abcdef0123456789abcdef\r\n" +
		"CSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\nContent-Type: application/vnd.phonex.envelope\r\nContent-Length: 1024\r\n\r\n" + body)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if n, err := frame(msg); err != nil || n != len(msg) {
			b.Fatal(n, err)
		}
	}
}

// zeroBody is a MESSAGE whose body holds a run of n zero bytes after a
// non-zero one, and another after them unless atEnd.
func zeroBody(n int, atEnd bool) string {
	body := "x" + strings.Repeat("\x00", n)
	if !atEnd {
		body += "y"
	}
	return "MESSAGE sip:a@example.org SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bKz\r\nFrom: <sip:b@example.org>;tag=1\r\n" +
		"To: <sip:a@example.org>\r\nCall-ID: z1\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\n" +
		fmt.Sprintf("Content-Length: %04d\r\n\r\n", len(body)) + body
}

// zeroTail is a MESSAGE whose last read (readBuffer bytes each from the
// start) is 10 zero bytes.
func zeroTail() string {
	head := len(zeroBody(0, true))
	return zeroBody(2*readBuffer+10-head, true)
}
