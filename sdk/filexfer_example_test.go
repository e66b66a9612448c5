package sdk_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
)

// Send an end-to-end encrypted file: the recipient's device offers slots
// (listen does it by itself), the sender uses one, the recipient reads the
// metadata and then fetches the content.
func ExampleDevice_SendFile() {
	ctx := context.Background()
	alpha, bravo := enrolled("xfera@example.org", "laptop"), enrolled("xferb@example.org", "phone")
	defer alpha.Close()
	defer bravo.Close()
	if _, err := alpha.AddContact(ctx, "xferb@example.org"); err != nil {
		log.Fatal(err)
	}
	if _, err := bravo.AddContact(ctx, "xfera@example.org"); err != nil {
		log.Fatal(err)
	}
	n, err := bravo.RefillFileSlots(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("slots offered:", n)
	if n, err = bravo.RefillFileSlots(ctx); err != nil { // full: nothing to do
		log.Fatal(err)
	}
	fmt.Println("then:", n)

	src := filepath.Join(tmp, "minutes.txt")
	os.WriteFile(src, []byte("minutes of the meeting\n"), 0o600)
	sent, err := alpha.SendFile(ctx, "xferb@example.org", src, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("sent to", sent.Devices)
	if sent.Waiting != "" {
		// A recipient of another cluster that could not be reached: the
		// file is on this node, which forwards it later.
		fmt.Println("waiting for", sent.Waiting)
	}

	files, err := bravo.FileTransfers(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range files {
		fmt.Println(f.Direction, f.Peer, f.Name, f.Size, f.State)
	}
	got, err := bravo.GetFile(ctx, sent.ID, filepath.Join(tmp, "minutes-received.txt"), nil)
	if err != nil {
		log.Fatal(err)
	}
	b, _ := os.ReadFile(got.Path)
	fmt.Print(string(b))
	// Output:
	// slots offered: 4
	// then: 0
	// sent to [xferb@example.org/phone]
	// in xfera@example.org/laptop minutes.txt 23 offered
	// minutes of the meeting
}
