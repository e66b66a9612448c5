package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/media/dsp"
	"github.com/phonex/phonex/internal/media/wav"
)

// writeTone writes seconds of a sine at freq Hz to a 16-bit WAV file.
func writeTone(t *testing.T, path string, rate int, freq float64, seconds int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := wav.Encode(f, &wav.Audio{SampleRate: rate, Samples: dsp.Sine(rate*seconds, rate, freq, 0.5)}); err != nil {
		t.Fatal(err)
	}
}

// dominant returns the strongest frequency of a WAV file between 200 and
// 2000 Hz.
func dominant(t *testing.T, path string) float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := wav.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(a.Samples) < a.SampleRate {
		t.Fatalf("%s: only %d samples", path, len(a.Samples))
	}
	freq, _ := dsp.DominantFrequency(a.Samples, a.SampleRate, 200, 2000)
	return freq
}

// freePort returns a port free on 127.0.0.1 for both UDP and TCP now.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.LocalAddr().(*net.UDPAddr).Port
		l.Close()
		if tl, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			tl.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// callEvent is one JSON line of phonex call/answer --json.
type callEvent struct {
	Event              string `json:"event"`
	Reason             string `json:"reason"`
	Codec              string `json:"codec"`
	SAS                string `json:"sas"`
	SASType            string `json:"sas_type"`
	Cipher             string `json:"cipher"`
	Hash               string `json:"hash"`
	KeyAgreement       string `json:"key_agreement"`
	AuthTag            string `json:"auth_tag"`
	Trust              string `json:"trust"`
	PreviouslyVerified *bool  `json:"previously_verified"`
	CacheMatched       bool   `json:"cache_matched"`
	Stats              *struct {
		PacketsSent     uint64  `json:"packets_sent"`
		BytesSent       uint64  `json:"bytes_sent"`
		PacketsReceived uint64  `json:"packets_received"`
		BytesReceived   uint64  `json:"bytes_received"`
		Lost            uint64  `json:"lost"`
		JitterMS        float64 `json:"jitter_ms"`
	} `json:"stats"`
}

// proc is a phonex call or answer running in the background.
type proc struct {
	cmd    *exec.Cmd
	out    bytes.Buffer
	stderr bytes.Buffer
	done   chan error
}

func startPhonex(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(filepath.Join(bin, "phonex"), args...), done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(5 * time.Second):
				p.cmd.Process.Kill()
			}
		}
	})
	return p
}

// wait waits for the process and returns its events by type.
func (p *proc) wait(t *testing.T, limit time.Duration) map[string]callEvent {
	t.Helper()
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("phonex %v: %v\n%s%s", p.cmd.Args[1:], err, p.out.String(), p.stderr.String())
		}
	case <-time.After(limit):
		t.Fatalf("phonex %v still running after %v\n%s%s", p.cmd.Args[1:], limit, p.out.String(), p.stderr.String())
	}
	evs := map[string]callEvent{}
	sc := bufio.NewScanner(bytes.NewReader(p.out.Bytes()))
	for sc.Scan() {
		var e callEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("not a JSON event: %q", sc.Text())
		}
		if _, seen := evs[e.Event]; !seen {
			evs[e.Event] = e
		}
	}
	for _, want := range []string{"connected", "secure", "ended"} {
		if _, ok := evs[want]; !ok {
			t.Fatalf("phonex %v: no %s event\n%s%s", p.cmd.Args[1:], want, p.out.String(), p.stderr.String())
		}
	}
	return evs
}

func TestDirectCall(t *testing.T) {
	tmp := t.TempDir()
	tone := filepath.Join(tmp, "tone440.wav")
	writeTone(t, tone, 44100, 440, 5)
	cacheA, cacheB := filepath.Join(tmp, "zrtp-a"), filepath.Join(tmp, "zrtp-b")

	call := func(n int, extra ...string) (caller, callee map[string]callEvent, rec string) {
		port := freePort(t)
		rec = filepath.Join(tmp, fmt.Sprintf("out%d.wav", n))
		ans := startPhonex(t, append([]string{"answer", "--direct", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--record", rec,
			"--for", "6s", "--json", "--zrtp-cache", cacheB}, extra...)...)
		time.Sleep(300 * time.Millisecond)
		c := startPhonex(t, append([]string{"call", fmt.Sprintf("sip:x@127.0.0.1:%d", port), "--direct", "--play", tone,
			"--for", "4s", "--json", "--zrtp-cache", cacheA}, extra...)...)
		caller = c.wait(t, 15*time.Second)
		callee = ans.wait(t, 15*time.Second)
		return caller, callee, rec
	}

	a, b, rec := call(1, "--verify-sas")
	sa, sb := a["secure"], b["secure"]
	if sa.SAS == "" || sa.SAS != sb.SAS {
		t.Fatalf("SAS differ: caller %q callee %q", sa.SAS, sb.SAS)
	}
	if sa.Trust != "unverified" || sa.PreviouslyVerified == nil || *sa.PreviouslyVerified {
		t.Errorf("first call: trust %q previously_verified %v", sa.Trust, sa.PreviouslyVerified)
	}
	if _, ok := a["sas_verified"]; !ok {
		t.Error("no sas_verified event with --verify-sas")
	}
	if b["ended"].Reason != "remote hangup" || b["ended"].Stats.PacketsReceived < 100 {
		t.Errorf("callee ended: %+v %+v", b["ended"], b["ended"].Stats)
	}
	if f := dominant(t, rec); f < 435 || f > 445 {
		t.Errorf("recording's dominant frequency %.1f Hz, want 440", f)
	}
	t.Logf("call 1: SAS %s %s %s %s %s %s; caller sent %d packets, callee received %d, lost %d, jitter %.2f ms",
		sa.SAS, sa.SASType, sa.KeyAgreement, sa.Cipher, sa.Hash, sa.AuthTag,
		a["ended"].Stats.PacketsSent, b["ended"].Stats.PacketsReceived, b["ended"].Stats.Lost, b["ended"].Stats.JitterMS)

	// Same cache directories: the retained secret matches and both sides
	// remember the confirmed SAS.
	a, b, _ = call(2)
	for side, e := range map[string]callEvent{"caller": a["secure"], "callee": b["secure"]} {
		if e.PreviouslyVerified == nil || !*e.PreviouslyVerified || !e.CacheMatched || e.Trust != "verified" {
			t.Errorf("second call %s: previously_verified %v cache_matched %v trust %q", side, e.PreviouslyVerified, e.CacheMatched, e.Trust)
		}
	}
	if a["secure"].SAS != b["secure"].SAS {
		t.Errorf("second call SAS differ")
	}
}
