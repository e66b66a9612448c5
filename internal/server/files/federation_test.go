package files_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/server/files"
	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/store/sqlite"
)

// fedNode is one cluster's file service for the tests of files across
// clusters: devices name themselves in a header (the certificate checks
// are the server's, tested with it), and a peer's node reaches it in
// process through link.
type fedNode struct {
	t      testing.TB
	domain string
	st     *sqlite.DB
	svc    *files.Service
	mux    *http.ServeMux
}

func newFedNode(t testing.TB, domain string, lim files.Limits, accounts map[string][]string, contacts [][2]string) *fedNode {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fs, err := files.NewFSStore(filepath.Join(dir, "files"))
	if err != nil {
		t.Fatal(err)
	}
	n := &fedNode{t: t, domain: domain, st: st, svc: files.New(st, fs, lim, domain, slog.New(slog.DiscardHandler)), mux: http.NewServeMux()}
	now := time.Now()
	for user, devs := range accounts {
		a, err := st.CreateAccount(ctx, user+"@"+domain, now)
		if err != nil {
			t.Fatal(err)
		}
		st.SetAccountStatus(ctx, a.Name, store.StatusActive)
		for _, d := range devs {
			if _, err := st.CreateDevice(ctx, store.Device{AccountID: a.ID, Name: d, Handle: "h-" + d, Suite: "ec", Serial: d,
				Cert: []byte(user + "@" + domain + "/" + d), SealedOPRF: []byte{1}, NotAfter: now.Add(time.Hour), Status: store.StatusActive, Created: now}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range contacts {
		a, _ := st.Account(ctx, c[0]+"@"+domain)
		if err := st.AddContact(ctx, a.ID, c[1], now); err != nil {
			t.Fatal(err)
		}
	}
	n.svc.Routes(n.mux, func(r *http.Request) (files.Caller, error) {
		id, _ := ident.ParseDevice(r.Header.Get("X-Test-Device"))
		d, err := st.DeviceByName(r.Context(), id.Account.String(), id.Name)
		if err != nil {
			return files.Caller{}, &api.Error{Status: 401, Code: api.CodeCertUnknown, Message: err.Error()}
		}
		return files.Caller{AccountID: d.AccountID, Account: id.Account.String(), DeviceID: d.ID, Device: d.Name, Cert: d.Cert}, nil
	})
	// A peer's node forwards its device's "certificate": here its name.
	n.svc.PeerRoutes(n.mux, func(r *http.Request) (files.Caller, error) {
		id, err := ident.ParseDevice(r.Header.Get("X-Test-Peer-Device"))
		if err != nil || id.Account.Domain == domain {
			return files.Caller{}, &api.Error{Status: 403, Code: api.CodeCertUnknownCA, Message: "not a peer's device"}
		}
		h := sha256.Sum256([]byte(id.String()))
		return files.Caller{AccountID: -1, Account: id.Account.String(), DeviceID: -int64(binary.BigEndian.Uint64(h[:8])>>1) - 1,
			Device: id.Name, Remote: true, Origin: id.Account.Domain}, nil
	})
	return n
}

// link lets from's service reach to; down makes to unreachable.
type link struct {
	to   *fedNode
	down atomic.Bool
}

func (l *link) Known(ctx context.Context, domain string) (bool, error) {
	return domain == l.to.domain, nil
}

func (l *link) Do(ctx context.Context, domain, method, path string, cert []byte, hdr http.Header, body []byte, out any) (http.Header, error) {
	if l.down.Load() || domain != l.to.domain {
		return http.Header{}, errors.New("connect: connection refused")
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(body)).WithContext(ctx)
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("X-Test-Peer-Device", string(cert))
	rec := httptest.NewRecorder()
	l.to.mux.ServeHTTP(rec, req)
	if rec.Code/100 != 2 {
		var eb api.ErrorBody
		if json.Unmarshal(rec.Body.Bytes(), &eb) != nil || eb.Error == nil {
			// The mux's own answer to a path no route matches.
			return rec.Header(), &api.Error{Status: rec.Code, Code: "no_route", Message: rec.Body.String()}
		}
		eb.Error.Status = rec.Code
		return rec.Header(), eb.Error
	}
	if out != nil && rec.Code != http.StatusNoContent {
		return rec.Header(), json.Unmarshal(rec.Body.Bytes(), out)
	}
	return rec.Header(), nil
}

// call makes a device's call on n; a refusal comes back as *api.Error.
func (n *fedNode) call(dev, method, path string, in, out any, hdr ...string) (*httptest.ResponseRecorder, *api.Error) {
	n.t.Helper()
	var body io.Reader = http.NoBody
	if b, ok := in.([]byte); ok {
		body = bytes.NewReader(b)
	} else if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, body)
	req.Header.Set("X-Test-Device", dev)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	n.mux.ServeHTTP(rec, req)
	if rec.Code/100 != 2 {
		var eb api.ErrorBody
		json.Unmarshal(rec.Body.Bytes(), &eb)
		if eb.Error == nil {
			eb.Error = &api.Error{Code: "?"}
		}
		eb.Error.Status = rec.Code
		return rec, eb.Error
	}
	if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			n.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return rec, nil
}

func (n *fedNode) must(ae *api.Error, what string) {
	n.t.Helper()
	if ae != nil {
		n.t.Fatalf("%s: %s (%d): %s", what, ae.Code, ae.Status, ae.Message)
	}
}

func (n *fedNode) outgoing(dev string) []api.OutgoingFile {
	var l api.FileList
	_, ae := n.call(dev, "GET", api.PathFiles, nil, &l)
	n.must(ae, "list")
	return l.Outgoing
}

// send takes and proves a slot of each of rcpt's devices through a's node
// and creates the upload there.
func send(a *fedNode, dev, rcpt string, size int64, secrets slotSecrets) (api.FileCreated, *api.Error) {
	a.t.Helper()
	var taken api.FileSlotTaken
	if _, ae := a.call(dev, "POST", api.PathFileSlotTake, api.FileSlotTake{Recipient: rcpt}, &taken); ae != nil {
		return api.FileCreated{}, ae
	}
	var uses []api.FileSlotUse
	for _, s := range taken.Slots {
		var p api.FileSlotProven
		_, ae := a.call(dev, "POST", api.PathFileSlotProve, api.FileSlotProve{Device: s.Device, SlotID: s.SlotID, Proof: proofFor(s.SlotID, secrets[s.SlotID])}, &p)
		a.must(ae, "prove through the node")
		uses = append(uses, api.FileSlotUse{Device: s.Device, SlotID: s.SlotID, Nonce2: p.Nonce2})
	}
	var fc api.FileCreated
	_, ae := a.call(dev, "POST", api.PathFiles, api.FileCreate{Recipient: rcpt, Size: size, Header: []byte("header"), Slots: uses}, &fc)
	return fc, ae
}

// TestFilesAcrossClusters runs the service of two clusters linked in
// process: slots taken and proven through the sender's node, a file
// forwarded whole and downloaded at the recipient's node, the delivery
// seen by the sender; a file held while the peer is down; refusals of the
// peer (not a contact, its size limit) before any upload, with nothing
// stored on either side.
func TestFilesAcrossClusters(t *testing.T) {
	lim := files.DefaultLimits
	a := newFedNode(t, "a.example", lim, map[string][]string{"alpha": {"a1", "a2"}, "carol": {"c1"}},
		[][2]string{{"alpha", "bravo@b.example"}, {"carol", "bravo@b.example"}})
	blim := lim
	blim.MaxFileSize = 12 << 20
	b := newFedNode(t, "b.example", blim, map[string][]string{"bravo": {"b1"}}, [][2]string{{"bravo", "alpha@a.example"}})
	ab := &link{to: b}
	a.svc.SetPeers(ab)
	b.svc.SetPeers(&link{to: a})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.svc.RunForwards(ctx)

	// bravo's device offers alpha (of a.example) its slots at its own node.
	secrets := slotSecrets{}
	req := api.FileSlotsPut{Contact: "alpha@a.example"}
	for range 4 {
		id, n1 := newSlotID(), random(32)
		secrets[id] = n1
		req.Slots = append(req.Slots, offer(id, n1))
	}
	_, ae := b.call("bravo@b.example/b1", "PUT", api.PathFileSlots, req, nil)
	b.must(ae, "slots for a contact of a peer cluster")

	// An account of a cluster that is no peer.
	if _, ae := send(a, "alpha@a.example/a1", "x@c.example", 10, secrets); ae == nil || ae.Code != api.CodeFederation {
		t.Fatalf("a recipient of an unknown cluster: %+v", ae)
	}
	// carol lists bravo; bravo does not list carol: b refuses the take.
	if _, ae := send(a, "carol@a.example/c1", "bravo@b.example", 10, secrets); ae == nil || ae.Code != api.CodeNotContact || ae.Status != 403 {
		t.Fatalf("carol's take: %+v", ae)
	}
	// Over b's size limit: refused before the upload, nothing kept at a.
	if _, ae := send(a, "alpha@a.example/a1", "bravo@b.example", 16<<20, secrets); ae == nil || ae.Code != api.CodeFileTooLarge {
		t.Fatalf("over b's size limit: %+v", ae)
	}
	if og := a.outgoing("alpha@a.example/a1"); len(og) != 0 {
		t.Fatalf("a refused file is kept at a: %+v", og)
	}

	// A file of three forward chunks and a bit.
	content := random(2*(4<<20) + 4321)
	upload := func(fc api.FileCreated) {
		t.Helper()
		_, ae := a.call("alpha@a.example/a1", "PATCH", api.PathFiles+"/"+fc.ID, content, nil,
			"Content-Type", api.ContentTypeOffset, api.HeaderUploadOffset, "0")
		a.must(ae, "upload")
	}
	fc, ae := send(a, "alpha@a.example/a1", "bravo@b.example", int64(len(content)), secrets)
	a.must(ae, "create")
	if fc.Waiting != "" {
		t.Fatalf("waiting while b is up: %+v", fc)
	}
	upload(fc)
	fetch := func(want string) string {
		t.Helper()
		var in []api.IncomingFile
		waitUntil(t, "the file at bravo", func() bool {
			var l api.FileList
			_, ae := b.call("bravo@b.example/b1", "GET", api.PathFiles, nil, &l)
			b.must(ae, "bravo's list")
			in = l.Incoming
			return len(in) == 1
		})
		if in[0].ID != want || in[0].Sender != "alpha@a.example/a1" || in[0].Size != int64(len(content)) || string(in[0].Header) != "header" {
			t.Fatalf("bravo's incoming file: %+v", in[0])
		}
		rec, ae := b.call("bravo@b.example/b1", "GET", api.PathFiles+"/"+in[0].ID, nil, nil)
		b.must(ae, "download")
		if !bytes.Equal(rec.Body.Bytes(), content) {
			t.Fatalf("downloaded %d bytes, not the %d sent", rec.Body.Len(), len(content))
		}
		_, ae = b.call("bravo@b.example/b1", "POST", api.PathFiles+"/"+in[0].ID+"/ack", nil, nil)
		b.must(ae, "ack")
		return in[0].ID
	}
	fetch(fc.ID)
	// alpha's other device has its copy at a until it takes it.
	og := a.outgoing("alpha@a.example/a1")
	if len(og) != 1 || og[0].State != api.FileComplete || len(og[0].Devices) != 2 || og[0].Devices[0].Delivered ||
		og[0].Devices[1].Device != "bravo@b.example/b1" || !og[0].Devices[1].Delivered {
		t.Fatalf("alpha's view after bravo's ack: %+v", og)
	}
	var l api.FileList
	_, ae = a.call("alpha@a.example/a2", "GET", api.PathFiles, nil, &l)
	a.must(ae, "a2's list")
	if len(l.Incoming) != 1 || l.Incoming[0].Sender != "alpha@a.example/a1" || l.Incoming[0].SlotID != "" {
		t.Fatalf("a2's incoming: %+v", l.Incoming)
	}
	rec, ae := a.call("alpha@a.example/a2", "GET", api.PathFiles+"/"+fc.ID, nil, nil)
	a.must(ae, "a2's download")
	if !bytes.Equal(rec.Body.Bytes(), content) {
		t.Fatal("a2 downloaded other bytes")
	}
	_, ae = a.call("alpha@a.example/a2", "POST", api.PathFiles+"/"+fc.ID+"/ack", nil, nil)
	a.must(ae, "a2's ack")
	if og := a.outgoing("alpha@a.example/a1"); og[0].State != api.FileDelivered || !og[0].Devices[0].Delivered {
		t.Fatalf("alpha's view after every device took it: %+v", og)
	}
	if _, ae := a.call("alpha@a.example/a2", "GET", api.PathFiles+"/"+fc.ID, nil, nil); ae == nil {
		t.Fatal("the content stayed at a after every device took it")
	}

	// b down at the upload's creation: the upload goes on, the file waits
	// at a and is forwarded once b is back.
	ab.down.Store(true)
	var taken api.FileSlotTaken
	if _, ae := a.call("alpha@a.example/a1", "POST", api.PathFileSlotTake, api.FileSlotTake{Recipient: "bravo@b.example"}, &taken); ae == nil || ae.Code != api.CodePeerUnreachable {
		t.Fatalf("a take while b is down: %+v", ae)
	}
	ab.down.Store(false)
	// Take and prove while b is up, then b goes down.
	_, ae = a.call("alpha@a.example/a1", "POST", api.PathFileSlotTake, api.FileSlotTake{Recipient: "bravo@b.example"}, &taken)
	a.must(ae, "take")
	var p api.FileSlotProven
	_, ae = a.call("alpha@a.example/a1", "POST", api.PathFileSlotProve, api.FileSlotProve{Device: taken.Slots[0].Device, SlotID: taken.Slots[0].SlotID,
		Proof: proofFor(taken.Slots[0].SlotID, secrets[taken.Slots[0].SlotID])}, &p)
	a.must(ae, "prove")
	ab.down.Store(true)
	_, ae = a.call("alpha@a.example/a1", "POST", api.PathFiles, api.FileCreate{Recipient: "bravo@b.example", Size: int64(len(content)), Header: []byte("header"),
		Slots: []api.FileSlotUse{{Device: taken.Slots[0].Device, SlotID: taken.Slots[0].SlotID, Nonce2: p.Nonce2}}}, &fc)
	a.must(ae, "create while b is down")
	if fc.Waiting != "b.example" {
		t.Fatalf("created while b is down: %+v", fc)
	}
	upload(fc)
	time.Sleep(300 * time.Millisecond) // a forward attempt fails meanwhile
	for _, o := range a.outgoing("alpha@a.example/a1") {
		if o.ID == fc.ID && (o.Waiting != "b.example" || o.State != api.FileComplete) {
			t.Fatalf("the held file at a: %+v", o)
		}
	}
	ab.down.Store(false)
	fetch(fc.ID)
	waitUntil(t, "alpha sees the held file delivered to bravo", func() bool {
		for _, o := range a.outgoing("alpha@a.example/a1") {
			if o.ID == fc.ID {
				return o.Waiting == "" && len(o.Devices) == 2 && o.Devices[1].Delivered
			}
		}
		return false
	})
	// Refused for good at the forward: b down at the creation, and bravo
	// removes alpha before b takes the file. The sender sees the refusal
	// and a keeps nothing once alpha's other device has its copy.
	_, ae = a.call("alpha@a.example/a1", "POST", api.PathFileSlotTake, api.FileSlotTake{Recipient: "bravo@b.example"}, &taken)
	a.must(ae, "take")
	_, ae = a.call("alpha@a.example/a1", "POST", api.PathFileSlotProve, api.FileSlotProve{Device: taken.Slots[0].Device, SlotID: taken.Slots[0].SlotID,
		Proof: proofFor(taken.Slots[0].SlotID, secrets[taken.Slots[0].SlotID])}, &p)
	a.must(ae, "prove")
	ab.down.Store(true)
	_, ae = a.call("alpha@a.example/a1", "POST", api.PathFiles, api.FileCreate{Recipient: "bravo@b.example", Size: int64(len(content)), Header: []byte("header"),
		Slots: []api.FileSlotUse{{Device: taken.Slots[0].Device, SlotID: taken.Slots[0].SlotID, Nonce2: p.Nonce2}}}, &fc)
	a.must(ae, "create while b is down")
	upload(fc)
	bravo, _ := b.st.Account(ctx, "bravo@b.example")
	if err := b.st.RemoveContact(ctx, bravo.ID, "alpha@a.example"); err != nil {
		t.Fatal(err)
	}
	ab.down.Store(false)
	waitUntil(t, "the refusal at a", func() bool {
		for _, o := range a.outgoing("alpha@a.example/a1") {
			if o.ID == fc.ID {
				return o.Refused == api.CodeNotContact && o.Waiting == ""
			}
		}
		return false
	})
	_, ae = a.call("alpha@a.example/a2", "POST", api.PathFiles+"/"+fc.ID+"/ack", nil, nil)
	a.must(ae, "a2's ack of the refused file")
	if _, ae := a.call("alpha@a.example/a2", "GET", api.PathFiles+"/"+fc.ID, nil, nil); ae == nil {
		t.Fatal("a kept the content of a refused file after alpha's other device took it")
	}

	// A peer's node may not forge an offer for another cluster's device,
	// nor touch a file another device sent.
	if _, err := (&link{to: b}).Do(ctx, "b.example", "PATCH", files.PathPeerFiles+"/"+fc.ID, []byte("bravo@b.example/b1"), nil, []byte("x"), nil); err == nil {
		t.Fatal("b's own device was taken for a peer's")
	}
}

func waitUntil(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// FuzzPeerRequests: whatever a peer's node sends to the file calls for
// peers (take, prove, offer, a chunk, a state query), the answer is an
// answer: a 2xx or a refusal with its code, never a failure of the node
// (500) or a panic.
func FuzzPeerRequests(f *testing.F) {
	b := newFedNode(f, "b.example", files.DefaultLimits, map[string][]string{"bravo": {"b1"}}, [][2]string{{"bravo", "alpha@a.example"}})
	b.svc.SetPeers(&link{to: &fedNode{domain: "a.example", mux: http.NewServeMux()}}) // a.example is a peer
	secrets := slotSecrets{}
	req := api.FileSlotsPut{Contact: "alpha@a.example"}
	for range 4 {
		id, n1 := newSlotID(), random(32)
		secrets[id] = n1
		req.Slots = append(req.Slots, offer(id, n1))
	}
	_, ae := b.call("bravo@b.example/b1", "PUT", api.PathFileSlots, req, nil)
	b.must(ae, "slots")
	slot := req.Slots[0].ID
	prove, _ := json.Marshal(api.FileSlotProve{Device: "bravo@b.example/b1", SlotID: slot, Proof: proofFor(slot, secrets[slot])})
	f.Add(uint8(0), "", []byte(`{"recipient":"bravo@b.example"}`))
	f.Add(uint8(1), "", prove)
	f.Add(uint8(2), "", validOfferFor(slot))
	f.Add(uint8(3), "abcdefgh", []byte("chunk"))
	f.Add(uint8(4), "abcdefgh", []byte(nil))
	f.Add(uint8(0), "", []byte(`{"recipient":"nobody"}`))
	f.Add(uint8(2), "", []byte(`{"origin_id":"x","size":-1}`))
	paths := []string{files.PathPeerSlotTake, files.PathPeerSlotProve, files.PathPeerFiles, files.PathPeerFiles + "/", files.PathPeerFiles + "/"}
	methods := []string{"POST", "POST", "POST", "PATCH", "GET"}
	f.Fuzz(func(t *testing.T, which uint8, id string, body []byte) {
		i := int(which) % len(paths)
		path := paths[i]
		if i >= 3 {
			path += url.PathEscape(id)
		}
		hdr := http.Header{}
		hdr.Set("Content-Type", api.ContentTypeOffset)
		hdr.Set(api.HeaderUploadOffset, "0")
		_, err := (&link{to: b}).Do(context.Background(), "b.example", methods[i], path, []byte("alpha@a.example/a1"), hdr, body, nil)
		var ae *api.Error
		if err != nil && (!errors.As(err, &ae) || ae.Status >= 500 && ae.Code != api.CodeStorageFull) {
			t.Fatalf("%s %s %q: %v", methods[i], path, body, err)
		}
	})
}

func validOfferFor(slot string) []byte {
	b, _ := json.Marshal(files.Offer{OriginID: "abcdefgh", FileCreate: api.FileCreate{Recipient: "bravo@b.example", Size: 100, Header: []byte("h"),
		Slots: []api.FileSlotUse{{Device: "bravo@b.example/b1", SlotID: slot, Nonce2: bytes.Repeat([]byte{1}, api.Nonce2Size)}}}})
	return b
}
