package files_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/server/files"
)

// The whole path: slots uploaded by both recipient devices, taken and
// proven by the sender, one upload in two chunks, the file offered to the
// recipient devices and the sender's other device, downloaded whole and by
// range, acknowledged, and deleted once every device has it.
func TestFileRoundTrip(t *testing.T) {
	e := newEnv(t, files.DefaultLimits, nil)
	sec := map[string]slotSecrets{b1: e.putSlots("b1", alpha, 4), b2: e.putSlots("b2", alpha, 4)}

	var counts api.FileSlotCounts
	e.must(e.call("b1", "GET", api.PathFileSlots, nil, &counts), "counts")
	if len(counts.Contacts) != 1 || counts.Contacts[0].Ready != 4 || counts.Contacts[0].Max != 4 {
		t.Fatalf("counts before: %+v", counts)
	}

	uses := e.takeAndProve("a1", bravo, sec)
	if len(uses) != 2 {
		t.Fatalf("%d slots taken, want one per bravo device", len(uses))
	}
	e.must(e.call("b1", "GET", api.PathFileSlots, nil, &counts), "counts")
	if c := counts.Contacts[0]; c.Ready != 3 || c.Taken != 1 {
		t.Fatalf("counts after the take: %+v (the recipient refills from them)", c)
	}

	content := random(300_000)
	fc, err := e.create("a1", bravo, int64(len(content)), uses)
	e.must(err, "create")
	if got := e.stored(); len(got) != 1 || got[0] != fc.ID+".part" {
		t.Fatalf("stored while uploading: %v", got)
	}
	// Not offered before it is complete.
	var list api.FileList
	e.must(e.call("b1", "GET", api.PathFiles, nil, &list), "list")
	if len(list.Incoming) != 0 {
		t.Fatalf("incomplete file offered: %+v", list.Incoming)
	}
	if r := e.do("b1", "GET", api.PathFiles+"/"+fc.ID, nil, nil); r.err == nil || r.err.Code != api.CodeFileUnavailable {
		t.Fatalf("download of an incomplete file: %d %+v", r.status, r.err)
	}

	if r := e.patch("a1", fc.ID, 0, content[:100_000]); r.status != http.StatusNoContent || r.header.Get(api.HeaderUploadOffset) != "100000" {
		t.Fatalf("first chunk: %d %v %+v", r.status, r.header, r.err)
	}
	if got := e.offset("a1", fc.ID); got != "100000" {
		t.Fatalf("offset %s", got)
	}
	if r := e.patch("a1", fc.ID, 100_000, content[100_000:]); r.status != http.StatusNoContent {
		t.Fatalf("last chunk: %d %+v", r.status, r.err)
	}
	// The data directory holds exactly the uploaded bytes, under a random id.
	if got := e.stored(); len(got) != 1 || got[0] != fc.ID {
		t.Fatalf("stored after the upload: %v", got)
	}
	onDisk, _ := os.ReadFile(filepath.Join(e.blobDir, fc.ID))
	if !bytes.Equal(onDisk, content) {
		t.Fatal("the stored file is not the uploaded ciphertext")
	}

	for _, dev := range []string{"b1", "b2", "a2"} {
		list = api.FileList{}
		e.must(e.call(dev, "GET", api.PathFiles, nil, &list), "list")
		if len(list.Incoming) != 1 || list.Incoming[0].ID != fc.ID || string(list.Incoming[0].Header) != "opaque header" ||
			list.Incoming[0].Sender != "alpha@example.org/a1" || list.Incoming[0].Size != int64(len(content)) {
			t.Fatalf("%s incoming: %+v", dev, list.Incoming)
		}
		in := list.Incoming[0]
		if dev == "a2" {
			if in.SlotID != "" || in.Nonce2 != nil {
				t.Fatalf("own device got a slot: %+v", in)
			}
		} else {
			var want api.FileSlotUse
			for _, u := range uses {
				if strings.HasSuffix(u.Device, "/"+dev) {
					want = u
				}
			}
			if in.SlotID != want.SlotID || !bytes.Equal(in.Nonce2, want.Nonce2) {
				t.Fatalf("%s: slot %s/%x, want %s/%x", dev, in.SlotID, in.Nonce2, want.SlotID, want.Nonce2)
			}
		}
		r := e.do(dev, "GET", api.PathFiles+"/"+fc.ID, nil, nil)
		if r.status != 200 || !bytes.Equal(r.body, content) {
			t.Fatalf("%s download: %d, %d bytes", dev, r.status, len(r.body))
		}
	}
	// Resume a download from an offset.
	r := e.do("b1", "GET", api.PathFiles+"/"+fc.ID, nil, map[string]string{"Range": "bytes=250000-", "If-Range": `"` + fc.ID + `"`})
	if r.status != http.StatusPartialContent || !bytes.Equal(r.body, content[250_000:]) {
		t.Fatalf("range download: %d, %d bytes", r.status, len(r.body))
	}
	// The uploader is no recipient.
	if r := e.do("a1", "GET", api.PathFiles+"/"+fc.ID, nil, nil); r.err == nil || r.err.Code != api.CodeFileUnavailable {
		t.Fatalf("sender download: %+v", r.err)
	}

	var state map[string]string
	e.must(e.call("b1", "POST", api.PathFiles+"/"+fc.ID+"/ack", nil, &state), "ack b1")
	if state["state"] != api.FileComplete {
		t.Fatalf("after one ack: %v", state)
	}
	if r := e.do("b1", "GET", api.PathFiles+"/"+fc.ID, nil, nil); r.err == nil || r.err.Code != api.CodeFileUnavailable {
		t.Fatalf("download after ack: %+v", r.err)
	}
	e.must(e.call("a1", "GET", api.PathFiles, nil, &list), "outgoing")
	o := list.Outgoing[0]
	delivered := map[string]bool{}
	for _, d := range o.Devices {
		delivered[d.Device] = d.Delivered
	}
	if o.State != api.FileComplete || len(delivered) != 3 || !delivered[b1] || delivered[b2] || delivered["alpha@example.org/a2"] {
		t.Fatalf("outgoing after one ack: %+v", o)
	}
	e.must(e.call("b2", "POST", api.PathFiles+"/"+fc.ID+"/ack", nil, nil), "ack b2")
	e.must(e.call("a2", "POST", api.PathFiles+"/"+fc.ID+"/ack", nil, &state), "ack a2")
	if state["state"] != api.FileDelivered {
		t.Fatalf("after every ack: %v", state)
	}
	if got := e.stored(); len(got) != 0 {
		t.Fatalf("content kept after every device has it: %v", got)
	}
	e.must(e.call("a1", "GET", api.PathFiles, nil, &list), "outgoing")
	if o := list.Outgoing[0]; o.State != api.FileDelivered {
		t.Fatalf("outgoing state %s", o.State)
	}
	// The log names files by id only: no header, no account, no device.
	logs := e.logs.String()
	if !strings.Contains(logs, fc.ID) {
		t.Fatalf("the log does not show the upload: %q", logs)
	}
	for _, secret := range []string{"opaque header", "alpha", "bravo", "b1", "a1"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the log shows %q: %s", secret, logs)
		}
	}
}

