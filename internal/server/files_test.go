package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/client"
	"github.com/phonex/phonex/internal/filecrypt"
	"github.com/phonex/phonex/internal/server"
)

// deviceClient calls the node's API with a profile's certificate.
func deviceClient(t *testing.T, n *node, p *client.Profile) func(method, path string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
	pool := x509.NewCertPool()
	pool.AddCert(p.CA)
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1",
		Certificates: []tls.Certificate{{Certificate: [][]byte{p.Cert.Raw}, PrivateKey: p.Keys.Sign}}}}}
	return func(method, path string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, "https://"+n.addr+path, body)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		data, _ := io.ReadAll(res.Body)
		return res, data
	}
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

// The file service composed into the node, with enrolled devices on
// mutual TLS: a slot from bravo, taken, proven and used by alpha, the
// ciphertext uploaded, downloaded and acknowledged; the node's data
// directory holds the uploaded bytes only while someone still needs them.
func TestNodeFiles(t *testing.T) {
	n := startNode(t, nil)
	alpha := n.enroll(t, "alpha@example.org", "a1", "alpha password")
	bravo := n.enroll(t, "bravo@example.org", "b1", "bravo password")
	ctx := context.Background()
	if _, err := alpha.AddContact(ctx, "bravo@example.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := bravo.AddContact(ctx, "alpha@example.org"); err != nil {
		t.Fatal(err)
	}
	a, b := deviceClient(t, n, alpha), deviceClient(t, n, bravo)
	okJSON := func(res *http.Response, data []byte, v any) {
		t.Helper()
		if res.StatusCode != 200 {
			t.Fatalf("%s %s: %s %s", res.Request.Method, res.Request.URL.Path, res.Status, data)
		}
		if v != nil {
			if err := json.Unmarshal(data, v); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Without a certificate the service answers like every device call.
	res, err := n.hc.Get("https://" + n.addr + api.PathFiles)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no certificate: %s", res.Status)
	}

	var sid filecrypt.SlotID
	nonce1, nonce2 := make([]byte, 32), make([]byte, 32)
	rand.Read(sid[:])
	rand.Read(nonce1)
	rand.Read(nonce2)
	slotID := hex.EncodeToString(sid[:])
	proofHash := filecrypt.SlotProofHash(sid, filecrypt.ProveSlot(sid, nonce1))
	res, data := b("PUT", api.PathFileSlots, jsonBody(api.FileSlotsPut{Contact: "alpha@example.org",
		Slots: []api.FileSlot{{ID: slotID, Sealed: []byte("sealed half-key"), ProofHash: proofHash[:], Nonce2: nonce2}}}), nil)
	okJSON(res, data, nil)

	var taken api.FileSlotTaken
	res, data = a("POST", api.PathFileSlotTake, jsonBody(api.FileSlotTake{Recipient: "bravo@example.org"}), nil)
	okJSON(res, data, &taken)
	if len(taken.Slots) != 1 || string(taken.Slots[0].Sealed) != "sealed half-key" {
		t.Fatalf("taken: %+v", taken)
	}
	var proven api.FileSlotProven
	res, data = a("POST", api.PathFileSlotProve, jsonBody(api.FileSlotProve{Device: "bravo@example.org/b1", SlotID: slotID, Proof: filecrypt.ProveSlot(sid, nonce1)}), nil)
	okJSON(res, data, &proven)
	if !bytes.Equal(proven.Nonce2, nonce2) {
		t.Fatal("the node handed out another second nonce than the recipient's")
	}

	content := make([]byte, 200_000)
	rand.Read(content)
	var fc api.FileCreated
	res, data = a("POST", api.PathFiles, jsonBody(api.FileCreate{Recipient: "bravo@example.org", Size: int64(len(content)), Header: []byte("hdr"),
		Slots: []api.FileSlotUse{{Device: "bravo@example.org/b1", SlotID: slotID, Nonce2: proven.Nonce2}}}), nil)
	okJSON(res, data, &fc)
	res, data = a("PATCH", api.PathFiles+"/"+fc.ID, bytes.NewReader(content),
		map[string]string{"Content-Type": api.ContentTypeOffset, api.HeaderUploadOffset: "0"})
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("upload: %s %s", res.Status, data)
	}
	dir := filepath.Join(n.cfg.DataDir, server.FilesDir)
	if got, _ := os.ReadFile(filepath.Join(dir, fc.ID)); !bytes.Equal(got, content) {
		t.Fatal("the data directory does not hold the uploaded ciphertext")
	}

	var list api.FileList
	res, data = b("GET", api.PathFiles, nil, nil)
	okJSON(res, data, &list)
	if len(list.Incoming) != 1 || list.Incoming[0].Sender != "alpha@example.org/a1" || !bytes.Equal(list.Incoming[0].Nonce2, proven.Nonce2) {
		t.Fatalf("incoming: %+v", list.Incoming)
	}
	res, data = b("GET", api.PathFiles+"/"+fc.ID, nil, map[string]string{"Range": fmt.Sprintf("bytes=%d-", 150_000)})
	if res.StatusCode != http.StatusPartialContent || !bytes.Equal(data, content[150_000:]) {
		t.Fatalf("range download: %s, %d bytes", res.Status, len(data))
	}
	res, data = b("POST", api.PathFiles+"/"+fc.ID+"/ack", nil, nil)
	okJSON(res, data, nil)
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Fatalf("data directory after delivery: %v", ents)
	}
	res, data = a("GET", api.PathFiles, nil, nil)
	okJSON(res, data, &list)
	if len(list.Outgoing) != 1 || list.Outgoing[0].State != api.FileDelivered || !list.Outgoing[0].Devices[0].Delivered {
		t.Fatalf("outgoing: %+v", list.Outgoing)
	}
}
