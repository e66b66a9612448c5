package sipua

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

const testHash = "1.10 03d49f6516cab6e1ec5023899afe842893791b2bc8fb8f3a799b9ce1ddde9425"

func sdpLines(lines ...string) []byte {
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

func offerSDP(mline string, attrs ...string) []byte {
	l := []string{"v=0", "o=peer 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0", mline}
	return sdpLines(append(l, attrs...)...)
}

func TestParseMedia(t *testing.T) {
	linphone, err := os.ReadFile("testdata/linphone_offer.sdp")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		sdp        []byte
		wantErr    error
		port       int
		proto      string
		codecs     []string
		hash       string
		dir        Direction
		hold, sdes bool
	}{
		{name: "linphone offer", sdp: linphone, port: 7078, proto: ProtoAVP,
			codecs: []string{"opus/48000/2", "speex/16000", "speex/8000", "PCMU/8000", "PCMA/8000", "telephone-event/48000", "telephone-event/16000", "telephone-event/8000"},
			hash:   testHash, dir: SendRecv},
		{name: "static types without rtpmap", sdp: offerSDP("m=audio 4000 RTP/AVP 0 8"), port: 4000, proto: ProtoAVP,
			codecs: []string{"PCMU/8000", "PCMA/8000"}, dir: SendRecv},
		{name: "SAVP with zrtp-hash upper case", sdp: offerSDP("m=audio 4000 RTP/SAVP 0", "a=zrtp-hash:1.10 "+strings.ToUpper(testHash[5:])),
			port: 4000, proto: ProtoSAVP, codecs: []string{"PCMU/8000"}, hash: testHash, dir: SendRecv},
		{name: "session-level zrtp-hash", sdp: sdpLines("v=0", "o=p 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0", "a=zrtp-hash:"+testHash, "m=audio 4000 RTP/AVP 8"),
			port: 4000, proto: ProtoAVP, codecs: []string{"PCMA/8000"}, hash: testHash, dir: SendRecv},
		{name: "hold sendonly", sdp: offerSDP("m=audio 4000 RTP/AVP 0", "a=sendonly"), port: 4000, proto: ProtoAVP,
			codecs: []string{"PCMU/8000"}, dir: SendOnly, hold: true},
		{name: "hold inactive", sdp: offerSDP("m=audio 4000 RTP/AVP 0", "a=inactive"), port: 4000, proto: ProtoAVP,
			codecs: []string{"PCMU/8000"}, dir: Inactive, hold: true},
		{name: "RFC 2543 hold", sdp: sdpLines("v=0", "o=p 1 2 IN IP4 127.0.0.1", "s=-", "c=IN IP4 0.0.0.0", "t=0 0", "m=audio 4000 RTP/AVP 0"),
			port: 4000, proto: ProtoAVP, codecs: []string{"PCMU/8000"}, dir: SendRecv, hold: true},
		{name: "SDES keys, no zrtp-hash", sdp: offerSDP("m=audio 4000 RTP/SAVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:VozD8O2kcDFeclWMjBOwvVxN0Bbobh3I6/oxWYye"),
			port: 4000, proto: ProtoSAVP, codecs: []string{"PCMU/8000"}, dir: SendRecv, sdes: true},
		{name: "short zrtp-hash", sdp: offerSDP("m=audio 4000 RTP/AVP 0", "a=zrtp-hash:1.10 abcd"), wantErr: ErrBadZRTPHash},
		{name: "zrtp-hash not hex", sdp: offerSDP("m=audio 4000 RTP/AVP 0", "a=zrtp-hash:1.10 "+strings.Repeat("g", 64)), wantErr: ErrBadZRTPHash},
		{name: "zrtp-hash without version", sdp: offerSDP("m=audio 4000 RTP/AVP 0", "a=zrtp-hash:"+testHash[5:]), wantErr: ErrBadZRTPHash},
		{name: "video only", sdp: offerSDP("m=video 4000 RTP/AVP 96", "a=rtpmap:96 VP8/90000"), wantErr: ErrNoAudio},
		{name: "host name address", sdp: sdpLines("v=0", "o=p 1 1 IN IP4 h", "s=-", "c=IN IP4 host.example", "t=0 0", "m=audio 4000 RTP/AVP 0"), wantErr: ErrBadSDP},
		{name: "bad rtpmap", sdp: offerSDP("m=audio 4000 RTP/AVP 96", "a=rtpmap:96 opus"), wantErr: ErrBadSDP},
		{name: "not SDP", sdp: []byte("hello"), wantErr: ErrBadSDP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMedia(tt.sdp)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var codecs []string
			for _, c := range m.Codecs {
				codecs = append(codecs, c.String())
			}
			if m.Port != tt.port || m.Proto != tt.proto || strings.Join(codecs, ",") != strings.Join(tt.codecs, ",") ||
				m.ZRTPHash != tt.hash || m.Direction != tt.dir || m.OnHold() != tt.hold || m.SDES != tt.sdes {
				t.Errorf("got port %d proto %s codecs %v hash %q dir %s hold %v sdes %v", m.Port, m.Proto, codecs, m.ZRTPHash, m.Direction, m.OnHold(), m.SDES)
			}
		})
	}
}

