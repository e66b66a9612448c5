package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"path/filepath"
	"time"

	"github.com/phonex/phonex/sdk"
)

// Enroll the first device of an account with the activation code the
// operator gave ('phonexd user add'), pinning the cluster's CA.
func ExampleEnroll() {
	ctx := context.Background()
	dev, err := sdk.Enroll(ctx, sdk.EnrollConfig{
		Dir:      filepath.Join(tmp, "alpha-laptop"),
		User:     "alpha@example.org",
		Device:   "laptop",
		Server:   nodeAddr,   // the cluster's API, host:port
		CAFile:   nodeCAFile, // or CAFingerprint: the CA's SHA-256
		Code:     activationCode("alpha@example.org"),
		Password: []byte("correct horse battery"),
	}, &sdk.Options{KDF: fastKDF})
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()
	info, err := dev.Whoami(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Identity, info.Suite)
	// Output: alpha@example.org/laptop ec
}

// Open an enrolled profile; a wrong password is an error callers can branch
// on, and the cluster counts it.
func ExampleOpen() {
	ctx := context.Background()
	dev := enrolled("charlie@example.org", "phone")
	dir := dev.Dir()
	dev.Close()

	_, err := sdk.Open(ctx, dir, []byte("not the password"), nil)
	var wp *sdk.WrongPasswordError
	if errors.Is(err, sdk.ErrWrongPassword) && errors.As(err, &wp) {
		fmt.Println("wrong password; attempts before lock-out:", wp.Remaining > 0)
	}
	dev, err = sdk.Open(ctx, dir, []byte("password of charlie@example.org"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()
	fmt.Println("opened", dev.Identity())
	// Output:
	// wrong password; attempts before lock-out: true
	// opened charlie@example.org/phone
}

// Send a message to a contact. The recipient must have added the sender to
// their contacts, or the cluster refuses it with ErrNotAllowed.
func ExampleDevice_Send() {
	ctx := context.Background()
	delta, echo := enrolled("delta@example.org", "laptop"), enrolled("echo@example.org", "phone")
	defer delta.Close()
	defer echo.Close()

	if _, err := delta.AddContact(ctx, "echo@example.org"); err != nil {
		log.Fatal(err)
	}
	_, err := delta.Send(ctx, "echo@example.org", "hello")
	fmt.Println("before echo adds delta:", errors.Is(err, sdk.ErrNotAllowed))

	if _, err := echo.AddContact(ctx, "delta@example.org"); err != nil {
		log.Fatal(err)
	}
	if _, err := delta.Send(ctx, "echo@example.org", "hello"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("sent")
	// Output:
	// before echo adds delta: true
	// sent
}

// Listen for messages: the first event says the device is registered, then
// messages (decrypted and verified) and receipts arrive as they come.
func ExampleDevice_Listen() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fox, golf := enrolled("fox@example.org", "laptop"), enrolled("golf@example.org", "phone")
	defer fox.Close()
	defer golf.Close()
	for _, c := range []struct {
		d    *sdk.Device
		peer string
	}{{fox, "golf@example.org"}, {golf, "fox@example.org"}} {
		if _, err := c.d.AddContact(ctx, c.peer); err != nil {
			log.Fatal(err)
		}
	}

	sent := make(chan error, 1)
	err := golf.Listen(ctx, func(e sdk.Event) {
		switch e.Type {
		case sdk.EventReady:
			fmt.Println("ready")
			go func() {
				_, err := fox.Send(context.Background(), "golf@example.org", "hello golf")
				sent <- err
			}()
		case sdk.EventMessage:
			fmt.Printf("%s from %s/%s\n", e.Text, e.From, e.FromDevice)
			cancel()
		}
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := <-sent; err != nil {
		log.Fatal(err)
	}
	// Output:
	// ready
	// hello golf from fox@example.org/laptop
}

// A direct call between two phones on loopback: SIP over UDP, media in SRTP
// keyed by ZRTP. Both sides show the same short authentication string,
// which the users compare aloud.
func ExamplePhone_Dial() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sas := make(chan string, 2)
	onEvent := func(e sdk.CallEvent) {
		if e.Type == sdk.CallSecure {
			sas <- e.Secure.SAS
		}
	}
	// Each phone keeps its own ZRTP state: here in the encrypted database
	// of a device profile, or with OpenZRTPCache in files.
	juliet, kilo := enrolled("juliet@example.org", "laptop"), enrolled("kilo@example.org", "phone")
	defer juliet.Close()
	defer kilo.Close()
	// SIP over TCP: this test process also runs the node, whose SIP
	// listener shrinks sipgo's process-wide read buffer to 512 bytes, too
	// small for an INVITE in one UDP datagram. A program without the node
	// in it may use the default, UDP.
	callee, err := sdk.NewPhone(sdk.PhoneConfig{Listen: "127.0.0.1:0", Transport: "tcp", ZRTP: kilo.ZRTPStore()})
	if err != nil {
		log.Fatal(err)
	}
	defer callee.Close()
	caller, err := sdk.NewPhone(sdk.PhoneConfig{Listen: "127.0.0.1:0", Transport: "tcp", ZRTP: juliet.ZRTPStore()})
	if err != nil {
		log.Fatal(err)
	}
	defer caller.Close()

	answered := make(chan *sdk.Call, 1)
	go func() {
		c, err := callee.Accept(ctx, sdk.CallOptions{OnEvent: onEvent})
		if err != nil {
			log.Fatal(err)
		}
		answered <- c
	}()
	call, err := caller.Dial(ctx, callee.URI(), sdk.CallOptions{OnEvent: onEvent, KeyAgreements: []string{"X255"}})
	if err != nil {
		log.Fatal(err)
	}
	in := <-answered
	a, b := <-sas, <-sas
	fmt.Println("same SAS on both sides:", a == b)
	fmt.Println("key agreement:", call.Secure().KeyAgreement, "trust:", call.Secure().Trust)
	if err := call.Hangup(ctx); err != nil {
		log.Fatal(err)
	}
	if err := in.Wait(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("ended")

	// After the call, the caller confirms the SAS the peer read aloud: the
	// next call with this peer shows it as previously verified. Other
	// words are refused.
	peer := call.Secure().PeerZID
	_, err = juliet.ZRTPStore().ConfirmLastCall(peer, "not the sas")
	fmt.Println("wrong words refused:", errors.Is(err, sdk.ErrSASMismatch))
	if _, err := juliet.ZRTPStore().ConfirmLastCall(peer, a); err != nil {
		log.Fatal(err)
	}
	fmt.Println("SAS confirmed")
	// Output:
	// same SAS on both sides: true
	// key agreement: X255 trust: unverified
	// ended
	// wrong words refused: true
	// SAS confirmed
}
