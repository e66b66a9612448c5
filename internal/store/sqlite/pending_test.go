package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store"
)

// TestPendingPathsAgree: whichever path Pending takes (every copy read in
// one range and put into turns here, or a backlog past the limit picked by
// the turn-taking query), it returns what the turn-taking query returns,
// for backlogs below, at and above the limit, from one to several senders.
func TestPendingPathsAgree(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 40; round++ {
		r := device(t, db, fmt.Sprintf("rcpt%d@x.org", round), "r1")
		tg := []store.Target{{DeviceID: r.ID, AccountID: r.AccountID}}
		n, senders := rng.IntN(12), 1+rng.IntN(4)
		for i := 0; i < n; i++ {
			s := fmt.Sprintf("s%d@x.org", rng.IntN(senders))
			if _, err := db.EnqueueMessage(ctx, store.Message{Sender: s, SenderDevice: "d", Recipient: "r", ContentType: "t",
				Body: []byte(fmt.Sprint(i)), Created: time.Now()}, tg, 0); err != nil {
				t.Fatal(err)
			}
		}
		for limit := 1; limit <= 12; limit++ {
			got, err := db.Pending(ctx, r.ID, limit)
			if err != nil {
				t.Fatal(err)
			}
			want, err := db.pendingTurns(ctx, r.ID, limit)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(seqs(got)) != fmt.Sprint(seqs(want)) {
				t.Fatalf("%d copies from %d senders, limit %d: %v, want %v", n, senders, limit, seqs(got), seqs(want))
			}
			for i := range got {
				if string(got[i].Body) != string(want[i].Body) || got[i].Sender != want[i].Sender || !got[i].Created.Equal(want[i].Created) {
					t.Fatalf("copy %d differs: %+v, want %+v", i, got[i], want[i])
				}
			}
		}
	}
}

func seqs(ds []store.Delivery) []int64 {
	var out []int64
	for _, d := range ds {
		out = append(out, d.Seq)
	}
	return out
}

// BenchmarkPendingFew reads a device's copies when few wait (2 senders, 3
// copies), as a connected device's delivery run does under load.
func BenchmarkPendingFew(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, b.TempDir()+"/b.db")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	r := device(b, db, "rcpt@x.org", "r1")
	tg := []store.Target{{DeviceID: r.ID, AccountID: r.AccountID}}
	for i := 0; i < 3; i++ {
		if _, err := db.EnqueueMessage(ctx, store.Message{Sender: fmt.Sprintf("s%d@x.org", i%2), SenderDevice: "d", Recipient: "rcpt@x.org",
			ContentType: "t", Body: make([]byte, 600), Created: time.Now()}, tg, 0); err != nil {
			b.Fatal(err)
		}
	}
	for _, path := range []struct {
		name string
		f    func(context.Context, int64, int) ([]store.Delivery, error)
	}{{"Pending", db.Pending}, {"turns-query", db.pendingTurns}} {
		b.Run(path.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if ds, err := path.f(ctx, r.ID, 64); err != nil || len(ds) != 3 {
					b.Fatal(len(ds), err)
				}
			}
		})
	}
}