func TestAnswer(t *testing.T) {
	local := func(codecs ...Codec) Media {
		return Media{Addr: netip.MustParseAddr("127.0.0.1"), Port: 5000, Codecs: codecs, ZRTPHash: testHash}
	}
	all := []Codec{CodecOpus, CodecPCMU, CodecPCMA, CodecTelephoneEvent}
	tests := []struct {
		name    string
		offer   []byte
		local   Media
		codec   string
		pt      uint8
		dir     Direction
		te      bool
		wantErr error
	}{
		{name: "opus preferred by offer, its payload type kept", offer: offerSDP("m=audio 4000 RTP/AVP 111 0 101", "a=rtpmap:111 opus/48000/2", "a=rtpmap:101 telephone-event/8000"),
			local: local(all...), codec: "opus/48000/2", pt: 111, dir: SendRecv, te: true},
		{name: "peer without opus gets PCMU", offer: offerSDP("m=audio 4000 RTP/AVP 0 8"), local: local(all...), codec: "PCMU/8000", pt: 0, dir: SendRecv},
		{name: "offer order wins", offer: offerSDP("m=audio 4000 RTP/AVP 8 0"), local: local(all...), codec: "PCMA/8000", pt: 8, dir: SendRecv},
		{name: "local without opus (no cgo)", offer: offerSDP("m=audio 4000 RTP/AVP 96 8", "a=rtpmap:96 opus/48000/2"), local: local(CodecPCMU, CodecPCMA),
			codec: "PCMA/8000", pt: 8, dir: SendRecv},
		{name: "telephone-event at 48k is not ours", offer: offerSDP("m=audio 4000 RTP/AVP 0 99", "a=rtpmap:99 telephone-event/48000"), local: local(all...),
			codec: "PCMU/8000", pt: 0, dir: SendRecv},
		{name: "hold: sendonly answered recvonly", offer: offerSDP("m=audio 4000 RTP/AVP 0", "a=sendonly"), local: local(all...), codec: "PCMU/8000", dir: RecvOnly},
		{name: "hold: inactive answered inactive", offer: offerSDP("m=audio 4000 RTP/AVP 0", "a=inactive"), local: local(all...), codec: "PCMU/8000", dir: Inactive},
		{name: "resume", offer: offerSDP("m=audio 4000 RTP/AVP 0", "a=sendrecv"), local: local(all...), codec: "PCMU/8000", dir: SendRecv},
		{name: "nothing in common", offer: offerSDP("m=audio 4000 RTP/AVP 18", "a=rtpmap:18 G729/8000"), local: local(all...), wantErr: ErrNoCodec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			offer, err := ParseMedia(tt.offer)
			if err != nil {
				t.Fatal(err)
			}
			ans, c, err := Answer(offer, tt.local)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.String() != tt.codec || c.PT != tt.pt || ans.Direction != tt.dir || ans.Proto != offer.Proto {
				t.Errorf("got %s pt %d dir %s proto %s", c, c.PT, ans.Direction, ans.Proto)
			}
			if hasTE := len(ans.Codecs) == 2; hasTE != tt.te {
				t.Errorf("telephone-event in answer: %v, want %v", hasTE, tt.te)
			}
			// The answer survives a round trip and the offerer reads the
			// same choice from it.
			b, err := ans.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseMedia(b)
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			if back.ZRTPHash != testHash || back.Direction != tt.dir || back.Port != 5000 {
				t.Errorf("round trip: %+v", back)
			}
			got, err := Chosen(offer.Codecs, back)
			if err != nil || got.String() != tt.codec || got.PT != tt.pt {
				t.Errorf("Chosen = %v %v", got, err)
			}
		})
	}
}

