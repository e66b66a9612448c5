package sipua

import (
	"net/netip"
	"strings"
	"testing"
)

// TestREDNegotiation: redundant audio is answered and used only when the
// offer has it over the Opus chosen and the answerer offers it too; a
// peer without it (a standard phone) gets plain Opus; red listed first
// is never taken for the codec.
func TestREDNegotiation(t *testing.T) {
	ours := Media{Addr: netip.MustParseAddr("127.0.0.1"), Port: 5000, ZRTPHash: testHash,
		Codecs: []Codec{CodecOpus, CodecPCMU, CodecPCMA, CodecTelephoneEvent, CodecRED}}
	plain := ours
	plain.Codecs = plain.Codecs[:4]
	for _, tt := range []struct {
		name  string
		offer []byte
		local Media
		red   uint8 // 0: not negotiated
	}{
		{"both offer it", offerSDP("m=audio 4000 RTP/AVP 96 0 8 101 97", "a=rtpmap:96 opus/48000/2", "a=rtpmap:97 red/48000/2", "a=fmtp:97 96/96"), ours, 97},
		{"offered first, other numbers", offerSDP("m=audio 4000 RTP/AVP 63 111", "a=rtpmap:63 red/48000/2", "a=fmtp:63 111/111", "a=rtpmap:111 opus/48000/2"), ours, 63},
		{"peer without red", offerSDP("m=audio 4000 RTP/AVP 96 0", "a=rtpmap:96 opus/48000/2"), ours, 0},
		{"we do not offer it", offerSDP("m=audio 4000 RTP/AVP 96 97", "a=rtpmap:96 opus/48000/2", "a=rtpmap:97 red/48000/2", "a=fmtp:97 96/96"), plain, 0},
		{"red over another codec", offerSDP("m=audio 4000 RTP/AVP 96 97 0", "a=rtpmap:96 opus/48000/2", "a=rtpmap:97 red/48000/2", "a=fmtp:97 0/0"), ours, 0},
		{"red without fmtp", offerSDP("m=audio 4000 RTP/AVP 96 97", "a=rtpmap:96 opus/48000/2", "a=rtpmap:97 red/48000/2"), ours, 0},
		{"red but no Opus: PCMU, no red", offerSDP("m=audio 4000 RTP/AVP 97 0", "a=rtpmap:97 red/48000/2", "a=fmtp:97 0/0"), ours, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			offer, err := ParseMedia(tt.offer)
			if err != nil {
				t.Fatal(err)
			}
			ans, chosen, err := Answer(offer, tt.local)
			if err != nil {
				t.Fatal(err)
			}
			if isRED(chosen) {
				t.Fatalf("red chosen as the codec")
			}
			b, err := ans.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseMedia(b)
			if err != nil {
				t.Fatal(err)
			}
			// The answerer's view (its answer, the offer) and the
			// offerer's (what it offered, the answer) agree.
			pt, ok := NegotiatedRED(back, offer, chosen)
			pt2, ok2 := NegotiatedRED(offer, back, chosen)
			if ok != (tt.red != 0) || pt != tt.red || ok2 != ok || pt2 != pt {
				t.Fatalf("negotiated %d %v / %d %v, want %d; answer:\n%s", pt, ok, pt2, ok2, tt.red, b)
			}
			if c, err := Chosen(offer.Codecs, back); err != nil || isRED(c) || c.PT != chosen.PT {
				t.Fatalf("offerer's chosen %v, %v", c, err)
			}
			if !ok && strings.Contains(string(b), "red/") {
				t.Fatalf("red answered though not negotiated:\n%s", b)
			}
		})
	}
}

func TestREDFmtp(t *testing.T) {
	for fmtp, want := range map[string]bool{"96/96": true, "96/96/96": true, " 96/96 ": true, "96": false, "96/0": false, "": false, "x/y": false, "96//96": false, "300/300": false} {
		if got := redFmtpFor(fmtp, 96); got != want {
			t.Errorf("%q: %v, want %v", fmtp, got, want)
		}
	}
}
