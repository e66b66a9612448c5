// Command federation measures message latency across two clusters against
// one: alpha@a sends to bravo@b (through a's node, its queue, the node
// link and b's node) and to charlie@a (through a's node alone), turn and
// turn about in one run, each time from the start of Send until the
// recipient's device has decrypted it. bench/federation.sh sets up the
// clusters, the accounts and the contacts, and runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/phonex/phonex/sdk"
)

func main() {
	alpha := flag.String("alpha", "", "alpha@a's profile")
	bravo := flag.String("bravo", "", "bravo@b's profile")
	charlie := flag.String("charlie", "", "charlie@a's profile")
	pwFile := flag.String("password-file", "", "the profiles' password")
	rounds := flag.Int("rounds", 50, "messages to each recipient")
	flag.Parse()
	if err := run(*alpha, *bravo, *charlie, *pwFile, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "federation:", err)
		os.Exit(1)
	}
}

type recipient struct {
	name string // what the rows call it
	user string
	dev  *sdk.Device
	got  chan string
	lat  []time.Duration
}

func run(alphaDir, bravoDir, charlieDir, pwFile string, rounds int) error {
	pw, err := os.ReadFile(pwFile)
	if err != nil {
		return err
	}
	pw = []byte(strings.TrimRight(string(pw), "\r\n"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func(dir string) (*sdk.Device, error) { return sdk.Open(ctx, dir, pw, nil) }
	sender, err := open(alphaDir)
	if err != nil {
		return err
	}
	defer sender.Close()
	rs := []*recipient{{name: "two clusters (alpha@a → bravo@b)", user: "bravo@b.bench"}, {name: "one cluster (alpha@a → charlie@a)", user: "charlie@a.bench"}}
	for i, dir := range []string{bravoDir, charlieDir} {
		d, err := open(dir)
		if err != nil {
			return err
		}
		defer d.Close()
		r := rs[i]
		r.dev, r.got = d, make(chan string, 16)
		ready := make(chan struct{})
		go d.Listen(ctx, func(e sdk.Event) {
			switch e.Type {
			case sdk.EventReady:
				close(ready)
			case sdk.EventMessage:
				if !e.Outgoing {
					r.got <- e.Text
				}
			}
		})
		select {
		case <-ready:
		case <-time.After(30 * time.Second):
			return fmt.Errorf("%s not registered", r.user)
		}
	}
	send := func(r *recipient, text string) (time.Duration, error) {
		start := time.Now()
		if _, err := sender.Send(ctx, r.user, text); err != nil {
			return 0, fmt.Errorf("send to %s: %w", r.user, err)
		}
		for {
			select {
			case t := <-r.got:
				if t == text {
					return time.Since(start), nil
				}
			case <-time.After(30 * time.Second):
				return 0, fmt.Errorf("%s did not get %q", r.user, text)
			}
		}
	}
	// Sessions and connections first: the rounds measure steady state.
	for _, r := range rs {
		for i := range 3 {
			if _, err := send(r, fmt.Sprintf("warm-up %d", i)); err != nil {
				return err
			}
		}
	}
	for i := range rounds {
		for _, r := range rs {
			d, err := send(r, fmt.Sprintf("round %d", i))
			if err != nil {
				return err
			}
			r.lat = append(r.lat, d)
		}
	}
	fmt.Println("| path | messages | median | p90 | max |")
	fmt.Println("|---|---|---|---|---|")
	med := map[string]time.Duration{}
	for _, r := range rs {
		s := append([]time.Duration(nil), r.lat...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		m := s[len(s)/2]
		med[r.user] = m
		fmt.Printf("| %s | %d | %s | %s | %s |\n", r.name, len(s), ms(m), ms(s[len(s)*9/10]), ms(s[len(s)-1]))
	}
	fmt.Printf("\nratio of medians, two clusters / one: %.2f\n", float64(med["bravo@b.bench"])/float64(med["charlie@a.bench"]))
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