// Every misuse of a slot gets its own error.
func TestSlotErrors(t *testing.T) {
	e := newEnv(t, files.DefaultLimits, nil)
	sec := map[string]slotSecrets{b1: e.putSlots("b1", alpha, 4)}
	var taken api.FileSlotTaken
	e.must(e.call("a1", "POST", api.PathFileSlotTake, api.FileSlotTake{Recipient: bravo}, &taken), "take")
	if len(taken.Slots) != 1 || len(taken.Missing) != 1 || taken.Missing[0] != b2 {
		t.Fatalf("take: %+v", taken)
	}
	s := taken.Slots[0]
	prove := func(dev, slot string, nonce1 []byte) (api.FileSlotProven, *api.Error) {
		var p api.FileSlotProven
		err := e.call(dev, "POST", api.PathFileSlotProve, api.FileSlotProve{Device: b1, SlotID: slot, Proof: proofFor(slot, nonce1)}, &p)
		return p, err
	}

	_, err := prove("a1", s.SlotID, random(32))
	e.wantCode(err, api.CodeSlotProof, "wrong proof")
	_, err = prove("a2", s.SlotID, sec[b1][s.SlotID])
	e.wantCode(err, api.CodeSlotNotYours, "proof by a device that did not take it")
	var ready string // a slot never handed out
	for id := range sec[b1] {
		if id != s.SlotID {
			ready = id
		}
	}
	_, err = prove("a1", ready, sec[b1][ready])
	e.wantCode(err, api.CodeSlotNotYours, "proof of a slot never handed out")
	_, err = prove("a1", newSlotID(), sec[b1][s.SlotID])
	e.wantCode(err, api.CodeSlotUnknown, "unknown slot")
	_, err = e.create("a1", bravo, 10, []api.FileSlotUse{{Device: b1, SlotID: s.SlotID, Nonce2: random(32)}})
	e.wantCode(err, api.CodeSlotNotProven, "upload before the proof")

	p, err := prove("a1", s.SlotID, sec[b1][s.SlotID])
	e.must(err, "proof")
	again, err := prove("a1", s.SlotID, sec[b1][s.SlotID])
	e.must(err, "proof asked again")
	if !bytes.Equal(p.Nonce2, again.Nonce2) {
		t.Fatal("a repeated proof changed the second nonce")
	}
	_, err = e.create("a1", bravo, 10, []api.FileSlotUse{{Device: b1, SlotID: s.SlotID, Nonce2: random(32)}})
	e.wantCode(err, api.CodeSlotNonce, "wrong second nonce")
	if got := e.stored(); len(got) != 0 {
		t.Fatalf("stored after refusals: %v", got)
	}
	use := []api.FileSlotUse{{Device: b1, SlotID: s.SlotID, Nonce2: p.Nonce2}}
	_, err = e.create("a1", bravo, 10, use)
	e.must(err, "upload")
	_, err = e.create("a1", bravo, 10, use)
	e.wantCode(err, api.CodeSlotUsed, "second upload on one slot")
	_, err = prove("a1", s.SlotID, sec[b1][s.SlotID])
	e.wantCode(err, api.CodeSlotUsed, "replayed slot")

	// A take not followed by an upload in time expires.
	e.must(e.call("a1", "POST", api.PathFileSlotTake, api.FileSlotTake{Recipient: bravo}, &taken), "take")
	e.advance(files.DefaultLimits.TakeTTL + time.Second)
	_, err = prove("a1", taken.Slots[0].SlotID, sec[b1][taken.Slots[0].SlotID])
	e.wantCode(err, api.CodeSlotExpired, "expired take")

	// The per-contact cap: two slots are left, and at most four are held.
	e.wantCode(e.call("b1", "PUT", api.PathFileSlots, api.FileSlotsPut{Contact: alpha, Slots: []api.FileSlot{
		offer(newSlotID(), random(32)), offer(newSlotID(), random(32)), offer(newSlotID(), random(32))}}, nil), api.CodeSlotsFull, "beyond the cap")
	e.wantCode(e.call("b1", "PUT", api.PathFileSlots, api.FileSlotsPut{Contact: alpha, Slots: []api.FileSlot{
		offer(s.SlotID, random(32))}}, nil), api.CodeSlotExists, "slot id reused")
	e.wantCode(e.call("b1", "PUT", api.PathFileSlots, api.FileSlotsPut{Contact: charlie, Slots: []api.FileSlot{
		offer(newSlotID(), random(32))}}, nil), api.CodeNotContact, "slots for a non-contact")
	e.wantCode(e.call("b1", "PUT", api.PathFileSlots, api.FileSlotsPut{Contact: alpha, Slots: []api.FileSlot{
		{ID: "bad id", Sealed: []byte{1}, ProofHash: random(32), Nonce2: random(32)}}}, nil), api.CodeBadRequest, "bad slot id")

	// Ready slots expire too, and make room for a refill.
	e.advance(files.DefaultLimits.SlotTTL)
	var counts api.FileSlotCounts
	e.must(e.call("b1", "GET", api.PathFileSlots, nil, &counts), "counts")
	if len(counts.Contacts) != 1 || counts.Contacts[0].Ready != 0 || counts.Contacts[0].Taken != 0 {
		t.Fatalf("expired slots counted: %+v (want alpha listed with none, to refill)", counts)
	}
	e.wantCode(e.call("a1", "POST", api.PathFileSlotTake, api.FileSlotTake{Recipient: bravo}, nil), api.CodeNoSlot, "take of expired slots")
	e.putSlots("b1", alpha, 4)
}

