package sdk_test

import (
	"context"
	"fmt"
	"log"
	"strings"
)

// The home node hands its directory zone's DS records to the device; a
// DNS lookup validates from them without an anchor file.
func ExampleDevice_DirectoryAnchor() {
	ctx := context.Background()
	d := enrolled("diranchor@example.org", "phone")
	defer d.Close()

	a, err := d.DirectoryAnchor(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.Zone, len(a.DS), strings.Fields(a.DS[0])[3])
	// Output: example.org. 1 DS
}
