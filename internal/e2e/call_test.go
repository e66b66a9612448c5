package e2e

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/freeport"
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
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := wav.Decode(bytes.NewReader(b))
	if err != nil {
		// mediastreamer's file writer states a data size 44 bytes
		// (its header) larger than what follows; read what is there.
		if i := bytes.Index(b, []byte("data")); i >= 0 && i+8 <= len(b) {
			binary.LittleEndian.PutUint32(b[i+4:], uint32(len(b)-i-8))
			a, err = wav.Decode(bytes.NewReader(b))
		}
	}
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(a.Samples) < a.SampleRate {
		t.Fatalf("%s: only %d samples", path, len(a.Samples))
	}
	freq, _ := dsp.DominantFrequency(a.Samples, a.SampleRate, 200, 2000)
	return freq
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
	PeerZID            string `json:"peer_zid"`
	Peer               string `json:"peer"`
	Stats              *struct {
		PacketsSent     uint64  `json:"packets_sent"`
		BytesSent       uint64  `json:"bytes_sent"`
		PacketsReceived uint64  `json:"packets_received"`
		BytesReceived   uint64  `json:"bytes_received"`
		Lost            uint64  `json:"lost"`
		JitterMS        float64 `json:"jitter_ms"`
		LossPercent     float64 `json:"loss_percent"`
		RTCPReceived    uint64  `json:"rtcp_received"`
		SendKbpsIP      float64 `json:"send_kbps_ip"`
		Path            string  `json:"path"`
	} `json:"stats"`
}

// lockedBuffer is a bytes.Buffer a process writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

func (l *lockedBuffer) String() string { return string(l.Bytes()) }

// proc is a phonex call or answer running in the background.
type proc struct {
	cmd    *exec.Cmd
	out    lockedBuffer
	stderr lockedBuffer
	stdin  io.WriteCloser
	done   chan error
}

func startPhonex(t *testing.T, args ...string) *proc {
	t.Helper()
	return startPhonexEnv(t, nil, args...)
}