// A non-contact, an upload without a slot, and uploads beyond the node's
// limits are refused before anything is stored.
func TestRefusedBeforeStorage(t *testing.T) {
	lim := files.DefaultLimits
	lim.MaxFileSize, lim.Quota, lim.PairCap = 1000, 1500, 2
	e := newEnv(t, lim, nil)
	sec := map[string]slotSecrets{b1: e.putSlots("b1", alpha, 4)}

	e.wantCode(e.call("c1", "POST", api.PathFileSlotTake, api.FileSlotTake{Recipient: alpha}, nil), api.CodeNotContact, "take by a non-contact")
	_, err := e.create("c1", alpha, 10, []api.FileSlotUse{{Device: "alpha@example.org/a1", SlotID: newSlotID(), Nonce2: random(32)}})
	e.wantCode(err, api.CodeNotContact, "upload by a non-contact")
	_, err = e.create("a1", bravo, 10, nil)
	e.wantCode(err, api.CodeNoSlot, "upload without a slot")
	_, err = e.create("a1", bravo, 1001, nil)
	e.wantCode(err, api.CodeFileTooLarge, "file above the maximum")
	_, err = e.create("a1", "nobody@example.org", 10, nil)
	e.wantCode(err, api.CodeUnknownUser, "unknown recipient")
	_, err = e.create("a1", "bravo@elsewhere.net", 10, nil)
	e.wantCode(err, api.CodeFederation, "other cluster")
	e.wantCode(e.call("a1", "POST", api.PathFiles, map[string]any{"recipient": bravo, "size": 10, "header": []byte("h"), "extra": 1}, nil),
		api.CodeBadRequest, "unknown field")
	if got := e.stored(); len(got) != 0 {
		t.Fatalf("stored after refusals: %v", got)
	}

	_, err = e.create("a1", bravo, 1000, e.takeAndProve("a1", bravo, sec))
	e.must(err, "first file")
	_, err = e.create("a1", bravo, 1000, e.takeAndProve("a1", bravo, sec))
	e.wantCode(err, api.CodeQuota, "beyond the account quota")
	_, err = e.create("a1", bravo, 400, e.takeAndProve("a1", bravo, sec))
	e.must(err, "second file")
	_, err = e.create("a1", bravo, 10, e.takeAndProve("a1", bravo, sec))
	e.wantCode(err, api.CodePairCap, "beyond the per-pair cap")
	if got := e.stored(); len(got) != 2 {
		t.Fatalf("stored: %v, want the two accepted uploads", got)
	}
	// Four slots, four takes: none left until bravo's device refills.
	e.wantCode(e.call("a1", "POST", api.PathFileSlotTake, api.FileSlotTake{Recipient: bravo}, nil), api.CodeNoSlot, "take with every slot taken")
	var counts api.FileSlotCounts
	e.must(e.call("b1", "GET", api.PathFileSlots, nil, &counts), "counts")
	if c := counts.Contacts[0]; c.Ready != 0 || c.Taken != 2 || c.Max != 4 {
		t.Fatalf("counts: %+v (two used, two taken by refused uploads)", c)
	}
	sec[b1] = e.putSlots("b1", alpha, 2)
	e.takeAndProve("a1", bravo, sec)
}

