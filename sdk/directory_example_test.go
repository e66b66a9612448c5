package sdk_test

import (
	"context"
	"fmt"
	"log"

	"github.com/phonex/phonex/sdk"
)

// Publish a number, look it up from another account, and discover it
// among others by hash.
func ExampleDevice_PublishNumber() {
	ctx := context.Background()
	india, juliet := enrolled("india@example.org", "phone"), enrolled("juliet@example.org", "laptop")
	defer india.Close()
	defer juliet.Close()

	pub, err := india.PublishNumber(ctx, "+420 777 123 456", nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(pub.State, pub.Entry.Number, pub.Entry.SIPAddress)

	es, err := juliet.Lookup(ctx, "+420777123456")
	if err != nil {
		log.Fatal(err)
	}
	for _, k := range es[0].Keys {
		fmt.Println(k.Device, "verified by the CA:", k.CAVerified, "pin:", k.Match)
	}
	// Adding the contact pins its devices; the directory's key matches.
	if _, err := juliet.AddContact(ctx, "india@example.org"); err != nil {
		log.Fatal(err)
	}
	es, _ = juliet.Lookup(ctx, "india@example.org")
	fmt.Println("pinned key published:", es[0].Keys[0].Match == sdk.KeyPinned)

	found, err := juliet.Discover(ctx, []string{"+420777123456", "+420777123457", "not a number"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("found", found.Found[0].Number, "not found", found.NotFound, "invalid", found.Invalid)
	// Output:
	// published +420777123456 sip:india@example.org
	// india@example.org/phone verified by the CA: true pin: not_pinned
	// pinned key published: true
	// found +420777123456 not found [+420777123457] invalid [not a number]
}
