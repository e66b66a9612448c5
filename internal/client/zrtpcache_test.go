package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/sipua"
	"github.com/phonex/phonex/internal/zrtp"
)

func testDB(t *testing.T, path string, key []byte) *localDB {
	t.Helper()
	db, err := openLocalDB(context.Background(), path, key)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestZRTPStoreEncrypted: the ZID and the retained secrets live in the
// encrypted database, survive reopening, and do not appear in the file;
// each database has its own ZID.
func TestZRTPStoreEncrypted(t *testing.T) {
	dir := t.TempDir()
	key := make([]byte, 32)
	rand.Read(key)
	path := filepath.Join(dir, DBFile)
	db := testDB(t, path, key)
	s := zrtpStore{db}
	zid, err := s.ZID()
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := s.ZID(); again != zid {
		t.Fatalf("ZID changed: %s then %s", zid, again)
	}
	var peer zrtp.ZID
	rand.Read(peer[:])
	rs1 := make([]byte, 32)
	rand.Read(rs1)
	rec := sipua.PeerRecord{RS1: rs1, Verified: true, Last: sipua.LastCall{Peer: "sip:bob@127.0.0.1:5070", SAS: "abcd", At: time.Now().UTC()}}
	if err := s.PutPeer(peer, rec); err != nil {
		t.Fatal(err)
	}
	db.close()

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range [][]byte{rs1, zid[:], peer[:], []byte(hex.EncodeToString(peer[:])), []byte("sip:bob")} {
		if bytes.Contains(raw, secret) {
			t.Fatalf("%x is in the database file in the clear", secret)
		}
	}

	s = zrtpStore{testDB(t, path, key)}
	defer s.db.close()
	if z, _ := s.ZID(); z != zid {
		t.Fatalf("ZID after reopening %s, want %s", z, zid)
	}
	got, ok, err := s.Peer(peer)
	if err != nil || !ok || !bytes.Equal(got.RS1, rs1) || !got.Verified || got.Last.SAS != "abcd" {
		t.Fatalf("peer after reopening: %+v %v %v", got, ok, err)
	}
	z, r, err := sipua.FindPeer(s, "bob@127.0.0.1:5070")
	if err != nil || z != peer || !bytes.Equal(r.RS1, rs1) {
		t.Fatalf("find by address: %s %v", z, err)
	}

	other := zrtpStore{testDB(t, filepath.Join(dir, "other.db"), key)}
	defer other.db.close()
	if oz, _ := other.ZID(); oz == zid {
		t.Fatal("two profiles have the same ZID")
	}
}
