package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/media/dsp"
	"github.com/phonex/phonex/internal/media/wav"
)

// outFile is an outgoing entry of `phonex files --json` with its devices.
type outFile struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	Error   string `json:"error"`
	Devices []struct {
		Device    string `json:"device"`
		Delivered bool   `json:"delivered"`
	} `json:"devices"`
}

func (f *fedCluster) outFile(dev, id string) outFile {
	f.t.Helper()
	for _, o := range decode[[]outFile](f.t, f.mustPx(dev, "files", "--json")) {
		if o.ID == id {
			return o
		}
	}
	return outFile{}
}

// incoming waits for a file named name offered to dev.
func (f *fedCluster) incoming(dev, name string) fileEntry {
	f.t.Helper()
	var in fileEntry
	waitFor(f.t, name+" offered to "+dev, 60*time.Second, func() bool {
		for _, e := range f.files(dev) {
			if e.Direction == "in" && e.Name == name && e.State == "offered" {
				in = e
				return true
			}
		}
		return false
	})
	return in
}

// fileEvent reports whether l has a file event matching f.
func fileEvent(l *listener, f func(event) bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if e.Type == "file" && f(e) {
			return true
		}
	}
	return false
}

// offerSlots runs dev's listen until it has offered its contacts slots.
func (f *fedCluster) offerSlots(dev string) {
	f.t.Helper()
	l := f.listen(dev)
	waitFor(f.t, dev+" ready", 20*time.Second, func() bool { return l.has("ready", "") })
	if l.first("file_slots").Text == "" {
		f.t.Fatalf("%s offered no file slots: %s", dev, l.stderr.String())
	}
	l.stop()
}

