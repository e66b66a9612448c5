package federation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store"
)

// TestQueue: a peer that does not answer, then defers, then takes the
// messages gets every one once, in queue order; a message it refuses for
// good is dropped; nothing is forgotten before the peer's final answer.
func TestQueue(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := openStore(t)
	b := newTestCA(t, "b.example")
	pin(t, st, "b.example", b)
	var mu sync.Mutex
	var got []string
	calls := 0
	q := &Queue{St: st, Log: slog.New(slog.DiscardHandler), Send: func(ctx context.Context, p store.Peer, o store.Outbound) (int, string, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		switch {
		case calls == 1:
			return 0, "", errors.New("connection refused")
		case calls == 2:
			return 503, "Service Unavailable", nil
		case string(o.Body) == "refused":
			return 403, "Forbidden", nil
		}
		got = append(got, string(o.Body))
		return 200, "OK", nil
	}}
	var want []string
	for i := range 5 {
		body := fmt.Sprintf("m%d", i)
		if i == 2 {
			body = "refused"
		} else {
			want = append(want, body)
		}
		if _, err := st.QueueOutbound(ctx, store.Outbound{Domain: "b.example", SenderCert: []byte{1}, Message: store.Message{
			Sender: "alpha@a.example", SenderDevice: "a1", Recipient: "bravo@b.example", ContentType: "text/plain", Body: []byte(body), Created: time.Now()}}, 0); err != nil {
			t.Fatal(err)
		}
	}
	q.Start(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := st.Peer(ctx, "b.example")
		if err != nil {
			t.Fatal(err)
		}
		if p.Queued == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still queued: %d", p.Queued)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("peer got %q, want %q", got, want)
	}
}

func TestFinal(t *testing.T) {
	for code, want := range map[int]bool{100: false, 200: true, 202: true, 403: true, 404: true, 408: false, 480: false, 500: false, 501: true, 503: false, 513: true, 603: true} {
		if Final(code) != want {
			t.Errorf("Final(%d) = %v", code, !want)
		}
	}
}

// TestQueueTwoNodes: two nodes on one store drain one domain's queue: each
// message is sent once, in queue order, by whichever holds the lease.
func TestQueueTwoNodes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := openStore(t)
	b := newTestCA(t, "b.example")
	pin(t, st, "b.example", b)
	var mu sync.Mutex
	var got []string
	send := func(ctx context.Context, p store.Peer, o store.Outbound) (int, string, error) {
		mu.Lock()
		got = append(got, string(o.Body))
		mu.Unlock()
		time.Sleep(time.Millisecond)
		return 200, "OK", nil
	}
	var want []string
	for i := range 40 {
		body := fmt.Sprintf("m%02d", i)
		want = append(want, body)
		if _, err := st.QueueOutbound(ctx, store.Outbound{Domain: "b.example", SenderCert: []byte{1}, Message: store.Message{
			Sender: "alpha@a.example", SenderDevice: "a1", Recipient: "bravo@b.example", ContentType: "text/plain", Body: []byte(body), Created: time.Now()}}, 0); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		q := &Queue{St: st, Log: slog.New(slog.DiscardHandler), Send: send}
		q.Start(ctx)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := st.Peer(ctx, "b.example")
		if err != nil {
			t.Fatal(err)
		}
		if p.Queued == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still queued: %d", p.Queued)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("sent %q, want %q once each in order", got, want)
	}
}
