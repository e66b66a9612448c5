package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store"
)

// BenchmarkRelay measures what a relayed MESSAGE costs the store: the copy
// stored with the quota and routing checks, read back by the recipient's
// device and acknowledged, from 16 senders at once (each its own
// recipient), as the proxy does under load.
func BenchmarkRelay(b *testing.B, st store.Store) {
	ctx := context.Background()
	const pairs = 16
	var rcpts []store.Device
	for i := 0; i < pairs; i++ {
		rcpts = append(rcpts, device(b, st, fmt.Sprintf("r%d@x.org", i), "d"))
	}
	gen, err := st.RoutingGeneration(ctx)
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 600)
	var next atomic.Int32
	b.SetParallelism(pairs / 2) // GOMAXPROCS × this many goroutines
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rcpts[int(next.Add(1)-1)%pairs]
		tg := []store.Target{{DeviceID: r.ID, AccountID: r.AccountID}}
		for pb.Next() {
			m := store.Message{Sender: "s@x.org", SenderDevice: "d", Recipient: r.Account, ContentType: "t", Body: body, Created: time.Now(), RouteGeneration: gen}
			if _, err := st.EnqueueMessage(ctx, m, tg, 1<<40); err != nil {
				b.Error(err)
				return
			}
			ds, err := st.Pending(ctx, r.ID, 64)
			if err != nil {
				b.Error(err)
				return
			}
			for _, d := range ds {
				if err := st.Delivered(ctx, d.Seq); err != nil {
					b.Error(err)
					return
				}
			}
		}
	})
}
