package sqlite

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store"
)

// BenchmarkDelivered forgets delivered copies one at a time (each its own
// commit), as the proxy does, while another device has a backlog of
// copies waiting: the cost of a forget must not grow with that backlog.
func BenchmarkDelivered(b *testing.B) {
	for _, backlog := range []int{0, 10000} {
		b.Run(fmt.Sprintf("backlog=%d", backlog), func(b *testing.B) { benchDelivered(b, backlog) })
	}
}

func benchDelivered(b *testing.B, backlog int) {
	ctx := context.Background()
	db, err := Open(ctx, b.TempDir()+"/b.db")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	off := device(b, db, "offline@x.org", "o1")
	on := device(b, db, "online@x.org", "n1")
	put := func(d store.Device, n int) []int64 {
		var seqs []int64
		for i := 0; i < n; i++ {
			if _, err := db.EnqueueMessage(ctx, store.Message{Sender: fmt.Sprintf("s%d@x.org", i%10), SenderDevice: "d", Recipient: d.Account,
				ContentType: "t", Body: make([]byte, 200), Created: time.Now()}, []store.Target{{DeviceID: d.ID, AccountID: d.AccountID}}, 0); err != nil {
				b.Fatal(err)
			}
		}
		ds, err := db.Pending(ctx, d.ID, n)
		if err != nil {
			b.Fatal(err)
		}
		for _, d := range ds {
			seqs = append(seqs, d.Seq)
		}
		return seqs
	}
	put(off, backlog)
	seqs := put(on, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for _, s := range seqs {
		if err := db.Delivered(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDeliveredForgetsMessage: the message body goes with its last copy,
// not before.
func TestDeliveredForgetsMessage(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	r1 := device(t, db, "rcpt@x.org", "r1")
	r2 := device(t, db, "rcpt@x.org", "r2")
	id, err := db.EnqueueMessage(ctx, store.Message{Sender: "s@x.org", SenderDevice: "d", Recipient: "rcpt@x.org", ContentType: "t",
		Body: []byte("x"), Created: time.Now()}, []store.Target{{DeviceID: r1.ID, AccountID: r1.AccountID}, {DeviceID: r2.ID, AccountID: r2.AccountID}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	bodies := func() int {
		var n int
		if err := db.db.QueryRow(`SELECT COUNT(*) FROM messages WHERE id=?`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i, d := range []store.Device{r1, r2} {
		ds, err := db.Pending(ctx, d.ID, 10)
		if err != nil || len(ds) != 1 {
			t.Fatal(len(ds), err)
		}
		if err := db.Delivered(ctx, ds[0].Seq); err != nil {
			t.Fatal(err)
		}
		if err := db.Delivered(ctx, ds[0].Seq); err != nil {
			t.Fatalf("delivered twice: %v", err)
		}
		if got, want := bodies(), 1-i; got != want {
			t.Fatalf("after %d of 2 copies: %d bodies stored, want %d", i+1, got, want)
		}
	}
}

// BenchmarkEnqueueConcurrent stores messages from 64 concurrent senders,
// so that the group commit batches them, as under load: the cost of the
// statements per message more than of the fsync per batch.
func BenchmarkEnqueueConcurrent(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, b.TempDir()+"/b.db")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	r := device(b, db, "rcpt@x.org", "r1")
	tg := []store.Target{{DeviceID: r.ID, AccountID: r.AccountID}}
	body := make([]byte, 600)
	b.ReportAllocs()
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := db.EnqueueMessage(ctx, store.Message{Sender: "s@x.org", SenderDevice: "d", Recipient: "rcpt@x.org", ContentType: "t",
				Body: body, Created: time.Now()}, tg, 1<<40); err != nil {
				b.Fatal(err)
			}
		}
	})
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano()
	b.ReportMetric(float64(cpu)/1e3/float64(b.N), "cpu-µs/op")
}
