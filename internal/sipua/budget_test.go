package sipua

import (
	"testing"
	"time"

	"github.com/phonex/phonex/internal/zrtp"
)

func TestBudgetBitrate(t *testing.T) {
	for _, tt := range []struct {
		ptime time.Duration
		tag   zrtp.Algo
		want  int
	}{
		{20 * time.Millisecond, zrtp.HS32, 8000},
		{40 * time.Millisecond, zrtp.HS32, 12500},
		{40 * time.Millisecond, zrtp.HS80, 11500},
		{60 * time.Millisecond, zrtp.HS32, 17500},
		{80 * time.Millisecond, zrtp.HS32, 19000},
		{100 * time.Millisecond, zrtp.HS32, 20000},
		{100 * time.Millisecond, zrtp.HS80, 19500},
		{DefaultPTime, zrtp.HS32, DefaultOpusBitrate},
		{DefaultPTime, zrtp.HS80, 21500},
	} {
		if got := BudgetBitrate(tt.ptime, tt.tag); got != tt.want {
			t.Errorf("BudgetBitrate(%v, %s) = %d, want %d", tt.ptime, tt.tag, got, tt.want)
		}
	}
}