// A chunk that runs past the declared size is refused; a wrong offset is
// answered with the node's.
func TestChunkRules(t *testing.T) {
	e := newEnv(t, files.DefaultLimits, nil)
	sec := map[string]slotSecrets{b1: e.putSlots("b1", alpha, 4)}
	fc, err := e.create("a1", bravo, 100, e.takeAndProve("a1", bravo, sec))
	e.must(err, "create")

	r := e.patch("a1", fc.ID, 0, random(101))
	if r.err == nil || r.err.Code != api.CodeBeyondSize || e.offset("a1", fc.ID) != "0" {
		t.Fatalf("chunk beyond the size: %+v", r.err)
	}
	r = e.patch("a1", fc.ID, 0, random(60))
	if r.status != http.StatusNoContent {
		t.Fatalf("chunk: %+v", r.err)
	}
	r = e.patch("a1", fc.ID, 0, random(10))
	if r.err == nil || r.err.Code != api.CodeOffsetMismatch || r.header.Get(api.HeaderUploadOffset) != "60" {
		t.Fatalf("stale offset: %+v %v", r.err, r.header)
	}
	// Without a Content-Length the node reads up to the size and refuses
	// the rest; the file is not offered.
	req, _ := http.NewRequest("PATCH", e.srv.URL+api.PathFiles+"/"+fc.ID, io.MultiReader(bytes.NewReader(random(40)), bytes.NewReader(random(5))))
	req.ContentLength = -1
	req.Header.Set("Content-Type", api.ContentTypeOffset)
	req.Header.Set(api.HeaderUploadOffset, "60")
	res, errc := e.clients["a1"].Do(req)
	if errc != nil {
		t.Fatal(errc)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("streamed chunk beyond the size: %s", res.Status)
	}
	var list api.FileList
	e.must(e.call("b1", "GET", api.PathFiles, nil, &list), "list")
	if len(list.Incoming) != 0 {
		t.Fatal("a refused upload was offered")
	}
	// The bytes within the size were kept; an empty PATCH completes it.
	if off := e.offset("a1", fc.ID); off != "100" {
		t.Fatalf("offset after the refused tail: %s", off)
	}
	if r := e.patch("a1", fc.ID, 100, nil); r.status != http.StatusNoContent {
		t.Fatalf("completing PATCH: %+v", r.err)
	}
	e.must(e.call("b1", "GET", api.PathFiles, nil, &list), "list")
	if len(list.Incoming) != 1 {
		t.Fatal("the completed upload is not offered")
	}
	if r := e.patch("a1", fc.ID, 100, []byte("x")); r.err == nil || r.err.Code != api.CodeUploadComplete {
		t.Fatalf("PATCH after completion: %+v", r.err)
	}
	for _, tc := range []struct {
		name, ct, off, code string
		status              int
	}{
		{"content type", "application/json", "0", api.CodeBadRequest, http.StatusUnsupportedMediaType},
		{"negative offset", api.ContentTypeOffset, "-1", api.CodeBadRequest, 400},
		{"no offset", api.ContentTypeOffset, "", api.CodeBadRequest, 400},
		{"other device", api.ContentTypeOffset, "0", api.CodeNotFound, 404},
	} {
		dev := "a1"
		if tc.name == "other device" {
			dev = "a2"
		}
		r := e.do(dev, "PATCH", api.PathFiles+"/"+fc.ID, strings.NewReader("x"), map[string]string{"Content-Type": tc.ct, api.HeaderUploadOffset: tc.off})
		if r.status != tc.status || r.err == nil || r.err.Code != tc.code {
			t.Errorf("%s: %d %+v", tc.name, r.status, r.err)
		}
	}
}

