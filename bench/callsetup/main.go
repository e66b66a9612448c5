// Command callsetup measures call setup, from the INVITE to SRTP keys
// ready on the caller, for PhoneX devices calling each other by address
// through phonexd, and in the same run for linphonec calling linphonec
// directly (the reference). Both run on loopback on this machine.
//
// PhoneX: the caller's 'calling' event (the INVITE is handed to its TLS
// connection to the node, which it first opens) to its 'secure' event
// (ZRTP done, SRTP keys in both directions). linphonec: the debug log's
// time of sending the INVITE to its "ZRTP secrets on" line (keys for both
// directions). linphonec is set for its best figure: X25519 preferred
// (its default, DH3k, costs more). bench/callsetup.sh builds the binaries
// and runs this.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

var (
	bin  = flag.String("bin", "", "directory with phonex and phonexd")
	n    = flag.Int("n", 10, "calls per side")
	work = flag.String("work", "", "scratch directory")
)

func main() {
	flag.Parse()
	if *bin == "" || *work == "" {
		log.Fatal("usage: callsetup -bin DIR -work DIR [-n CALLS]")
	}
	px, ka := phonexCalls()
	fmt.Printf("| calls (%d each), INVITE to SRTP keys ready on the caller | p50 | p90 | min |\n|---|---:|---:|---:|\n", *n)
	row(fmt.Sprintf("phonex to phonex through phonexd (SIP over TLS to the node, connection opened by the INVITE; ZRTP %s)", ka), px)
	const lpName = "linphonec to linphonec, direct over UDP (no proxy; ZRTP X255 preferred, its fastest key agreement)"
	lp, err := linphoneCalls()
	if err != nil {
		fmt.Printf("| %s | %s | | |\n", lpName, err)
		return
	}
	row(lpName, lp)
	fmt.Printf("\nphonexd / linphonec at p50: %.2f (below 1: phonexd's path is faster)\n", float64(pct(px, 50))/float64(pct(lp, 50)))
}

func row(name string, ds []time.Duration) {
	fmt.Printf("| %s | %s | %s | %s |\n", name, ms(pct(ds, 50)), ms(pct(ds, 90)), ms(slices.Min(ds)))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func run(name string, args ...string) []byte {
	out, err := exec.Command(filepath.Join(*bin, name), args...).CombinedOutput()
	if err != nil {
		log.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return out
}

// phonexCalls runs a node with alpha and bravo (mutual contacts) and
// times n calls from alpha to bravo.
func phonexCalls() ([]time.Duration, string) {
	data := filepath.Join(*work, "data")
	pw := filepath.Join(*work, "pw")
	os.WriteFile(pw, []byte("bench password\n"), 0o600)
	run("phonexd", "init", "--data", data, "--domain", "bench.test", "--host", "127.0.0.1")
	srv := exec.Command(filepath.Join(*bin, "phonexd"), "serve", "--data", data, "--api-addr", "127.0.0.1:0", "--sip-addr", "127.0.0.1:0")
	out, _ := srv.StdoutPipe()
	srv.Stderr = io.Discard
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() { srv.Process.Signal(os.Interrupt); srv.Wait() }()
	var api string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "api: https://"); ok {
			api, _, _ = strings.Cut(a, " ")
		}
		if strings.HasPrefix(sc.Text(), "sip: ") {
			break
		}
	}
	go io.Copy(io.Discard, out)
	profile := func(u string) string { return filepath.Join(*work, u) }
	for _, u := range []string{"alpha", "bravo"} {
		var act map[string]string
		json.Unmarshal(run("phonexd", "user", "add", "--data", data, u+"@bench.test", "--json"), &act)
		run("phonex", "enroll", u+"@bench.test", "--profile", profile(u), "--server", api, "--ca-file", filepath.Join(data, "ca.pem"),
			"--code", act["code"], "--device", "d", "--password-file", pw)
	}
	run("phonex", "contacts", "add", "bravo@bench.test", "--profile", profile("alpha"), "--password-file", pw)
	run("phonex", "contacts", "add", "alpha@bench.test", "--profile", profile("bravo"), "--password-file", pw)
	var ds []time.Duration
	var ka string
	for range *n {
		ans := exec.Command(filepath.Join(*bin, "phonex"), "answer", "--json", "--for", "1s", "--profile", profile("bravo"), "--password-file", pw)
		var ansOut bytes.Buffer
		ansPipe, _ := ans.StdoutPipe()
		if err := ans.Start(); err != nil {
			log.Fatal(err)
		}
		asc := bufio.NewScanner(ansPipe)
		for asc.Scan() {
			if strings.Contains(asc.Text(), `"listening"`) {
				break
			}
		}
		go io.Copy(&ansOut, ansPipe)
		res := run("phonex", "call", "bravo@bench.test", "--json", "--for", "1s", "--profile", profile("alpha"), "--password-file", pw)
		ans.Wait()
		var calling, secure time.Time
		for _, line := range bytes.Split(res, []byte("\n")) {
			var e struct {
				Event string    `json:"event"`
				Time  time.Time `json:"time"`
				KA    string    `json:"key_agreement"`
			}
			if json.Unmarshal(line, &e) != nil {
				continue
			}
			switch e.Event {
			case "calling":
				calling = e.Time
			case "secure":
				secure, ka = e.Time, e.KA
			}
		}
		if calling.IsZero() || secure.IsZero() {
			log.Fatalf("phonex call printed no calling or secure event:\n%s", res)
		}
		ds = append(ds, secure.Sub(calling))
	}
	return ds, ka
}

