package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/phonex/phonex/internal/cli"
	"github.com/phonex/phonex/internal/server"
	"github.com/phonex/phonex/internal/server/relay"
)

const relayGCPercent = 400

const relaySynopsis = "phonexd relay [--data DIR] [--relay-addr HOST:PORT] [--relay-tls-addr HOST:PORT] [--secret-file FILE]"

// cmdRelay runs the STUN/TURN relay alone, with no API and no SIP: the
// relay section of DIR/phonexd.conf, the shared secret of the node (copy
// relay.secret, and server.pem/server.key for TURN over TLS), so relays can
// run on other hosts and the node names them in relay_urls.
func cmdRelay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlags("relay", relaySynopsis)
	data := fs.String("data", defaultData, "data directory holding phonexd.conf and the relay secret")
	addr := fs.String("relay-addr", "", "STUN/TURN address for UDP and TCP (overrides relay_addr)")
	tlsAddr := fs.String("relay-tls-addr", "", "TURN over TLS address (overrides relay_tls_addr; 'off' disables)")
	secretFile := fs.String("secret-file", "", "shared secret file (overrides relay_secret_file)")
	pos, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, pos); err != nil {
		return err
	}
	cfg, err := server.LoadConfig(*data)
	if err != nil {
		return err
	}
	relayOverrides(&cfg, *addr, *tlsAddr)
	if *secretFile != "" {
		cfg.Relay.SecretFile = *secretFile
	}
	secret, err := relay.LoadSecret(server.RelaySecretPath(cfg))
	if err != nil {
		return fmt.Errorf("%w (copy the node's %s, or point --secret-file at it)", err, relay.SecretFile)
	}
	// A relay's live heap is small and its garbage is per packet: at Go's
	// default the collector runs so often that its pauses overflow the
	// socket buffers at tens of thousands of datagrams per second. Four
	// times the live heap is a few megabytes here. GOGC, if set, wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(relayGCPercent)
	}
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	s, err := server.StartRelay(cfg, secret, log)
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintln(stdout, s.Describe())
	log.Info("relay started", "realm", cfg.Domain)
	<-ctx.Done()
	return nil
}

// relayOverrides applies the relay address flags of serve and relay.
func relayOverrides(cfg *server.Config, addr, tlsAddr string) {
	if addr != "" {
		cfg.Relay.Addr = addr
	}
	switch tlsAddr {
	case "":
	case "off":
		cfg.Relay.TLSAddr = ""
	default:
		cfg.Relay.TLSAddr = tlsAddr
	}
}
