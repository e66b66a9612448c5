// Command bandwidth measures the IP-level bandwidth of one direction of a
// call (IPv4 + UDP + RTP + Opus + SRTP tag, bytes per second) for each
// Opus bitrate and frame size, against the 8-20 kbit/s one-way budget, by
// running audio through the real send path (internal/media.Sender).
package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"github.com/phonex/phonex/internal/media"
	"github.com/phonex/phonex/internal/media/codec"
	"github.com/phonex/phonex/internal/media/srtp"
	"github.com/phonex/phonex/internal/media/wav"
)

const budget = 20000 // bit/s, one way

func main() {
	in := flag.String("wav", "", "speech recording to send (default: 20 s of synthetic voiced speech with pauses)")
	flag.Parse()
	var a *wav.Audio
	if *in != "" {
		f, err := os.Open(*in)
		if err != nil {
			fail(err)
		}
		if a, err = wav.Decode(f); err != nil {
			fail(err)
		}
		f.Close()
	} else {
		a = &wav.Audio{SampleRate: 16000, Samples: speechLike(20*16000, 16000)}
	}
	fmt.Printf("Source: %s, %.1f s at %d Hz. IP overhead per packet: 20 IPv4 + 8 UDP + 12 RTP + tag (4 for HS32, 10 for HS80).\n\n", source(*in), a.Duration(), a.SampleRate)
	fmt.Println("| Opus target | frame | packets/s | payload kbit/s (VBR) | IP kbit/s VBR HS32 | IP kbit/s VBR HS80 | IP kbit/s CBR HS80 | fits 20 kbit/s |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|:---|")
	for _, rate := range []int{8000, 12000, 16000, 20000} {
		for _, frame := range []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 60 * time.Millisecond} {
			v32, pay, pps := measure(a, rate, frame, false, srtp.TagHS32)
			v80, _, _ := measure(a, rate, frame, false, srtp.TagHS80)
			c80, _, _ := measure(a, rate, frame, true, srtp.TagHS80)
			verdict := fmt.Sprintf("VBR HS32 %s, VBR HS80 %s, CBR HS80 %s", fits(v32), fits(v80), fits(c80))
			fmt.Printf("| %d kbit/s | %d ms | %.1f | %.1f | %.1f | %.1f | %.1f | %s |\n",
				rate/1000, frame.Milliseconds(), pps, pay/1000, v32/1000, v80/1000, c80/1000, verdict)
		}
	}
}

func fits(bps float64) string {
	if bps <= budget {
		return "yes"
	}
	return "no"
}

func source(p string) string {
	if p == "" {
		return "synthetic speech"
	}
	return p
}

func measure(a *wav.Audio, bitrate int, frame time.Duration, cbr bool, tag string) (ipBps, payloadBps, pps float64) {
	c, err := codec.NewOpus(codec.OpusConfig{SampleRate: 16000, Bitrate: bitrate, Frame: frame, CBR: cbr})
	if err != nil {
		fail(err)
	}
	defer c.Close()
	k := srtp.Keys{MasterKey: make([]byte, 16), MasterSalt: make([]byte, srtp.SaltLen)}
	s, err := srtp.NewSession(srtp.Config{Cipher: srtp.CipherAES1, AuthTag: tag, Local: k, Remote: k})
	if err != nil {
		fail(err)
	}
	snd, err := media.NewSender(media.SenderConfig{Codec: c, SRTP: s, InputRate: a.SampleRate})
	if err != nil {
		fail(err)
	}
	snd.Write(a.Samples)
	snd.Flush()
	var buf []byte
	for {
		p, ok, err := snd.Packet(buf[:0])
		if err != nil {
			fail(err)
		}
		if !ok {
			break
		}
		buf = p
	}
	st := snd.Stats()
	sec := st.Media.Seconds()
	return st.IPBitrate(), float64(st.PayloadBytes) * 8 / sec, float64(st.Packets) / sec
}

// speechLike is a crude voiced-speech stand-in: a glottal pulse train with
// a wandering pitch (90-200 Hz) through three formant resonators whose
// frequencies move per syllable, a syllabic envelope, breath noise, and
// pauses a third of the time.
func speechLike(n, rate int) []int16 {
	rng := rand.New(rand.NewPCG(7, 11))
	out := make([]int16, n)
	type res struct{ y1, y2 float64 }
	var rs [3]res
	formants := [3]float64{700, 1200, 2500}
	var phase float64
	syl := 0
	for i := range out {
		t := float64(i) / float64(rate)
		if i%(rate/5) == 0 { // a new syllable every 200 ms
			syl++
			formants = [3]float64{300 + rng.Float64()*600, 900 + rng.Float64()*1300, 2200 + rng.Float64()*800}
		}
		talking := math.Mod(t, 3) < 2
		f0 := 140 + 50*math.Sin(2*math.Pi*0.3*t) + 10*math.Sin(2*math.Pi*3*t)
		phase += f0 / float64(rate)
		var x float64
		if phase >= 1 {
			phase -= 1
			x = 1
		}
		x += 0.02 * rng.NormFloat64()
		y := 0.0
		for k, f := range formants {
			r := 0.97
			c1 := 2 * r * math.Cos(2*math.Pi*f/float64(rate))
			v := x + c1*rs[k].y1 - r*r*rs[k].y2
			rs[k].y2, rs[k].y1 = rs[k].y1, v
			y += v / float64(k+1)
		}
		env := math.Abs(math.Sin(math.Pi * math.Mod(t, 0.2) / 0.2))
		if !talking {
			env = 0.01
		}
		out[i] = int16(max(-32768, min(32767, 1500*y*env)))
	}
	return out
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bandwidth:", err)
	os.Exit(1)
}
