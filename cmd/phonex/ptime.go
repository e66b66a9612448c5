package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ptimeValue is the --ptime flag: a packet time as SDP writes it, a
// number of milliseconds ("40", RFC 4566 §6), or as a duration ("40ms").
type ptimeValue time.Duration

func (p *ptimeValue) String() string { return time.Duration(*p).String() }

func (p *ptimeValue) Set(s string) error {
	s = strings.TrimSpace(s)
	if ms, err := strconv.Atoi(s); err == nil {
		if ms <= 0 {
			return fmt.Errorf("packet time %q: want a positive number of milliseconds", s)
		}
		*p = ptimeValue(time.Duration(ms) * time.Millisecond)
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("packet time %q: want milliseconds, as 40 or 40ms", s)
	}
	*p = ptimeValue(d)
	return nil
}