// startPhonexEnv starts phonex with env added to the environment and a
// pipe on its standard input (for confirming the SAS).
func startPhonexEnv(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(filepath.Join(bin, "phonex"), args...), done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.stderr
	p.cmd.Env = append(os.Environ(), env...)
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
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

// waitEvent waits until the process printed an event of type typ.
func (p *proc) waitEvent(t *testing.T, typ string, limit time.Duration) callEvent {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(bytes.NewReader(p.out.Bytes()))
		for sc.Scan() {
			var e callEvent
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.Event == typ {
				return e
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("phonex %v: no %s event within %v\n%s%s", p.cmd.Args[1:], typ, limit, p.out.String(), p.stderr.String())
	return callEvent{}
}

// confirmSAS types y once the SAS is shown, as a user who compared it.
func (p *proc) confirmSAS(t *testing.T) {
	t.Helper()
	p.waitEvent(t, "secure", 15*time.Second)
	if _, err := io.WriteString(p.stdin, "y\n"); err != nil {
		t.Fatal(err)
	}
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

	// call runs one call; confirm, if set, acts on the two processes
	// while the call is up.
	call := func(n int, cacheB string, confirm func(caller, callee *proc)) (caller, callee map[string]callEvent, rec string) {
		port := freeport.Port(t)
		rec = filepath.Join(tmp, fmt.Sprintf("out%d.wav", n))
		ans := startPhonex(t, "answer", "--direct", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--record", rec,
			"--json", "--zrtp-cache", cacheB)
		ans.waitEvent(t, "listening", 30*time.Second)
		c := startPhonex(t, "call", fmt.Sprintf("sip:x@127.0.0.1:%d", port), "--direct", "--play", tone,
			"--json", "--zrtp-cache", cacheA)
		if confirm != nil {
			confirm(c, ans)
		}
		talk(t, c, ans, 4*time.Second)
		caller = c.wait(t, 15*time.Second)
		callee = ans.wait(t, 15*time.Second)
		return caller, callee, rec
	}

	// --verify-sas trusted a peer before anyone compared anything: gone,
	// with a pointer to the new way.
	if r := run(t, nil, "phonex", "call", "sip:x@127.0.0.1:9", "--direct", "--zrtp-cache", cacheA, "--verify-sas"); r.code == 0 || !strings.Contains(r.err, "verify-call") {
		t.Fatalf("--verify-sas: exit %d, %s", r.code, r.err)
	}

	// First call: the callee confirms the SAS during the call (y on
	// standard input), the caller afterwards with verify-call.
	a, b, rec := call(1, cacheB, func(_, callee *proc) { callee.confirmSAS(t) })
	sa, sb := a["secure"], b["secure"]
	if sa.SAS == "" || sa.SAS != sb.SAS {
		t.Fatalf("SAS differ: caller %q callee %q", sa.SAS, sb.SAS)
	}
	if sa.Trust != "unverified" || sa.PreviouslyVerified == nil || *sa.PreviouslyVerified {
		t.Errorf("first call: trust %q previously_verified %v", sa.Trust, sa.PreviouslyVerified)
	}
	if _, ok := b["sas_verified"]; !ok {
		t.Error("callee: no sas_verified event after typing y")
	}
	if _, ok := a["sas_verified"]; ok {
		t.Error("caller: sas_verified without confirmation")
	}
	if w, ok := a["warning"]; !ok || !strings.Contains(w.Reason, "unencrypted") {
		t.Errorf("caller without a profile: warning %+v", w)
	}
	// 4 s of audio once secure in 120 ms packets (the default packet
	// time): about 33.
	if b["ended"].Reason != "remote hangup" || b["ended"].Stats.PacketsReceived < 25 {
		t.Errorf("callee ended: %+v %+v", b["ended"], b["ended"].Stats)
	}
	// The end-of-call statistics carry the RTCP view and the path.
	if st := a["ended"].Stats; st.Path != "host" || st.RTCPReceived == 0 || st.SendKbpsIP == 0 || st.LossPercent != 0 {
		t.Errorf("caller stats: %+v", st)
	}
	if f := dominant(t, rec); f < 435 || f > 445 {
		t.Errorf("recording's dominant frequency %.1f Hz, want 440", f)
	}
	t.Logf("call 1: SAS %s %s %s %s %s %s; caller sent %d packets, callee received %d, lost %d, jitter %.2f ms",
		sa.SAS, sa.SASType, sa.KeyAgreement, sa.Cipher, sa.Hash, sa.AuthTag,
		a["ended"].Stats.PacketsSent, b["ended"].Stats.PacketsReceived, b["ended"].Stats.Lost, b["ended"].Stats.JitterMS)

	wrong := "aaaa"
	if strings.EqualFold(sa.SAS, wrong) {
		wrong = "bbbb"
	}
	if r := run(t, nil, "phonex", "verify-call", sa.PeerZID, wrong, "--zrtp-cache", cacheA); r.code == 0 || !strings.Contains(r.err, "not the one shown") {
		t.Fatalf("verify-call with the wrong SAS: exit %d %s%s", r.code, r.out, r.err)
	}
	mustRun(t, nil, "phonex", "verify-call", sa.PeerZID, sa.SAS, "--zrtp-cache", cacheA)

	// Same caches: the retained secret matches and both sides remember
	// the confirmed SAS.
	a, b, _ = call(2, cacheB, nil)
	for side, e := range map[string]callEvent{"caller": a["secure"], "callee": b["secure"]} {
		if e.PreviouslyVerified == nil || !*e.PreviouslyVerified || !e.CacheMatched || e.Trust != "verified" {
			t.Errorf("second call %s: previously_verified %v cache_matched %v trust %q", side, e.PreviouslyVerified, e.CacheMatched, e.Trust)
		}
	}
	if a["secure"].SAS != b["secure"].SAS {
		t.Errorf("second call SAS differ")
	}

	// The callee's ZID without its secrets: the peer lost its cache, or a
	// man in the middle claims its ZID. The caller must see an unsafe
	// call, and stay unverified until it confirms that call's SAS.
	lost := filepath.Join(tmp, "zrtp-lost")
	os.MkdirAll(lost, 0o700)
	zid, err := os.ReadFile(filepath.Join(cacheB, "zid"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(lost, "zid"), zid, 0o600)
	a, _, _ = call(3, lost, nil)
	if s := a["secure"]; s.Trust != "unsafe" || *s.PreviouslyVerified {
		t.Fatalf("mismatch call: trust %q previously_verified %v", s.Trust, *s.PreviouslyVerified)
	}
	if _, ok := a["alert"]; !ok {
		t.Error("no alert on the retained-secret mismatch")
	}
	out := mustRun(t, nil, "phonex", "verify-call", a["secure"].PeerZID, a["secure"].SAS, "--zrtp-cache", cacheA)
	if !strings.Contains(out, "UNSAFE") {
		t.Errorf("verify-call of the unsafe call does not say it was unsafe: %s", out)
	}
	a, _, _ = call(4, lost, nil)
	if s := a["secure"]; s.Trust != "verified" || !s.CacheMatched {
		t.Errorf("after confirming the unsafe call: trust %q cache_matched %v", s.Trust, s.CacheMatched)
	}
}

// linphonec runs the Debian linphone-cli console client headless: its own
// HOME (ZID cache, database), sound from and to WAV files, driven through
// its stdin, output collected.
type linphonec struct {
	t    *testing.T
	home string
	port int
	cmd  *exec.Cmd
	in   io.WriteCloser
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

const linphoneRC = `[sip]
bind_address=127.0.0.1
sip_port=%d
sip_tcp_port=0
sip_tls_port=0
use_ipv6=0
ipv6_migration_done=1
contact="lp" <sip:lp@127.0.0.1:%d>
media_encryption=zrtp
media_encryption_mandatory=1
%s
verify_server_certs=0
verify_server_cn=0
guess_hostname=0
inc_timeout=60

[rtp]
bind_address=127.0.0.1
audio_rtp_port=%d
video_rtp_port=%d
text_rtp_port=%d

[sound]
echocancellation=0

[video]
display=0
capture=0
automatically_initiate=0
automatically_accept=0
`

func startLinphonec(t *testing.T, home, suites string) *linphonec {
	t.Helper()
	// The database directory must exist or the core never starts.
	if err := os.MkdirAll(filepath.Join(home, ".local", "share", "linphone"), 0o700); err != nil {
		t.Fatal(err)
	}
	port, rtp := freeport.Port(t), freeport.Port(t)
	rc := filepath.Join(home, "rc")
	// linphonec rewrites its rc on exit: write a fresh one each start.
	if err := os.WriteFile(rc, fmt.Appendf(nil, linphoneRC, port, port, suites, rtp, rtp+2, rtp+4), 0o600); err != nil {
		t.Fatal(err)
	}
	l := &linphonec{t: t, home: home, port: port, done: make(chan struct{})}
	l.start(exec.Command("linphonec", "-c", rc, "-a", "-d", "6", "-l", filepath.Join(home, "debug.log")))
	// No prompt is printed without a terminal: give the core time to start.
	time.Sleep(3 * time.Second)
	m := l.mark()
	l.send("soundcard use files")
	l.waitFor(m, `Using wav files`, 20*time.Second)
	return l
}

// start runs cmd with its output collected for waitFor and its stdin
// kept for send; the process is stopped when the test ends.
func (l *linphonec) start(cmd *exec.Cmd) {
	t := l.t
	l.cmd = cmd
	l.cmd.Dir = l.home
	l.cmd.Env = append(os.Environ(), "HOME="+l.home)
	var err error
	if l.in, err = l.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	l.cmd.Stdout, l.cmd.Stderr = pw, pw
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			l.mu.Lock()
			l.out.WriteString(sc.Text() + "\n")
			l.mu.Unlock()
		}
	}()
	go func() { l.cmd.Wait(); pw.Close(); close(l.done) }()
	t.Cleanup(l.quit)
}

func (l *linphonec) send(line string) {
	if _, err := io.WriteString(l.in, line+"\n"); err != nil {
		l.t.Fatalf("linphonec %s: %v", line, err)
	}
}

func (l *linphonec) output() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.out.String()
}

// mark is the current end of the output: a call's lines are those after
// the mark taken when it starts, so nothing of an earlier call can match.
func (l *linphonec) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.out.Len()
}

// since is the output after mark.
func (l *linphonec) since(mark int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.out.Bytes()[mark:])
}

