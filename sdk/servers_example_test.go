package sdk_test

import (
	"context"
	"fmt"
	"log"
	"path/filepath"

	"github.com/phonex/phonex/sdk"
)

// Give a device every node of a cluster: it uses the first and moves to
// the next when the one in use cannot be reached. Here the first address
// has no node listening, and the device still works through the second.
func ExampleSetServers() {
	ctx := context.Background()
	dir := filepath.Join(tmp, "servers-example")
	dev, err := sdk.Enroll(ctx, sdk.EnrollConfig{Dir: dir, User: "servers@example.org", Device: "phone",
		Server: nodeAddr, CAFile: nodeCAFile, Code: activationCode("servers@example.org"),
		Password: []byte("correct horse battery")}, &sdk.Options{KDF: fastKDF})
	if err != nil {
		log.Fatal(err)
	}
	dev.Close()
	// A node that was taken down first, then the live one.
	if err := sdk.SetServers(dir, []string{"127.0.0.1:1", nodeAddr}); err != nil {
		log.Fatal(err)
	}
	list, _ := sdk.Servers(dir)
	fmt.Println(len(list), list[0])
	dev, err = sdk.Open(ctx, dir, []byte("correct horse battery"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()
	info, err := dev.Whoami(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Identity)
	// Output:
	// 2 127.0.0.1:1
	// servers@example.org/phone
}
