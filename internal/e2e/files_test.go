package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type fileEntry struct {
	ID        string `json:"id"`
	Direction string `json:"direction"`
	Peer      string `json:"peer"`
	Name      string `json:"name"`
	Size      int64  `json:"size"`
	Offset    int64  `json:"offset"`
	Type      string `json:"type"`
	SHA256    string `json:"sha256"`
	State     string `json:"state"`
	Error     string `json:"error"`
}

type sentFile struct {
	Type    string   `json:"type"`
	ID      string   `json:"id"`
	Phase   string   `json:"phase"`
	Done    int64    `json:"done"`
	Total   int64    `json:"total"`
	Devices []string `json:"devices"`
	Missing []string `json:"missing"`
	Resumed bool     `json:"resumed"`
}

// sendFileLines parses send-file --json output: progress lines, then the result.
func sendFileLines(t *testing.T, out string) (progress []sentFile, result sentFile) {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var s sentFile
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatalf("send-file line %q: %v", l, err)
		}
		if s.Type == "progress" {
			progress = append(progress, s)
		} else {
			result = s
		}
	}
	return progress, result
}

func randomFile(t *testing.T, path string, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

func (c *cluster) files(dev string) []fileEntry {
	c.t.Helper()
	return decode[[]fileEntry](c.t, c.mustPx(dev, "files", "--json"))
}

func findFile(fs []fileEntry, id string) (fileEntry, bool) {
	for _, f := range fs {
		if f.ID == id {
			return f, true
		}
	}
	return fileEntry{}, false
}

// getAndCompare fetches id on dev and checks it against want.
func (c *cluster) getAndCompare(dev, id string, want []byte) {
	c.t.Helper()
	dst := filepath.Join(c.tmp, strings.ReplaceAll(dev, "/", "_")+"-"+id)
	c.mustPx(dev, "get", id, "-o", dst, "--json")
	got, err := os.ReadFile(dst)
	if err != nil {
		c.t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(want) {
		c.t.Fatalf("%s: %s differs from what was sent (%d bytes, want %d)", dev, id, len(got), len(want))
	}
}

func TestFiles(t *testing.T) {
	c := newCluster(t)
	c.n = serve(t, c.data)
	c.device("alpha", "a1", true)
	c.device("alpha", "a2", false)
	c.device("bravo", "b1", true)
	c.device("bravo", "b2", false)
	c.mustPx("alpha/a1", "contacts", "add", "bravo@example.org")
	c.mustPx("bravo/b1", "contacts", "add", "alpha@example.org")

	// bravo's devices come online once: each offers alpha its slots.
	for _, d := range []string{"bravo/b1", "bravo/b2"} {
		l := c.listen(d)
		waitFor(t, d+" ready", 20*time.Second, func() bool { return l.has("ready", "") })
		if l.first("file_slots").Text == "" {
			t.Fatalf("%s offered no file slots: %s", d, l.stderr.String())
		}
		l.stop()
	}

	// A random file from a1 reaches both of bravo's devices and a2.
	src := filepath.Join(c.tmp, "secret-report-name.bin")
	want := randomFile(t, src, 5<<20+1234)
	_, res := sendFileLines(t, c.mustPx("alpha/a1", "send-file", "bravo@example.org", src, "--json"))
	if res.ID == "" || len(res.Devices) != 2 || len(res.Missing) != 0 {
		t.Fatalf("send-file result: %+v", res)
	}
	// Metadata is readable before the download.
	for _, d := range []string{"bravo/b1", "bravo/b2", "alpha/a2"} {
		f, ok := findFile(c.files(d), res.ID)
		if !ok || f.Direction != "in" || f.Name != "secret-report-name.bin" || f.Size != int64(len(want)) || f.State != "offered" {
			t.Fatalf("%s: files shows %+v (found %v)", d, f, ok)
		}
	}
	// The node holds no plaintext and no file name.
	checkNodeBlind(t, c, want, "secret-report-name")
	for _, d := range []string{"bravo/b1", "bravo/b2", "alpha/a2"} {
		c.getAndCompare(d, res.ID, want)
		if f, _ := findFile(c.files(d), res.ID); f.State != "received" {
			t.Fatalf("%s after get: %+v", d, f)
		}
	}
	if f, _ := findFile(c.files("alpha/a1"), res.ID); f.Direction != "out" || f.State != "delivered" {
		t.Fatalf("sender's view after every device got it: %+v", f)
	}
	// A received slot was destroyed: a second get fails.
	if r := c.px("bravo/b1", "get", res.ID, "-o", filepath.Join(c.tmp, "again")); r.code == 0 {
		t.Fatal("a second get of a received file succeeded")
	}

	// A send-file killed half-way resumes where the node stopped.
	big := filepath.Join(c.tmp, "big.bin")
	bigData := randomFile(t, big, 50<<20)
	cmd := exec.Command(filepath.Join(bin, "phonex"), "send-file", "bravo@example.org", big, "--json",
		"--profile", c.profile("alpha/a1"), "--password-file", c.pw)
	out, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		var s sentFile
		if json.Unmarshal(sc.Bytes(), &s) == nil && s.Phase == "upload" && s.Done > 10<<20 {
			cmd.Process.Kill() // SIGKILL: nothing is cleaned up
			killed = true
			break
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("send-file finished before it could be killed: %s", stderr.String())
	}
	var at int64
	for _, f := range c.files("alpha/a1") {
		if f.Direction == "out" && f.State == "uploading" {
			at = f.Offset
		}
	}
	if at <= 0 || at >= int64(len(bigData)) {
		t.Fatalf("node offset after the kill: %d", at)
	}
	prog, res2 := sendFileLines(t, c.mustPx("alpha/a1", "send-file", "bravo@example.org", big, "--json"))
	if !res2.Resumed || res2.ID == "" {
		t.Fatalf("rerun did not resume: %+v", res2)
	}
	for _, p := range prog {
		if p.Phase != "upload" || p.Done <= at {
			t.Fatalf("rerun re-sent or re-encrypted: %+v (node had %d)", p, at)
		}
	}
	c.getAndCompare("bravo/b2", res2.ID, bigData)
	c.getAndCompare("alpha/a2", res2.ID, bigData)

	// A get killed half-way resumes after the bytes it has, and the file
	// does not appear before it verified whole.
	dst := filepath.Join(c.tmp, "big-on-b1")
	cmd = exec.Command(filepath.Join(bin, "phonex"), "get", res2.ID, "-o", dst, "--json",
		"--profile", c.profile("bravo/b1"), "--password-file", c.pw)
	out, _ = cmd.StdoutPipe()
	stderr.Reset()
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc = bufio.NewScanner(out)
	killed = false
	for sc.Scan() {
		var s sentFile
		if json.Unmarshal(sc.Bytes(), &s) == nil && s.Phase == "download" && s.Done > 10<<20 {
			cmd.Process.Kill()
			killed = true
			break
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("get finished before it could be killed: %s", stderr.String())
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatalf("a killed get left %s: %v", dst, err)
	}
	f, _ := findFile(c.files("bravo/b1"), res2.ID)
	if f.State != "downloading" || f.Offset <= 0 {
		t.Fatalf("after the killed get: %+v", f)
	}
	r := c.px("bravo/b1", "get", res2.ID, "-o", dst, "--json")
	if r.code != 0 {
		t.Fatalf("resumed get: %s", r.err)
	}
	for _, l := range strings.Split(strings.TrimSpace(r.out), "\n") {
		var s sentFile
		if json.Unmarshal([]byte(l), &s) == nil && s.Phase == "download" && s.Done <= f.Offset {
			t.Fatalf("resumed get fetched again from %d (had %d)", s.Done, f.Offset)
		}
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, bigData) {
		t.Fatal("resumed get: content differs")
	}

	// Two slots per device are used; two more files use the rest.
	small := filepath.Join(c.tmp, "small.txt")
	smallData := randomFile(t, small, 1000)
	for range 2 {
		c.mustPx("alpha/a1", "send-file", "bravo@example.org", small)
		os.Chtimes(small, time.Now(), time.Now().Add(time.Second)) // a new send, not a resume
	}
	r = c.px("alpha/a1", "send-file", "bravo@example.org", small)
	if r.code == 0 || !strings.Contains(r.err, "no file slot left for bravo/b1") || !strings.Contains(r.err, "must come online to refill") {
		t.Fatalf("send without slots: exit %d %q", r.code, r.err)
	}
	// b1 comes online and refills; b2 stays offline and is named.
	l := c.listen("bravo/b1")
	waitFor(t, "b1 refilled", 20*time.Second, func() bool { return l.has("ready", "") })
	r = c.px("alpha/a1", "send-file", "bravo@example.org", small, "--json")
	if r.code != 0 || !strings.Contains(r.err, "no file slot left for bravo@example.org/b2") {
		t.Fatalf("send after refill: exit %d %q", r.code, r.err)
	}
	_, res3 := sendFileLines(t, r.out)
	// listen names the file offered (it polls on its registration refresh).
	waitFor(t, "file event", 25*time.Second, func() bool { return l.has("file", res3.ID) })
	l.mu.Lock()
	for _, e := range l.events {
		if e.Type == "file" && e.ID == res3.ID && (e.From != "alpha@example.org" || e.Text != "small.txt" || e.State != "offered") {
			t.Errorf("file event: %+v", e)
		}
	}
	l.mu.Unlock()
	c.getAndCompare("bravo/b1", res3.ID, smallData)

	// A byte flipped in the node's stored copy: the recipient refuses
	// the file with the chunk error and writes nothing.
	_, res4 := sendFileLines(t, c.mustPx("alpha/a1", "send-file", "bravo@example.org", big, "--json"))
	stored := filepath.Join(c.data, "files", res4.ID)
	b, err := os.ReadFile(stored)
	if err != nil {
		t.Fatalf("the node's copy: %v", err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(stored, b, 0o600); err != nil {
		t.Fatal(err)
	}
	dst = filepath.Join(c.tmp, "tampered")
	r = c.px("bravo/b1", "get", res4.ID, "-o", dst)
	if r.code == 0 || !strings.Contains(r.err, "chunk altered") {
		t.Fatalf("get of an altered file: exit %d %q", r.code, r.err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatalf("an altered file appeared at %s", dst)
	}
	if f, _ := findFile(c.files("bravo/b1"), res4.ID); f.State != "failed" || !strings.Contains(f.Error, "chunk altered") {
		t.Fatalf("files after a failed get: %+v", f)
	}

	// A device of alpha's added after bravo made its slots cannot open
	// them: it is told, not handed a file it could not send.
	c.device("alpha", "a3", false)
	r = c.px("alpha/a3", "send-file", "bravo@example.org", small)
	if r.code == 0 || !strings.Contains(r.err, "slots were made before this device") {
		t.Fatalf("send from a device newer than the slots: exit %d %q", r.code, r.err)
	}

	// The sender's list names every file it sent, the same path sent
	// again included.
	named := 0
	for _, f := range c.files("alpha/a1") {
		if f.Direction == "out" && f.Name == "small.txt" {
			named++
		}
	}
	if named != 3 {
		t.Fatalf("a1 lists %d outgoing small.txt, want 3", named)
	}

	// The sender's listen reports each recipient device that has a file.
	l.stop()
	la := c.listen("alpha/a1")
	waitFor(t, "a1 ready", 20*time.Second, func() bool { return la.has("ready", "") })
	la.mu.Lock()
	got := map[string]bool{}
	for _, e := range la.events {
		if e.Type == "file" && e.State == "delivered" && e.ID == res.ID {
			got[e.Peer] = true
		}
	}
	la.mu.Unlock()
	if len(got) != 3 || !got["bravo@example.org/b1"] || !got["bravo@example.org/b2"] || !got["alpha@example.org/a2"] {
		t.Fatalf("delivered events for %s: %v", res.ID, got)
	}
	la.stop()

	// A non-contact's send is refused before anything is stored.
	before, _ := os.ReadDir(filepath.Join(c.data, "files"))
	c.device("carol", "c1", true)
	c.mustPx("carol/c1", "contacts", "add", "bravo@example.org")
	r = c.px("carol/c1", "send-file", "bravo@example.org", small)
	if r.code == 0 {
		t.Fatalf("a non-contact's send-file succeeded: %s", r.out)
	}
	if after, _ := os.ReadDir(filepath.Join(c.data, "files")); len(after) != len(before) {
		t.Fatalf("the node stored something for a non-contact: %d entries, then %d", len(before), len(after))
	}
	t.Logf("non-contact: %s", strings.TrimSpace(r.err))
}

// checkNodeBlind reads every file of the node's data directory and its
// logs, looking for plaintext and the file's name.
func checkNodeBlind(t *testing.T, c *cluster, plain []byte, name string) {
	t.Helper()
	probes := [][]byte{[]byte(name), plain[:32], plain[len(plain)/2 : len(plain)/2+32], plain[len(plain)-32:]}
	filepath.WalkDir(c.data, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i, pr := range probes {
			if bytes.Contains(b, pr) {
				t.Fatalf("node file %s holds probe %d (name or plaintext)", p, i)
			}
		}
		return nil
	})
	for i, pr := range probes {
		if bytes.Contains(c.n.logs.Bytes(), pr) {
			t.Fatalf("node logs hold probe %d", i)
		}
	}
}