// TestFederatedFiles: files between alpha@a.example and bravo@b.example
// go through both nodes: a file of several chunks from alpha reaches
// bravo byte for byte (announced by bravo's listen) and alpha sees it
// delivered (in files and its listen); the same the other
// way; while b is down a's node holds alpha's file (across a restart of
// a) and forwards it when b returns; a sender bravo has not listed is
// refused and bravo is offered nothing.
func TestFederatedFiles(t *testing.T) {
	a := newFedCluster(t, "a.example")
	b := newFedCluster(t, "b.example")
	a.peer(b)
	b.peer(a)
	a.enroll("alpha", "a1")
	a.enroll("carol", "c1")
	b.enroll("bravo", "b1")
	a.mustPx("alpha/a1", "contacts", "add", "bravo@b.example")
	b.mustPx("bravo/b1", "contacts", "add", "alpha@a.example")
	a.mustPx("carol/c1", "contacts", "add", "bravo@b.example")
	b.offerSlots("bravo/b1")
	a.offerSlots("alpha/a1")

	// a → b: 300 KiB, five content chunks; both devices listen.
	bl, al := b.listen("bravo/b1"), a.listen("alpha/a1")
	waitFor(t, "both listening", 20*time.Second, func() bool { return bl.has("ready", "") && al.has("ready", "") })
	src := filepath.Join(a.tmp, "report-from-a.bin")
	want := randomFile(t, src, 300<<10+17)
	_, res := sendFileLines(t, a.mustPx("alpha/a1", "send-file", "bravo@b.example", src, "--json"))
	if res.ID == "" || len(res.Devices) != 1 || res.Devices[0] != "bravo@b.example/b1" || len(res.Missing) != 0 {
		t.Fatalf("send-file result: %+v", res)
	}
	waitFor(t, "bravo's listen reports the file", 40*time.Second, func() bool {
		return fileEvent(bl, func(e event) bool {
			return e.State == "offered" && e.From == "alpha@a.example" && e.FromDevice == "a1" && e.Text == "report-from-a.bin"
		})
	})
	in := b.incoming("bravo/b1", "report-from-a.bin")
	if in.ID != res.ID || in.Peer != "alpha@a.example/a1" || in.Size != int64(len(want)) {
		t.Fatalf("bravo's files shows %+v", in)
	}
	b.getAndCompare("bravo/b1", in.ID, want)
	waitFor(t, "alpha sees the file delivered", 15*time.Second, func() bool {
		o := a.outFile("alpha/a1", res.ID)
		return o.State == "delivered" && len(o.Devices) == 1 && o.Devices[0].Device == "bravo@b.example/b1" && o.Devices[0].Delivered
	})
	waitFor(t, "alpha's listen reports the delivery", 40*time.Second, func() bool {
		return fileEvent(al, func(e event) bool {
			return e.State == "delivered" && e.Outgoing && e.ID == res.ID && e.Peer == "bravo@b.example/b1"
		})
	})
	bl.stop()
	al.stop()

	// b → a.
	back := filepath.Join(b.tmp, "answer-from-b.bin")
	wantBack := randomFile(t, back, 200<<10+5)
	_, res2 := sendFileLines(t, b.mustPx("bravo/b1", "send-file", "alpha@a.example", back, "--json"))
	if len(res2.Devices) != 1 || res2.Devices[0] != "alpha@a.example/a1" {
		t.Fatalf("send-file b → a: %+v", res2)
	}
	in2 := a.incoming("alpha/a1", "answer-from-b.bin")
	if in2.ID != res2.ID {
		t.Fatalf("alpha sees file %s, bravo sent %s", in2.ID, res2.ID)
	}
	a.getAndCompare("alpha/a1", in2.ID, wantBack)
	waitFor(t, "bravo sees the file delivered", 15*time.Second, func() bool { return b.outFile("bravo/b1", res2.ID).State == "delivered" })

	// b goes down after alpha's device took and proved bravo's slot: the
	// upload to a completes, send-file says what it waits for, and a
	// forwards the file once b is back. The send-file's output goes into
	// a pipe of one page that is not read, so the command stops at its
	// progress lines, after the slots and before the upload's creation.
	held := filepath.Join(a.tmp, "held-at-a.bin")
	wantHeld := randomFile(t, held, 8<<20+3)
	held1 := sendWhileDown(t, a, b, "alpha/a1", "bravo@b.example", held)
	if o := a.outFile("alpha/a1", held1.ID); o.State != "waiting" || o.Error != "waiting for b.example" {
		t.Fatalf("alpha's files with b down: %+v", o)
	}
	// a restarts meanwhile: the file waits in its store, not its memory.
	a.n.stop(t)
	a.start()
	b.start()
	in3 := b.incoming("bravo/b1", "held-at-a.bin")
	if in3.ID != held1.ID {
		t.Fatalf("bravo sees file %s, alpha sent %s", in3.ID, held1.ID)
	}
	b.getAndCompare("bravo/b1", in3.ID, wantHeld)
	waitFor(t, "alpha sees the held file delivered", 15*time.Second, func() bool { return a.outFile("alpha/a1", held1.ID).State == "delivered" })

	// carol listed bravo, bravo did not list carol: refused, nothing stored.
	before := b.files("bravo/b1")
	r := a.px("carol/c1", "send-file", "bravo@b.example", src)
	if r.code == 0 {
		t.Fatalf("a file from carol, whom bravo has not listed, was accepted: %s", r.out)
	}
	t.Logf("carol's send-file: %s", strings.TrimSpace(r.err))
	if after := b.files("bravo/b1"); len(after) != len(before) {
		t.Fatalf("bravo's files changed after carol's refused send: %+v", after)
	}
}