func TestOfferMarshal(t *testing.T) {
	for _, tt := range []struct {
		name     string
		m        Media
		want     []string
		unwanted []string
	}{
		{name: "AVP with zrtp-hash", m: Media{Addr: netip.MustParseAddr("127.0.0.1"), Port: 5004, Codecs: []Codec{CodecOpus, CodecPCMU, CodecPCMA, CodecTelephoneEvent}, ZRTPHash: testHash},
			want: []string{"m=audio 5004 RTP/AVP 96 0 8 101", "a=rtpmap:96 opus/48000/2", "a=rtpmap:0 PCMU/8000", "a=zrtp-hash:" + testHash, "a=sendrecv", "c=IN IP4 127.0.0.1"}},
		{name: "SAVP", m: Media{Addr: netip.MustParseAddr("::1"), Port: 5004, Proto: ProtoSAVP, Codecs: []Codec{CodecPCMU}, ZRTPHash: testHash},
			want: []string{"m=audio 5004 RTP/SAVP 0", "c=IN IP6 ::1"}},
		{name: "no ZRTP", m: Media{Addr: netip.MustParseAddr("127.0.0.1"), Port: 5004, Codecs: []Codec{CodecPCMU}, Direction: SendOnly},
			want: []string{"a=sendonly"}, unwanted: []string{"zrtp-hash"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(b), w+"\r\n") {
					t.Errorf("missing %q in\n%s", w, b)
				}
			}
			for _, w := range tt.unwanted {
				if strings.Contains(string(b), w) {
					t.Errorf("unexpected %q in\n%s", w, b)
				}
			}
		})
	}
}

