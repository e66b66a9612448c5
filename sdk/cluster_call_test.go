package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"testing"
	"time"

	"github.com/phonex/phonex/sdk"
)

// Calls through the cluster: lima calls mike by address; mike's device
// registered with Answer rings and answers. The cluster checks that they
// are mutual contacts before anything rings.
func ExampleDevice_Call() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lima, mike := enrolled("lima@example.org", "laptop"), enrolled("mike@example.org", "phone")
	defer lima.Close()
	defer mike.Close()
	for _, c := range []struct {
		d    *sdk.Device
		whom string
	}{{lima, "mike@example.org"}, {mike, "lima@example.org"}} {
		if _, err := c.d.AddContact(ctx, c.whom); err != nil {
			log.Fatal(err)
		}
	}
	sas := make(chan string, 2)
	listening := make(chan struct{})
	onEvent := func(e sdk.CallEvent) {
		switch e.Type {
		case sdk.CallSecure:
			sas <- e.Secure.SAS
		case sdk.CallListening:
			close(listening)
		}
	}
	answered := make(chan *sdk.Call, 1)
	go func() {
		c, err := mike.Answer(ctx, sdk.CallOptions{OnEvent: onEvent})
		if err != nil {
			log.Fatal(err)
		}
		answered <- c
	}()
	<-listening // mike's device is registered
	call, err := lima.Call(ctx, "mike@example.org", sdk.CallOptions{OnEvent: onEvent})
	if err != nil {
		log.Fatal(err)
	}
	in := <-answered
	a, b := <-sas, <-sas
	fmt.Println("same SAS on both sides:", a == b)
	if err := call.Hangup(ctx); err != nil {
		log.Fatal(err)
	}
	if err := in.Wait(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("ended")

	// Nobody of mike's is registered any more.
	_, err = lima.Call(ctx, "mike@example.org", sdk.CallOptions{})
	fmt.Println("offline:", errors.Is(err, sdk.ErrOffline), sdk.CallCause(err))
	// Output:
	// same SAS on both sides: true
	// ended
	// offline: true offline
}

func TestCallNotContactAndDeclined(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	november, oscar := enrolled("november@example.org", "laptop"), enrolled("oscar@example.org", "phone")
	defer november.Close()
	defer oscar.Close()
	// Only november lists oscar: not mutual, refused before anything rings.
	if _, err := november.AddContact(ctx, "oscar@example.org"); err != nil {
		t.Fatal(err)
	}
	_, err := november.Call(ctx, "oscar@example.org", sdk.CallOptions{})
	if !errors.Is(err, sdk.ErrNotContact) || sdk.CallCause(err) != "not_contact" {
		t.Fatalf("call to a non-contact: %v", err)
	}
	if _, err := oscar.AddContact(ctx, "november@example.org"); err != nil {
		t.Fatal(err)
	}
	declined := make(chan string, 1)
	go func() {
		who, err := oscar.Decline(ctx)
		if err != nil {
			t.Error(err)
		}
		declined <- who
	}()
	// Decline registers first; retry while oscar is still offline.
	for {
		_, err = november.Call(ctx, "oscar@example.org", sdk.CallOptions{})
		if !errors.Is(err, sdk.ErrOffline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !errors.Is(err, sdk.ErrDeclined) || fmt.Sprint(err) != "oscar@example.org declined the call" {
		t.Fatalf("declined call: %v", err)
	}
	if who := <-declined; who != "november@example.org/laptop" {
		t.Errorf("oscar saw the call from %q", who)
	}
}

// TestCallHoldThroughCluster: a re-INVITE (hold, resume) and the callee's
// BYE go through the cluster like the INVITE.
func TestCallHoldThroughCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	papa, quebec := enrolled("papa@example.org", "laptop"), enrolled("quebec@example.org", "phone")
	defer papa.Close()
	defer quebec.Close()
	for _, c := range []struct {
		d    *sdk.Device
		whom string
	}{{papa, "quebec@example.org"}, {quebec, "papa@example.org"}} {
		if _, err := c.d.AddContact(ctx, c.whom); err != nil {
			t.Fatal(err)
		}
	}
	listening := make(chan struct{})
	events := make(chan sdk.CallEventType, 32)
	answered := make(chan *sdk.Call, 1)
	go func() {
		c, err := quebec.Answer(ctx, sdk.CallOptions{OnEvent: func(e sdk.CallEvent) {
			if e.Type == sdk.CallListening {
				close(listening)
			}
			events <- e.Type
		}})
		if err != nil {
			t.Error(err)
		}
		answered <- c
	}()
	<-listening
	secure := make(chan struct{}, 1)
	call, err := papa.Call(ctx, "quebec@example.org", sdk.CallOptions{OnEvent: func(e sdk.CallEvent) {
		if e.Type == sdk.CallSecure {
			secure <- struct{}{}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	in := <-answered
	if in == nil {
		t.FailNow()
	}
	<-secure
	waitEvent := func(want sdk.CallEventType) {
		t.Helper()
		for {
			select {
			case e := <-events:
				if e == want {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no %s event at the callee", want)
			}
		}
	}
	if err := call.Hold(ctx, true); err != nil {
		t.Fatalf("hold through the cluster: %v", err)
	}
	waitEvent(sdk.CallHold)
	if err := call.Hold(ctx, false); err != nil {
		t.Fatalf("resume through the cluster: %v", err)
	}
	waitEvent(sdk.CallResume)
	// The callee hangs up: its BYE reaches the caller through the cluster.
	if err := in.Hangup(ctx); err != nil {
		t.Fatalf("callee's hangup: %v", err)
	}
	if err := call.Wait(ctx); err != nil {
		t.Fatalf("the caller's call did not end cleanly: %v", err)
	}
}
