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
	owner, look := enrolled("dirpub@example.org", "phone"), enrolled("dirlook@example.org", "laptop")
	defer owner.Close()
	defer look.Close()

	pub, err := owner.PublishNumber(ctx, "+420 777 123 456", nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(pub.State, pub.Entry.Number, pub.Entry.SIPAddress)

	es, err := look.Lookup(ctx, "+420777123456")
	if err != nil {
		log.Fatal(err)
	}
	for _, k := range es[0].Keys {
		fmt.Println(k.Device, "verified by the CA:", k.CAVerified, "pin:", k.Match)
	}
	// Adding the contact pins its devices; the directory's key matches.
	if _, err := look.AddContact(ctx, "dirpub@example.org"); err != nil {
		log.Fatal(err)
	}
	es, _ = look.Lookup(ctx, "dirpub@example.org")
	fmt.Println("pinned key published:", es[0].Keys[0].Match == sdk.KeyPinned)

	found, err := look.Discover(ctx, []string{"+420777123456", "+420777123457", "not a number"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("found", found.Found[0].Number, "not found", found.NotFound, "invalid", found.Invalid)
	// Output:
	// published +420777123456 sip:dirpub@example.org
	// dirpub@example.org/phone verified by the CA: true pin: not_pinned
	// pinned key published: true
	// found +420777123456 not found [+420777123457] invalid [not a number]
}
