package operator_test

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkEffective is the policy lookup the SIP proxy makes for every
// MESSAGE, from the cache (an override exists, so accounts are resolved
// and cached; the generation is read once per poll interval).
func BenchmarkEffective(b *testing.B) {
	s, _, _ := fixture(b)
	ctx := context.Background()
	if err := s.SetPolicy(ctx, actor, "alpha@example.org", "", "message_rate", "5"); err != nil {
		b.Fatal(err)
	}
	names := make([]string, 64)
	for i := range names {
		names[i] = fmt.Sprintf("u%d@example.org", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Effective(ctx, names[i%len(names)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