// An upload cut half-way resumes at the node's offset: the bytes that
// arrived are not sent again.
func TestResumeAfterCut(t *testing.T) {
	e := newEnv(t, files.DefaultLimits, nil)
	sec := map[string]slotSecrets{b1: e.putSlots("b1", alpha, 4)}
	content := random(1 << 20)
	fc, err := e.create("a1", bravo, int64(len(content)), e.takeAndProve("a1", bravo, sec))
	e.must(err, "create")

	// A raw connection announces the whole file, sends 300 000 bytes and
	// breaks.
	const sent = 300_000
	conn, derr := tls.Dial("tcp", e.srv.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true,
		Certificates: e.clients["a1"].Transport.(*http.Transport).TLSClientConfig.Certificates})
	if derr != nil {
		t.Fatal(derr)
	}
	fmt.Fprintf(conn, "PATCH %s/%s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nUpload-Offset: 0\r\nContent-Length: %d\r\n\r\n",
		api.PathFiles, fc.ID, api.ContentTypeOffset, len(content))
	if _, werr := conn.Write(content[:sent]); werr != nil {
		t.Fatal(werr)
	}
	conn.Close()

	// A HEAD waits for a PATCH in flight; the broken one may reach the
	// node's handler only after the first HEAD.
	off := e.offset("a1", fc.ID)
	for deadline := time.Now().Add(10 * time.Second); off != fmt.Sprint(sent) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		off = e.offset("a1", fc.ID)
	}
	if off != fmt.Sprint(sent) {
		t.Fatalf("offset after the cut: %s, want %d", off, sent)
	}
	var list api.FileList
	e.must(e.call("b1", "GET", api.PathFiles, nil, &list), "list")
	if len(list.Incoming) != 0 {
		t.Fatal("a partial upload was offered")
	}
	if r := e.patch("a1", fc.ID, sent, content[sent:]); r.status != http.StatusNoContent {
		t.Fatalf("resume: %+v", r.err)
	}
	r := e.do("b1", "GET", api.PathFiles+"/"+fc.ID, nil, nil)
	if !bytes.Equal(r.body, content) {
		t.Fatal("resumed upload differs from the file")
	}
}

