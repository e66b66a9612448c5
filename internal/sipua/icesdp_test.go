package sipua

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const (
	testUfrag = "aB3+"
	testPwd   = "abcdefghij0123456789/+"
	hostCand  = "1 1 udp 2130706431 127.0.0.1 4000 typ host"
	srflxCand = "2 1 udp 1694498815 198.18.0.5 61000 typ srflx raddr 10.0.1.2 rport 4000"
	relayCand = "3 1 udp 16777215 198.18.0.1 50000 typ relay raddr 198.18.0.5 rport 61001"
)

func iceOffer(attrs ...string) []byte {
	return offerSDP("m=audio 4000 RTP/AVP 0", attrs...)
}

func TestParseICE(t *testing.T) {
	for _, tt := range []struct {
		name     string
		sdp      []byte
		wantErr  error
		cands    int
		mismatch bool
		lite     bool
	}{
		{"full", iceOffer("a=ice-ufrag:"+testUfrag, "a=ice-pwd:"+testPwd, "a=ice-options:ice2",
			"a=candidate:"+hostCand, "a=candidate:"+srflxCand, "a=candidate:"+relayCand, "a=end-of-candidates"), nil, 3, false, false},
		{"session-level credentials and lite", sdpLines("v=0", "o=peer 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
			"a=ice-lite", "a=ice-ufrag:"+testUfrag, "a=ice-pwd:"+testPwd, "m=audio 4000 RTP/AVP 0", "a=candidate:"+hostCand), nil, 1, false, true},
		{"no ICE", iceOffer(), nil, 0, false, false},
		{"ufrag without pwd", iceOffer("a=ice-ufrag:"+testUfrag, "a=candidate:"+hostCand), nil, 0, false, false},
		{"short ufrag", iceOffer("a=ice-ufrag:abc", "a=ice-pwd:"+testPwd, "a=candidate:"+hostCand), ErrBadICE, 0, false, false},
		{"short pwd", iceOffer("a=ice-ufrag:"+testUfrag, "a=ice-pwd:short", "a=candidate:"+hostCand), ErrBadICE, 0, false, false},
		{"pwd with a bad character", iceOffer("a=ice-ufrag:"+testUfrag, "a=ice-pwd:abcdefghij0123456789-_", "a=candidate:"+hostCand), ErrBadICE, 0, false, false},
		{"long ufrag", iceOffer("a=ice-ufrag:"+strings.Repeat("a", 257), "a=ice-pwd:"+testPwd, "a=candidate:"+hostCand), ErrBadICE, 0, false, false},
		{"malformed and RTCP candidates skipped", iceOffer("a=ice-ufrag:"+testUfrag, "a=ice-pwd:"+testPwd, "a=candidate:"+hostCand,
			"a=candidate:garbage", "a=candidate:1 2 udp 2130706430 127.0.0.1 4001 typ host", "a=candidate:1 1 udp 1 127.0.0.1 70000 typ host"), nil, 1, false, false},
		{"default address none of the candidates", iceOffer("a=ice-ufrag:"+testUfrag, "a=ice-pwd:"+testPwd, "a=candidate:"+srflxCand), nil, 0, true, false},
		{"ice-mismatch", iceOffer("a=ice-mismatch"), nil, 0, true, false},
		{"only malformed candidates", iceOffer("a=ice-ufrag:"+testUfrag, "a=ice-pwd:"+testPwd, "a=candidate:x y z"), nil, 0, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMedia(tt.sdp)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if m.ICEMismatch != tt.mismatch {
				t.Fatalf("mismatch = %v", m.ICEMismatch)
			}
			if tt.cands == 0 {
				if m.ICE != nil {
					t.Fatalf("ICE = %+v, want none", m.ICE)
				}
				return
			}
			if m.ICE == nil || len(m.ICE.Candidates) != tt.cands || m.ICE.Ufrag != testUfrag || m.ICE.Pwd != testPwd || m.ICE.Lite != tt.lite {
				t.Fatalf("ICE = %+v", m.ICE)
			}
		})
	}
}

func TestMarshalICE(t *testing.T) {
	m, err := ParseMedia(iceOffer("a=ice-ufrag:"+testUfrag, "a=ice-pwd:"+testPwd, "a=candidate:"+hostCand, "a=candidate:"+relayCand))
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"a=ice-ufrag:" + testUfrag, "a=ice-pwd:" + testPwd, "a=ice-options:ice2",
		"a=candidate:" + hostCand, "a=candidate:" + relayCand, "a=end-of-candidates"} {
		if !strings.Contains(string(b), want+"\r\n") {
			t.Fatalf("no %q in\n%s", want, b)
		}
	}
	back, err := ParseMedia(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.ICE, m.ICE) {
		t.Fatalf("round trip %+v, want %+v", back.ICE, m.ICE)
	}
	m.ICE, m.ICEMismatch = nil, true
	if b, _ = m.Marshal(); !strings.Contains(string(b), "a=ice-mismatch\r\n") || strings.Contains(string(b), "candidate") {
		t.Fatalf("mismatch answer:\n%s", b)
	}
}

// FuzzParseICE feeds descriptions with ICE attributes (credentials,
// candidate lines of every type, extensions) through the parser: nothing
// may panic or hang, malformed credentials are ErrBadICE, and what parses
// survives Marshal and parsing again with the same ICE parameters.
func FuzzParseICE(f *testing.F) {
	f.Add(iceOffer("a=ice-ufrag:"+testUfrag, "a=ice-pwd:"+testPwd, "a=ice-options:ice2",
		"a=candidate:"+hostCand, "a=candidate:"+srflxCand, "a=candidate:"+relayCand, "a=end-of-candidates"))
	f.Add(iceOffer("a=ice-ufrag:"+testUfrag, "a=ice-pwd:"+testPwd,
		"a=candidate:1 1 tcp 1518280447 127.0.0.1 4000 typ host tcptype passive generation 0 network-id 1"))
	f.Add(iceOffer("a=ice-ufrag:"+testUfrag, "a=ice-pwd:"+testPwd, "a=candidate:1 1 udp 2130706431 ::1 4000 typ host"))
	f.Add(iceOffer("a=ice-ufrag:"+testUfrag, "a=ice-pwd:"+testPwd, "a=candidate:1 1 udp 2130706431 x.local 4000 typ host"))
	f.Add(iceOffer("a=ice-ufrag:"+testUfrag, "a=ice-pwd:"+testPwd, "a=candidate:1 1 UDP 1 127.0.0.1 4000 typ prflx raddr 0.0.0.0 rport 0"))
	f.Add(iceOffer("a=ice-mismatch"))
	f.Add(iceOffer("a=ice-ufrag:"+testUfrag, "a=ice-pwd:"+testPwd, "a=candidate: 1 udp 1 127.0.0.1 4000 typ"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMedia(b)
		if err != nil {
			if strings.Contains(err.Error(), "ICE") && !errors.Is(err, ErrBadICE) {
				t.Fatalf("ICE error without ErrBadICE: %v", err)
			}
			return
		}
		if m.ICE == nil || !m.Addr.IsValid() || m.Port == 0 {
			return
		}
		out := Media{Addr: m.Addr, Port: m.Port, Codecs: []Codec{CodecPCMU}, ICE: m.ICE}
		enc, err := out.Marshal()
		if err != nil {
			return
		}
		back, err := ParseMedia(enc)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(back.ICE, m.ICE) {
			t.Fatalf("re-parse changed ICE: %+v, want %+v\n%s", back.ICE, m.ICE, enc)
		}
	})
}
