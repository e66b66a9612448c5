package sdk_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/server"
	"github.com/phonex/phonex/sdk"
)

// The examples run against this node: a real cluster node in process, on
// loopback, with its own CA.
var (
	nodeAddr   string // the API, host:port
	nodeCAFile string // the CA certificate, PEM
	admin      *server.Admin
	tmp        string // profiles and call caches of the examples
)

// fastKDF keeps the examples quick; real profiles keep the default cost.
var fastKDF = sdk.KDFCost{LogN: 14, R: 8, P: 1}

// activationCode creates user on the node, as 'phonexd user add' does, and
// returns the one-time code.
func activationCode(user string) string {
	a, err := admin.AddUser(context.Background(), user, 0)
	if err != nil {
		panic(err)
	}
	return a.Code
}

// enrolled enrolls the first device of user with the password "password of
// USER" (the examples' shortcut for what ExampleEnroll shows).
func enrolled(user, device string) *sdk.Device {
	d, err := sdk.Enroll(context.Background(), sdk.EnrollConfig{Dir: filepath.Join(tmp, user+"-"+device), User: user, Device: device,
		Server: nodeAddr, CAFile: nodeCAFile, Code: activationCode(user), Password: []byte("password of " + user)}, &sdk.Options{KDF: fastKDF})
	if err != nil {
		panic(err)
	}
	return d
}

func TestMain(m *testing.M) {
	os.Exit(runWithNode(m))
}

func runWithNode(m *testing.M) int {
	var err error
	if tmp, err = os.MkdirTemp("", "phonex-sdk-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := server.Defaults(filepath.Join(tmp, "node"))
	cfg.Domain = "example.org"
	cfg.Hosts = []string{"127.0.0.1"}
	cfg.KDFMinLogN = fastKDF.LogN
	if _, err := server.Init(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	n, err := server.Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	done := make(chan struct{}, 2)
	go func() { n.Serve(ctx, ln); done <- struct{}{} }()
	go func() { n.ServeSIP(ctx, sln); done <- struct{}{} }()
	if admin, err = server.OpenAdmin(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer admin.Close()
	nodeAddr, nodeCAFile = ln.Addr().String(), filepath.Join(cfg.DataDir, ca.CACertFile)
	code := m.Run()
	cancel()
	<-done
	<-done
	n.Close()
	return code
}