// waitFor waits until the output after mark matches re and returns the
// first match.
func (l *linphonec) waitFor(mark int, re string, limit time.Duration) []string {
	l.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if m := rx.FindStringSubmatch(l.since(mark)); m != nil {
			return m
		}
		time.Sleep(100 * time.Millisecond)
	}
	l.t.Fatalf("linphonec: no %q within %v after offset %d; output since:\n%s", re, limit, mark, l.since(mark))
	return nil
}

func (l *linphonec) quit() {
	select {
	case <-l.done:
		return
	default:
	}
	io.WriteString(l.in, "quit\n")
	select {
	case <-l.done:
	case <-time.After(5 * time.Second):
		l.cmd.Process.Kill()
		<-l.done
	}
}

func (l *linphonec) debugLog() string {
	b, _ := os.ReadFile(filepath.Join(l.home, "debug.log"))
	return string(b)
}

// TestLinphonecOutputSinceMark: a call's checks see only linphonec's output
// after the call started; an earlier call's SAS line must not satisfy them.
func TestLinphonecOutputSinceMark(t *testing.T) {
	l := &linphonec{t: t}
	l.out.WriteString("Call 1 is fully encrypted and auth token is abcd.\nCall 1 ended\n")
	mark := l.mark()
	go func() {
		time.Sleep(300 * time.Millisecond)
		l.mu.Lock()
		l.out.WriteString("Call 2 is fully encrypted and auth token is wxyz.\n")
		l.mu.Unlock()
	}()
	if m := l.waitFor(mark, sasRE, 5*time.Second); m[1] != "wxyz" {
		t.Fatalf("matched %q from before the mark", m[1])
	}
}