// fullStore runs out of disk after room bytes, as a full filesystem does.
type fullStore struct {
	files.FileStore
	room *int64
}

type enospcReader struct {
	r    io.Reader
	room *int64
}

func (f *enospcReader) Read(p []byte) (int, error) {
	if *f.room <= 0 {
		return 0, &os.PathError{Op: "write", Path: "files", Err: syscall.ENOSPC}
	}
	if int64(len(p)) > *f.room {
		p = p[:*f.room]
	}
	n, err := f.r.Read(p)
	*f.room -= int64(n)
	return n, err
}

func (s fullStore) Append(id string, off int64, r io.Reader) (int64, error) {
	return s.FileStore.Append(id, off, &enospcReader{r: r, room: s.room})
}

// A full disk is a 507 with the offset the node kept; the file is not
// offered, and the upload resumes once there is room.
func TestDiskFull(t *testing.T) {
	room := int64(5000)
	e := newEnv(t, files.DefaultLimits, func(fs files.FileStore) files.FileStore { return fullStore{fs, &room} })
	sec := map[string]slotSecrets{b1: e.putSlots("b1", alpha, 4)}
	content := random(20_000)
	fc, err := e.create("a1", bravo, int64(len(content)), e.takeAndProve("a1", bravo, sec))
	e.must(err, "create")
	r := e.patch("a1", fc.ID, 0, content)
	if r.status != http.StatusInsufficientStorage || r.err.Code != api.CodeStorageFull || r.header.Get(api.HeaderUploadOffset) != "5000" {
		t.Fatalf("disk full: %d %+v %v", r.status, r.err, r.header)
	}
	var list api.FileList
	e.must(e.call("b1", "GET", api.PathFiles, nil, &list), "list")
	if len(list.Incoming) != 0 {
		t.Fatal("a half-written file was offered")
	}
	if got := e.stored(); len(got) != 1 || !strings.HasSuffix(got[0], ".part") {
		t.Fatalf("stored: %v", got)
	}
	room = 1 << 20
	if r := e.patch("a1", fc.ID, 5000, content[5000:]); r.status != http.StatusNoContent {
		t.Fatalf("resume after room: %+v", r.err)
	}
	if r := e.do("b1", "GET", api.PathFiles+"/"+fc.ID, nil, nil); !bytes.Equal(r.body, content) {
		t.Fatal("content after the resume differs")
	}
}