// TestFederatedFilesHostilePeer: a's file calls for peers' nodes refuse a
// node whose certificate is not of the CA pinned for its domain, and a
// device certificate of another CA under b's real node; a stores nothing
// of either, while the same take with b's node and bravo's real device
// certificate gets alpha's slot.
func TestFederatedFilesHostilePeer(t *testing.T) {
	a := newFedCluster(t, "a.example")
	b := newFedCluster(t, "b.example")
	a.peer(b)
	b.peer(a)
	a.enroll("alpha", "a1")
	b.enroll("bravo", "b1")
	a.mustPx("alpha/a1", "contacts", "add", "bravo@b.example")
	b.mustPx("bravo/b1", "contacts", "add", "alpha@a.example")
	a.offerSlots("alpha/a1")
	f := newFedCluster(t, "b.example") // claims b.example with a CA of its own
	f.peer(a)
	f.enroll("bravo", "forged")

	certOf := func(c *fedCluster, dev string) string {
		t.Helper()
		db, err := sql.Open("sqlite", "file:"+filepath.Join(c.data, "phonexd.db")+"?mode=ro&_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var der []byte
		if err := db.QueryRow(`SELECT cert FROM devices WHERE name=?`, dev).Scan(&der); err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(der)
	}
	bravo, forged := certOf(b, "b1"), certOf(f, "forged")
	call := func(node *fedCluster, deviceCert, path, body string) (int, string) {
		t.Helper()
		cert, err := tls.LoadX509KeyPair(filepath.Join(node.data, "server.pem"), filepath.Join(node.data, "server.key"))
		if err != nil {
			t.Fatal(err)
		}
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: a.caPool(),
			ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert}}}}
		req, _ := http.NewRequest("POST", "https://"+a.api+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-PhoneX-Device-Cert", deviceCert)
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	take := `{"recipient":"alpha@a.example"}`
	offer := `{"origin_id":"abcdefgh","recipient":"alpha@a.example","size":100,"header":"aGVhZGVy","slots":[{"device":"alpha@a.example/a1","slot_id":"` +
		strings.Repeat("ab", 16) + `","nonce2":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `"}]}`
	for _, tc := range []struct {
		name       string
		node       *fedCluster
		cert, path string
		body       string
	}{
		{"forged node: take", f, forged, "/v1/federation/files/slots/take", take},
		{"forged node: offer", f, forged, "/v1/federation/files", offer},
		{"forged node with bravo's certificate", f, bravo, "/v1/federation/files/slots/take", take},
		{"b's node with a forged device", b, forged, "/v1/federation/files/slots/take", take},
		{"b's node with a forged device: offer", b, forged, "/v1/federation/files", offer},
	} {
		if code, body := call(tc.node, tc.cert, tc.path, tc.body); code != http.StatusForbidden && code != http.StatusUnauthorized {
			t.Errorf("%s: %d %s", tc.name, code, body)
		}
	}
	adb, err := sql.Open("sqlite", "file:"+filepath.Join(a.data, "phonexd.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer adb.Close()
	var stored, taken int
	adb.QueryRow(`SELECT COUNT(*) FROM files`).Scan(&stored)
	adb.QueryRow(`SELECT COUNT(*) FROM file_slots WHERE state!='ready'`).Scan(&taken)
	if stored != 0 || taken != 0 {
		t.Fatalf("a stored %d files and handed out %d slots to forged callers", stored, taken)
	}
	// The control: b's node for bravo's device takes one of alpha's slots.
	if code, body := call(b, bravo, "/v1/federation/files/slots/take", take); code != http.StatusOK || !strings.Contains(body, `"device":"alpha@a.example/a1"`) {
		t.Fatalf("b's node for bravo: %d %s", code, body)
	}
}

// TestFederatedVoice: a voice message from bravo@b.example (Ogg Opus, the
// same slots and nodes as a file) reaches alpha@a.example.
func TestFederatedVoice(t *testing.T) {
	requirePeer(t, "libopus")
	a := newFedCluster(t, "a.example")
	b := newFedCluster(t, "b.example")
	a.peer(b)
	b.peer(a)
	a.enroll("alpha", "a1")
	b.enroll("bravo", "b1")
	a.mustPx("alpha/a1", "contacts", "add", "bravo@b.example")
	b.mustPx("bravo/b1", "contacts", "add", "alpha@a.example")
	a.offerSlots("alpha/a1")
	tone := filepath.Join(b.tmp, "tone.wav")
	wf, err := os.Create(tone)
	if err != nil {
		t.Fatal(err)
	}
	if err := wav.Encode(wf, &wav.Audio{SampleRate: 16000, Samples: dsp.Sine(16000, 16000, 440, 0.3)}); err != nil {
		t.Fatal(err)
	}
	wf.Close()
	_, vres := sendFileLines(t, b.mustPx("bravo/b1", "voice", "alpha@a.example", "--wav", tone, "--json"))
	if len(vres.Devices) != 1 {
		t.Fatalf("voice b → a: %+v", vres)
	}
	var voice fileEntry
	waitFor(t, "the voice message at alpha", 60*time.Second, func() bool {
		for _, e := range a.files("alpha/a1") {
			if e.Direction == "in" && e.Type == "audio/ogg" && e.State == "offered" {
				voice = e
				return true
			}
		}
		return false
	})
	ogg := filepath.Join(a.tmp, "voice.ogg")
	a.mustPx("alpha/a1", "get", voice.ID, "-o", ogg, "--json")
	if got, err := os.ReadFile(ogg); err != nil || !bytes.HasPrefix(got, []byte("OggS")) {
		t.Fatalf("the voice message at alpha: %d bytes, %v", len(got), err)
	}

}

// heldSend is the result of a send-file to a cluster that went down.
type heldSend struct {
	ID      string `json:"id"`
	Waiting string `json:"waiting"`
}

// sendWhileDown runs dev's send-file of path to `to` and stops b's node
// once the command has taken and proved the slots, before it creates the
// upload: its output goes into a pipe of one page that is not read, so
// the command stops at its progress lines (hashing, encrypting) until b
// is down. It checks that the upload completed and the command said it
// waits for b.
func sendWhileDown(t *testing.T, a, b *fedCluster, dev, to, path string) heldSend {
	t.Helper()
	// Progress comes in steps of 1% of the size per phase, in 32 KiB
	// reads: a few MiB make more than a page of it before the upload.
	if st, err := os.Stat(path); err != nil || st.Size() < 4<<20 {
		t.Fatalf("sendWhileDown needs a file of 4 MiB or more: %v", err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	const fSetPipeSz = 1031 // F_SETPIPE_SZ, fcntl(2)
	if _, _, e := syscall.Syscall(syscall.SYS_FCNTL, pw.Fd(), fSetPipeSz, 4096); e != 0 {
		t.Fatalf("F_SETPIPE_SZ: %v", e)
	}
	cmd := exec.Command(filepath.Join(bin, "phonex"), "send-file", to, path, "--json",
		"--profile", a.profile(dev), "--password-file", a.pw)
	cmd.Stdout = pw
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	first, err := bufio.NewReaderSize(pr, 16).ReadString('\n') // reads at most a few bytes past the line
	if err != nil || !strings.Contains(first, `"progress"`) {
		t.Fatalf("send-file's first line %q: %v (%s)", first, err, stderr.String())
	}
	b.n.stop(t)
	var rest bytes.Buffer
	rest.ReadFrom(pr)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("send-file with %s down: %v: %s", b.domain, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(rest.String()), "\n")
	var res heldSend
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil || res.ID == "" || res.Waiting != b.domain {
		t.Fatalf("send-file result with %s down: %q (%v)", b.domain, lines[len(lines)-1], err)
	}
	if !strings.Contains(stderr.String(), "waiting for "+b.domain) {
		t.Fatalf("send-file did not say it waits for %s: %s", b.domain, stderr.String())
	}
	return res
}

// TestFederatedFileRefused: a file over b's size limit is refused before
// its upload and a keeps nothing; a file that waited at a longer than b
// lets a take of its slot last is refused by b when it comes back;
// alpha's files shows it failed with b's refusal and alpha's listen
// reports it.
func TestFederatedFileRefused(t *testing.T) {
	a := newFedCluster(t, "a.example")
	b := newFedCluster(t, "b.example")
	b.configure("file_take_ttl = 2s", "file_max_size = 9437184")
	b.n.stop(t)
	b.start()
	a.peer(b)
	b.peer(a)
	a.enroll("alpha", "a1")
	b.enroll("bravo", "b1")
	a.mustPx("alpha/a1", "contacts", "add", "bravo@b.example")
	b.mustPx("bravo/b1", "contacts", "add", "alpha@a.example")
	b.offerSlots("bravo/b1")

	// Over b's size limit: refused before the upload; a keeps nothing.
	big := filepath.Join(a.tmp, "too-big.bin")
	randomFile(t, big, 10<<20)
	if r := a.px("alpha/a1", "send-file", "bravo@b.example", big); r.code == 0 || !strings.Contains(r.err, "b.example takes files of at most 9437184 bytes") {
		t.Fatalf("a file over b's size limit: exit %d %q", r.code, r.err)
	}
	if out := decode[[]outFile](t, a.mustPx("alpha/a1", "files", "--json")); len(out) != 0 {
		t.Fatalf("a keeps a file b refused: %+v", out)
	}

	src := filepath.Join(a.tmp, "too-late.bin")
	randomFile(t, src, 8<<20) // within b's limit once encrypted
	held := sendWhileDown(t, a, b, "alpha/a1", "bravo@b.example", src)
	time.Sleep(3 * time.Second) // past b's take of the slot
	al := a.listen("alpha/a1")
	b.start()
	waitFor(t, "the refusal at alpha", 60*time.Second, func() bool {
		o := a.outFile("alpha/a1", held.ID)
		return o.State == "failed" && strings.HasPrefix(o.Error, "refused by the recipient's cluster: slot_")
	})
	waitFor(t, "alpha's listen reports the refusal", 40*time.Second, func() bool {
		return fileEvent(al, func(e event) bool { return e.State == "failed" && e.Outgoing && e.ID == held.ID })
	})
}
