package sipua

import (
	"testing"
	"time"
)

func TestBudgetBitrate(t *testing.T) {
	for _, tt := range []struct {
		ptime time.Duration
		want  int
	}{
		{20 * time.Millisecond, 8000},
		{40 * time.Millisecond, 11000},
		{60 * time.Millisecond, 17000},
		{80 * time.Millisecond, 18000},
		{100 * time.Millisecond, 20000},
		{DefaultPTime, DefaultOpusBitrate},
	} {
		if got := BudgetBitrate(tt.ptime); got != tt.want {
			t.Errorf("BudgetBitrate(%v) = %d, want %d", tt.ptime, got, tt.want)
		}
	}
}