// sameSAS compares SAS renderings: bzrtp joins the PGP words with ':'.
func sameSAS(a, b string) bool {
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, ":", " ")) }
	return a != "" && norm(a) == norm(b)
}

var sasRE = `Call \d+ is fully encrypted and auth token is (\S+)\.`

// TestLinphonecInterop calls linphonec (bzrtp) and is called by it, with
// bzrtp's default suite and with X25519 and base-256 SAS, checks the SAS,
// audio both ways, and retained secrets on a second call after both sides
// marked the SAS verified.
func TestLinphonecInterop(t *testing.T) {
	requirePeer(t, "linphonec")
	suites := []struct {
		name   string
		rc     string   // linphone's ZRTP preferences
		flags  []string // phonex's
		ka     string
		sas    string
		reCall bool
	}{
		{name: "default DH3k AES1 S256 B32", rc: "", flags: []string{"--zrtp-prefer", "DH3k", "--sas", "B32"}, ka: "DH3k", sas: "B32", reCall: true},
		{name: "X255 B256",
			rc:    "zrtp_key_agreements_suites=MS_ZRTP_KEY_AGREEMENT_X255,MS_ZRTP_KEY_AGREEMENT_DH3K\nzrtp_sas_suites=MS_ZRTP_SAS_B256,MS_ZRTP_SAS_B32",
			flags: []string{"--zrtp-prefer", "X255,DH3k", "--sas", "B256"}, ka: "X255", sas: "B256"},
	}
	for _, s := range suites {
		t.Run(s.name, func(t *testing.T) {
			tmp := t.TempDir()
			tone440, tone660 := filepath.Join(tmp, "tone440.wav"), filepath.Join(tmp, "tone660.wav")
			writeTone(t, tone440, 16000, 440, 8)
			writeTone(t, tone660, 8000, 660, 20)
			cache := filepath.Join(tmp, "zrtp")
			lp := startLinphonec(t, filepath.Join(tmp, "lp"), s.rc)
			calls := 0

			// check looks only at linphonec's output since mark, taken
			// when this call started.
			check := func(dir string, mark int, ev map[string]callEvent, lpRec, ourRec string) {
				t.Helper()
				calls++
				lpSAS := lp.waitFor(mark, sasRE, 30*time.Second)[1]
				sec := ev["secure"]
				if !sameSAS(sec.SAS, lpSAS) {
					t.Errorf("%s: SAS phonex %q linphonec %q", dir, sec.SAS, lpSAS)
				}
				if sec.KeyAgreement != s.ka || sec.SASType != s.sas {
					t.Errorf("%s: negotiated %s %s, want %s %s", dir, sec.KeyAgreement, sec.SASType, s.ka, s.sas)
				}
				lp.waitFor(mark, `ended`, 30*time.Second)
				time.Sleep(500 * time.Millisecond)
				if f := dominant(t, lpRec); f < 430 || f > 450 {
					t.Errorf("%s: linphonec recorded %.1f Hz, want 440", dir, f)
				}
				if f := dominant(t, ourRec); f < 650 || f > 670 {
					t.Errorf("%s: phonex recorded %.1f Hz, want 660", dir, f)
				}
				st := ev["ended"].Stats
				t.Logf("%s: SAS %s (%s %s %s %s %s), codec %s, sent %d received %d lost %d jitter %.2f ms",
					dir, sec.SAS, sec.KeyAgreement, sec.Cipher, sec.Hash, sec.AuthTag, sec.SASType, ev["connected"].Codec,
					st.PacketsSent, st.PacketsReceived, st.Lost, st.JitterMS)
			}

			// phonex calls linphonec.
			outCall := func(n int) map[string]callEvent {
				lpRec, ourRec := filepath.Join(tmp, fmt.Sprintf("lp%d.wav", n)), filepath.Join(tmp, fmt.Sprintf("px%d.wav", n))
				lp.send("play " + tone660)
				lp.send("record " + lpRec)
				mark := lp.mark()
				args := append([]string{"call", fmt.Sprintf("sip:lp@127.0.0.1:%d", lp.port), "--direct", "--play", tone440,
					"--record", ourRec, "--json", "--zrtp-cache", cache}, s.flags...)
				p := startPhonex(t, args...)
				hangUpAfter(t, p, 3*time.Second)
				ev := p.wait(t, 20*time.Second)
				check("phonex -> linphonec", mark, ev, lpRec, ourRec)
				return ev
			}
			outCall(1)

			// linphonec calls phonex.
			port := freeport.Port(t)
			lpRec, ourRec := filepath.Join(tmp, "lp2.wav"), filepath.Join(tmp, "px2.wav")
			ans := startPhonex(t, append([]string{"answer", "--direct", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--play", tone440,
				"--record", ourRec, "--json", "--zrtp-cache", cache}, s.flags...)...)
			ans.waitEvent(t, "listening", 30*time.Second)
			lp.send("play " + tone660)
			lp.send("record " + lpRec)
			mark := lp.mark()
			lp.send(fmt.Sprintf("call sip:x@127.0.0.1:%d", port))
			hangUpAfter(t, ans, 3*time.Second)
			ev := ans.wait(t, 20*time.Second)
			check("linphonec -> phonex", mark, ev, lpRec, ourRec)

			if !s.reCall {
				return
			}
			// Both sides confirm the SAS; the next call must use the
			// retained secret and say it was verified.
			lp.send("play " + tone660)
			lp.send("record " + filepath.Join(tmp, "lp3.wav"))
			mark = lp.mark()
			args := append([]string{"call", fmt.Sprintf("sip:lp@127.0.0.1:%d", lp.port), "--direct", "--play", tone440,
				"--record", filepath.Join(tmp, "px3.wav"), "--json", "--zrtp-cache", cache}, s.flags...)
			p := startPhonex(t, args...)
			lp.waitFor(mark, sasRE, 15*time.Second)
			lp.send("zrtp-set-verified")
			p.confirmSAS(t)
			p.waitEvent(t, "sas_verified", 20*time.Second)
			hangUpAfter(t, p, time.Second)
			if ev := p.wait(t, 20*time.Second); ev["sas_verified"].Event == "" {
				t.Errorf("phonex: no sas_verified after typing y")
			}
			lp.waitFor(mark, `ended`, 30*time.Second)
			logMark := len(lp.debugLog())
			ev = outCall(4)
			sec := ev["secure"]
			if !sec.CacheMatched || sec.PreviouslyVerified == nil || !*sec.PreviouslyVerified || sec.Trust != "verified" {
				t.Errorf("after zrtp-set-verified: cache_matched %v previously_verified %v trust %q", sec.CacheMatched, sec.PreviouslyVerified, sec.Trust)
			}
			if !strings.Contains(lp.debugLog()[logMark:], "previously verified yes") {
				t.Errorf("linphonec did not report the SAS as previously verified on the second call")
			}
		})
	}
}

