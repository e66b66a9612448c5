package ice_test

import (
	"context"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/ice"
	"github.com/phonex/phonex/internal/ice/iceturn"
)

// BenchmarkSetup measures what ICE adds to a call's setup on loopback:
// gathering on both sides, then the checks until both have a selected pair.
func BenchmarkSetup(b *testing.B) {
	srv, err := iceturn.Start("127.0.0.1:0", "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	servers, err := srv.Servers("alpha")
	if err != nil {
		b.Fatal(err)
	}
	for _, bb := range []struct {
		name   string
		caller ice.Config
	}{
		{"host", ice.Config{IP: loopback}},
		{"relay", ice.Config{IP: loopback, Servers: servers, RelayOnly: true}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				setupOnce(b, bb.caller, ice.Config{IP: loopback})
			}
		})
	}
}

func setupOnce(b *testing.B, offerer, answerer ice.Config) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := ice.New(offerer)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	c, err := ice.New(answerer)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	pa, _, err := a.Gather(ctx)
	if err != nil {
		b.Fatal(err)
	}
	pc, _, err := c.Gather(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.SetRemote(pa); err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Connect(ctx, pa, false)
		done <- err
	}()
	if _, err := a.Connect(ctx, pc, true); err != nil {
		b.Fatal(err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