// FuzzParseMedia feeds arbitrary session descriptions through the parser,
// the answer and a re-encoding: nothing may panic, and what parses must
// survive Marshal and parse again with the same zrtp-hash.
func FuzzParseMedia(f *testing.F) {
	if b, err := os.ReadFile("testdata/linphone_offer.sdp"); err == nil {
		f.Add(b)
	}
	f.Add(offerSDP("m=audio 4000 RTP/AVP 0 8", "a=zrtp-hash:"+testHash))
	f.Add(offerSDP("m=audio 4000 RTP/SAVP 96", "a=rtpmap:96 opus/48000/2", "a=sendonly"))
	f.Add(offerSDP("m=audio 4000 RTP/AVP 0", "a=zrtp-hash:1.10 zz"))
	f.Add(offerSDP("m=audio 4000 RTP/AVP 96 97", "a=rtpmap:96 opus/48000/2", "a=rtpmap:97 red/48000/2", "a=fmtp:97 96/96"))
	f.Add(offerSDP("m=audio 4000 RTP/AVP 97 96", "a=rtpmap:97 red/48000/2", "a=fmtp:97 96/96/x", "a=rtpmap:96 opus/48000/2"))
	f.Add(offerSDP("m=audio 4000 RTP/AVP 0", "a=zrtp-hash:"+testHash, "a="+HashSigAttr+":v1 alpha@example.org/a1 "+strings.Repeat("AAAA", 22)))
	f.Add(offerSDP("m=audio 4000 RTP/AVP 0", "a=zrtp-hash:"+testHash, "a="+HashSigAttr+":v1 x", "a="+HashSigAttr+":v1 a@b/c AAAA"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMedia(b)
		if err != nil {
			return
		}
		local := Media{Addr: netip.MustParseAddr("127.0.0.1"), Port: 5000, Codecs: []Codec{CodecOpus, CodecPCMU, CodecPCMA, CodecTelephoneEvent, CodecRED}, ZRTPHash: testHash}
		if ans, c, err := Answer(m, local); err == nil {
			if isRED(c) {
				t.Fatalf("red chosen as the codec")
			}
			_, _ = NegotiatedRED(ans, m, c)
		}
		if m.Port == 0 || !m.Addr.IsValid() {
			return
		}
		m.Proto = ProtoAVP
		var keep []Codec
		for _, c := range m.Codecs {
			if c.Name != "" && !strings.ContainsAny(c.Name, " /\r\n") && !strings.ContainsAny(c.Fmtp, "\r\n") {
				keep = append(keep, c)
			}
		}
		m.Codecs = keep
		out, err := m.Marshal()
		if err != nil {
			return
		}
		back, err := ParseMedia(out)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, out)
		}
		if back.ZRTPHash != m.ZRTPHash {
			t.Fatalf("zrtp-hash %q became %q", m.ZRTPHash, back.ZRTPHash)
		}
		// Everything else survives too, but what Marshal writes in its
		// own form: the address unmapped, and no a=crypto (never sent).
		want := *m
		want.Addr, want.SDES = m.Addr.Unmap(), false
		// A damaged signature is not written, nor one without a hash.
		want.HashSigErr = nil
		if want.ZRTPHash == "" {
			want.HashSig = nil
		}
		if !reflect.DeepEqual(*back, want) {
			t.Fatalf("round trip changed the description:\n%+v\n%+v", want, *back)
		}
		if again, err := back.Marshal(); err != nil || !bytes.Equal(again, out) {
			t.Fatalf("SDP encoding not stable: %v\n%s\n%s", err, out, again)
		}
	})
}

func TestPTimeRoundTrip(t *testing.T) {
	m := Media{Addr: netip.MustParseAddr("127.0.0.1"), Port: 4000, Codecs: []Codec{CodecOpus}, PTime: 40 * time.Millisecond}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseMedia(b)
	if err != nil || back.PTime != 40*time.Millisecond {
		t.Fatalf("ptime round trip: %v %v", back, err)
	}
	m.PTime = 0
	b, _ = m.Marshal()
	if back, err := ParseMedia(b); err != nil || back.PTime != 0 {
		t.Fatalf("absent ptime: %v %v", back, err)
	}
	bad := strings.Replace(string(b), "a=sendrecv", "a=ptime:9999\r\na=sendrecv", 1)
	if back, err := ParseMedia([]byte(bad)); err != nil || back.PTime != 0 {
		t.Fatalf("out-of-range ptime must be ignored: %v %v", back, err)
	}
}

func TestRTCPMux(t *testing.T) {
	local := Media{Addr: netip.MustParseAddr("127.0.0.1"), Port: 4000, Codecs: []Codec{CodecOpus}, RTCPMux: true}
	for _, tc := range []struct {
		name  string
		offer bool
		want  bool
	}{{"offered", true, true}, {"not offered", false, false}} {
		t.Run(tc.name, func(t *testing.T) {
			o := local
			o.RTCPMux = tc.offer
			b, err := o.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(string(b), "a=rtcp-mux\r\n"); got != tc.offer {
				t.Fatalf("a=rtcp-mux in the offer: %v\n%s", got, b)
			}
			offer, err := ParseMedia(b)
			if err != nil || offer.RTCPMux != tc.offer {
				t.Fatalf("parse: %v %v", offer, err)
			}
			ans, _, err := Answer(offer, local)
			if err != nil || ans.RTCPMux != tc.want {
				t.Fatalf("answer rtcp-mux %v, want %v (%v)", ans.RTCPMux, tc.want, err)
			}
		})
	}
}