// TestDirectCallWithProfiles: two profiles on one machine (one HOME) call
// each other directly. Each profile has its own ZID in its encrypted
// database (before, both shared ~/.phonex/zrtp and the call failed with
// equal ZIDs), nothing of ZRTP is left in plain files, and verify-call
// works on the profile.
func TestDirectCallWithProfiles(t *testing.T) {
	c := newCluster(t)
	c.n = serveOn(t, c.data, freeport.Addr(t), freeport.Addr(t))
	c.device("alpha", "a1", true)
	c.device("bravo", "b1", true)
	home := filepath.Join(c.tmp, "home")
	os.MkdirAll(home, 0o700)
	env := []string{"HOME=" + home}
	withProfile := func(dev string, args ...string) []string {
		return append(args, "--profile", c.profile(dev), "--password-file", c.pw)
	}

	call := func() (caller, callee map[string]callEvent) {
		port := freeport.Port(t)
		ans := startPhonexEnv(t, env, withProfile("bravo/b1", "answer", "--direct", "--listen", fmt.Sprintf("127.0.0.1:%d", port),
			"--json", "--no-opus")...)
		ans.waitEvent(t, "listening", 20*time.Second)
		p := startPhonexEnv(t, env, withProfile("alpha/a1", "call", fmt.Sprintf("sip:b@127.0.0.1:%d", port), "--direct",
			"--json", "--no-opus")...)
		talk(t, p, ans, time.Second)
		return p.wait(t, 30*time.Second), ans.wait(t, 30*time.Second)
	}
	a, b := call()
	sa, sb := a["secure"], b["secure"]
	if sa.SAS == "" || sa.SAS != sb.SAS || sa.PeerZID == sb.PeerZID {
		t.Fatalf("SAS %q/%q, ZIDs %s/%s", sa.SAS, sb.SAS, sa.PeerZID, sb.PeerZID)
	}
	for side, ev := range map[string]map[string]callEvent{"caller": a, "callee": b} {
		if w, ok := ev["warning"]; ok {
			t.Errorf("%s with a profile: warning %q", side, w.Reason)
		}
	}
	// No ZRTP state outside the encrypted database: no cache directory,
	// and neither ZID in any file in the clear.
	if _, err := os.Stat(filepath.Join(home, ".phonex")); !os.IsNotExist(err) {
		t.Errorf("%s/.phonex exists: %v", home, err)
	}
	filepath.WalkDir(c.tmp, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(path)
		for _, z := range []string{sa.PeerZID, sb.PeerZID} {
			raw, _ := hex.DecodeString(z)
			if bytes.Contains(b, []byte(z)) || bytes.Contains(b, raw) {
				t.Errorf("ZID %s in the clear in %s", z, path)
			}
		}
		return nil
	})

	// Confirm on both profiles after the call: by ZID and by address.
	if r := run(t, env, "phonex", withProfile("alpha/a1", "verify-call", sa.PeerZID, "zzzz")...); r.code == 0 {
		t.Fatalf("verify-call with a wrong SAS succeeded: %s", r.out)
	}
	mustRun(t, env, "phonex", withProfile("alpha/a1", "verify-call", sa.PeerZID, sa.SAS)...)
	mustRun(t, env, "phonex", withProfile("bravo/b1", "verify-call", sb.PeerZID, sb.SAS)...)
	// A cache directory of earlier versions in the profile is pointed out.
	os.MkdirAll(filepath.Join(c.profile("bravo/b1"), "zrtp"), 0o700)
	a, b = call()
	if w := b["warning"]; !strings.Contains(w.Reason, "earlier versions") {
		t.Errorf("no warning about the old cache directory: %+v", w)
	}
	for side, e := range map[string]callEvent{"caller": a["secure"], "callee": b["secure"]} {
		if e.Trust != "verified" || !e.CacheMatched {
			t.Errorf("second call %s: trust %q cache_matched %v", side, e.Trust, e.CacheMatched)
		}
	}
}