// Expired files, complete or not, stop being offered and the sweeper
// deletes their content and records.
func TestExpiry(t *testing.T) {
	lim := files.DefaultLimits
	lim.Expiry = time.Hour
	e := newEnv(t, lim, nil)
	sec := map[string]slotSecrets{b1: e.putSlots("b1", alpha, 4)}
	done, err := e.create("a1", bravo, 10, e.takeAndProve("a1", bravo, sec))
	e.must(err, "create")
	if r := e.patch("a1", done.ID, 0, random(10)); r.status != http.StatusNoContent {
		t.Fatalf("upload: %+v", r.err)
	}
	partial, err := e.create("a1", bravo, 10, e.takeAndProve("a1", bravo, sec))
	e.must(err, "create")
	e.patch("a1", partial.ID, 0, random(4))
	if got := e.stored(); len(got) != 2 {
		t.Fatalf("stored: %v", got)
	}
	n, serr := e.svc.Sweep(t.Context())
	if serr != nil || n != 0 {
		t.Fatalf("sweep before expiry: %d %v", n, serr)
	}

	e.advance(time.Hour)
	if r := e.do("b1", "GET", api.PathFiles+"/"+done.ID, nil, nil); r.err == nil || r.err.Code != api.CodeFileUnavailable {
		t.Fatalf("download after expiry: %+v", r.err)
	}
	if r := e.patch("a1", partial.ID, 4, random(6)); r.err == nil || r.err.Code != api.CodeFileUnavailable {
		t.Fatalf("upload after expiry: %+v", r.err)
	}
	if r := e.do("a1", "HEAD", api.PathFiles+"/"+partial.ID, nil, nil); r.status != http.StatusGone || r.header.Get(api.HeaderError) != api.CodeFileUnavailable {
		t.Fatalf("HEAD after expiry: %d %v", r.status, r.header)
	}
	n, serr = e.svc.Sweep(t.Context())
	if serr != nil || n != 2 {
		t.Fatalf("sweep: %d %v", n, serr)
	}
	if got := e.stored(); len(got) != 0 {
		t.Fatalf("stored after the sweep: %v", got)
	}
	var list api.FileList
	e.must(e.call("a1", "GET", api.PathFiles, nil, &list), "list")
	if len(list.Outgoing) != 0 {
		t.Fatalf("expired files listed: %+v", list.Outgoing)
	}
	// The expired files' slots went with them; the two ready ones remain.
	var counts api.FileSlotCounts
	e.must(e.call("b1", "GET", api.PathFileSlots, nil, &counts), "counts")
	if len(counts.Contacts) != 1 || counts.Contacts[0].Ready != 2 {
		b, _ := json.Marshal(counts)
		t.Fatalf("counts: %s", b)
	}
}