const linphoneRC = `[sip]
bind_address=127.0.0.1
sip_port=%d
sip_tcp_port=0
sip_tls_port=0
use_ipv6=0
ipv6_migration_done=1
media_encryption=zrtp
media_encryption_mandatory=1
zrtp_key_agreements_suites=MS_ZRTP_KEY_AGREEMENT_X255,MS_ZRTP_KEY_AGREEMENT_DH3K
verify_server_certs=0
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

type lpProc struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	home string
}

func (l *lpProc) send(s string) { io.WriteString(l.in, s+"\n") }

func (l *lpProc) log() string {
	b, _ := os.ReadFile(filepath.Join(l.home, "debug.log"))
	return string(b)
}

func startLinphone(home string, sip, rtp int) (*lpProc, error) {
	os.MkdirAll(filepath.Join(home, ".local", "share", "linphone"), 0o700)
	rc := filepath.Join(home, "rc")
	os.WriteFile(rc, fmt.Appendf(nil, linphoneRC, sip, rtp, rtp+2, rtp+4), 0o600)
	cmd := exec.Command("linphonec", "-c", rc, "-d", "6", "-l", filepath.Join(home, "debug.log"))
	cmd.Dir, cmd.Env = home, append(os.Environ(), "HOME="+home)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	l := &lpProc{cmd: cmd, in: in, home: home}
	time.Sleep(3 * time.Second)
	l.send("soundcard use files")
	return l, nil
}

func (l *lpProc) stop() {
	l.send("quit")
	done := make(chan struct{})
	go func() { l.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		l.cmd.Process.Kill()
	}
}

var (
	logTime  = regexp.MustCompile(`(?m)^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}) `)
	inviteRE = regexp.MustCompile(`(?m)^INVITE sip:`)
)

func parseLogTime(s string) time.Time {
	t, _ := time.ParseInLocation("2006-01-02 15:04:05.000", s[:19]+"."+s[20:], time.Local)
	return t
}

// lastTimeBefore is the time of the last timestamped line before i.
func lastTimeBefore(log string, i int) time.Time {
	ms := logTime.FindAllStringSubmatchIndex(log[:i], -1)
	if len(ms) == 0 {
		return time.Time{}
	}
	m := ms[len(ms)-1]
	return parseLogTime(log[m[2]:m[3]])
}

// linphoneCalls times n calls from one linphonec to another, which
// answers automatically.
func linphoneCalls() ([]time.Duration, error) {
	if _, err := exec.LookPath("linphonec"); err != nil {
		return nil, fmt.Errorf("linphonec not installed (apt-get install linphone-cli)")
	}
	a, err := startLinphone(filepath.Join(*work, "lp-a"), 25170, 27170)
	if err != nil {
		return nil, err
	}
	defer a.stop()
	b, err := startLinphone(filepath.Join(*work, "lp-b"), 25180, 27180)
	if err != nil {
		return nil, err
	}
	defer b.stop()
	b.send("autoanswer enable")
	time.Sleep(time.Second)
	var ds []time.Duration
	for range *n {
		mark := len(a.log())
		a.send("call sip:lp@127.0.0.1:25180")
		deadline := time.Now().Add(20 * time.Second)
		var d time.Duration
		for {
			lg := a.log()
			if len(lg) < mark {
				mark = 0
			}
			after := lg[mark:]
			if i := strings.Index(after, "ZRTP secrets on"); i >= 0 {
				inv := inviteRE.FindStringIndex(after)
				if inv == nil {
					return nil, fmt.Errorf("no INVITE in linphonec's log")
				}
				t0 := lastTimeBefore(after, inv[0])
				t1 := lastTimeBefore(after, i+1)
				d = t1.Sub(t0)
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("linphonec: no ZRTP keys within 20 s")
			}
			time.Sleep(20 * time.Millisecond)
		}
		ds = append(ds, d)
		time.Sleep(time.Second)
		a.send("terminate")
		time.Sleep(time.Second)
	}
	return ds, nil
}