// A transfer longer than the server's request timeouts goes on while
// bytes move; a stalled one is cut after the I/O timeout and keeps what
// arrived.
func TestSlowUploadOutlivesTimeouts(t *testing.T) {
	const timeout = time.Second
	e := newEnv(t, files.DefaultLimits, nil, func(s *httptest.Server) {
		s.Config.ReadTimeout, s.Config.WriteTimeout = timeout, timeout
	})
	e.svc.IOTimeout = timeout
	sec := map[string]slotSecrets{b1: e.putSlots("b1", alpha, 4)}
	fc, err := e.create("a1", bravo, 20_000, e.takeAndProve("a1", bravo, sec))
	e.must(err, "create")

	send := func(pieces int, length int64, stall time.Duration) (*http.Response, error) {
		pr, pw := io.Pipe()
		go func() {
			for range pieces {
				time.Sleep(timeout / 3)
				if _, err := pw.Write(random(1000)); err != nil {
					return
				}
			}
			time.Sleep(stall)
			pw.Close()
		}()
		off := e.offset("a1", fc.ID)
		req, _ := http.NewRequest("PATCH", e.srv.URL+api.PathFiles+"/"+fc.ID, pr)
		req.ContentLength = length
		req.Header.Set("Content-Type", api.ContentTypeOffset)
		req.Header.Set(api.HeaderUploadOffset, off)
		return e.clients["a1"].Do(req)
	}
	// Six pieces a third of the timeouts apart: twice the timeouts in all.
	res, serr := send(6, 6000, 0)
	if serr != nil {
		t.Fatal(serr)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent || res.Header.Get(api.HeaderUploadOffset) != "6000" {
		t.Fatalf("slow upload: %s %v", res.Status, res.Header)
	}
	// Two pieces, then silence: the node stops waiting and keeps both.
	res, serr = send(2, 10_000, 3*timeout)
	if serr == nil {
		res.Body.Close()
		if res.StatusCode/100 == 2 {
			t.Fatalf("stalled upload accepted: %s", res.Status)
		}
	}
	if got := e.offset("a1", fc.ID); got != "8000" {
		t.Fatalf("offset after the stall: %s", got)
	}
}

// Content whose record went with its sender's account is removed by the
// sweeper.
func TestSweepRemovesOrphans(t *testing.T) {
	e := newEnv(t, files.DefaultLimits, nil)
	sec := map[string]slotSecrets{b1: e.putSlots("b1", alpha, 4)}
	fc, err := e.create("a1", bravo, 10, e.takeAndProve("a1", bravo, sec))
	e.must(err, "create")
	e.patch("a1", fc.ID, 0, random(10))
	if err := e.st.DeleteAccount(t.Context(), alpha); err != nil {
		t.Fatal(err)
	}
	if got := e.stored(); len(got) != 1 {
		t.Fatalf("stored: %v", got)
	}
	if _, err := e.svc.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := e.stored(); len(got) != 0 {
		t.Fatalf("orphan kept: %v", got)
	}
}

// Many uploads racing for one proven slot: exactly one gets it.
func TestOneUploadPerSlotUnderRace(t *testing.T) {
	e := newEnv(t, files.DefaultLimits, nil)
	sec := map[string]slotSecrets{b1: e.putSlots("b1", alpha, 1)}
	uses := e.takeAndProve("a1", bravo, sec)
	const racers = 16
	codes := make(chan string, racers)
	for range racers {
		go func() {
			b, _ := json.Marshal(api.FileCreate{Recipient: bravo, Size: 10, Header: []byte("h"), Slots: uses})
			req, _ := http.NewRequest("POST", e.srv.URL+api.PathFiles, bytes.NewReader(b))
			res, err := e.clients["a1"].Do(req)
			if err != nil {
				codes <- err.Error()
				return
			}
			defer res.Body.Close()
			if res.StatusCode == 200 {
				codes <- "ok"
				return
			}
			var eb api.ErrorBody
			json.NewDecoder(res.Body).Decode(&eb)
			codes <- eb.Error.Code
		}()
	}
	got := map[string]int{}
	for range racers {
		got[<-codes]++
	}
	if got["ok"] != 1 || got[api.CodeSlotUsed] != racers-1 {
		t.Fatalf("outcomes: %v", got)
	}
	if s := e.stored(); len(s) != 1 {
		t.Fatalf("stored: %v", s)
	}
}

// The sender withdraws an upload: content and record go, the quota is
// free again, and nobody else may withdraw it.
func TestCancel(t *testing.T) {
	lim := files.DefaultLimits
	lim.MaxFileSize, lim.Quota = 100, 100
	e := newEnv(t, lim, nil)
	sec := map[string]slotSecrets{b1: e.putSlots("b1", alpha, 4)}
	fc, err := e.create("a1", bravo, 100, e.takeAndProve("a1", bravo, sec))
	e.must(err, "create")
	e.patch("a1", fc.ID, 0, random(40))
	_, err = e.create("a1", bravo, 100, e.takeAndProve("a1", bravo, sec))
	e.wantCode(err, api.CodeQuota, "second file within the quota")
	for _, dev := range []string{"a2", "b1"} {
		if r := e.do(dev, "DELETE", api.PathFiles+"/"+fc.ID, nil, nil); r.err == nil || r.err.Code != api.CodeNotFound {
			t.Fatalf("withdrawal by %s: %+v", dev, r.err)
		}
	}
	if r := e.do("a1", "DELETE", api.PathFiles+"/"+fc.ID, nil, nil); r.status != http.StatusNoContent {
		t.Fatalf("withdrawal: %+v", r.err)
	}
	if got := e.stored(); len(got) != 0 {
		t.Fatalf("stored after the withdrawal: %v", got)
	}
	if r := e.do("a1", "HEAD", api.PathFiles+"/"+fc.ID, nil, nil); r.status != http.StatusNotFound {
		t.Fatalf("HEAD after the withdrawal: %d", r.status)
	}
	_, err = e.create("a1", bravo, 100, e.takeAndProve("a1", bravo, sec))
	e.must(err, "a file after the withdrawal")
}
