// Command srtpbench times internal/media/srtp protect+unprotect per packet
// for one profile, the way the libsrtp harness next to it does, and can
// write packets it protected for that harness to unprotect (interop).
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/phonex/phonex/internal/media/srtp"
)

func main() {
	profile := flag.String("profile", "AES1_HS80", "AES1_HS32, AES1_HS80, AES3_HS32 or AES3_HS80")
	payload := flag.Int("payload", 160, "RTP payload bytes")
	n := flag.Int("n", 200000, "packets")
	vectors := flag.String("vectors", "", "write 300 protected packets with their plaintext to this file")
	flag.Parse()
	if err := run(*profile, *payload, *n, *vectors); err != nil {
		fmt.Fprintln(os.Stderr, "srtpbench:", err)
		os.Exit(1)
	}
}

// keys match the libsrtp harness: key[i] = i, salt[i] = 0xA0 + i.
func keys(cipher string) srtp.Keys {
	n := 16
	if cipher == srtp.CipherAES3 {
		n = 32
	}
	k := srtp.Keys{MasterKey: make([]byte, n), MasterSalt: make([]byte, srtp.SaltLen)}
	for i := range k.MasterKey {
		k.MasterKey[i] = byte(i)
	}
	for i := range k.MasterSalt {
		k.MasterSalt[i] = byte(0xA0 + i)
	}
	return k
}

func packet(dst []byte, i, payload int) []byte {
	dst = append(dst[:0], 0x80, 0, byte(i>>8), byte(i), byte(i>>24), byte(i>>16), byte(i>>8), byte(i), 0xCA, 0xFE, 0xBA, 0xBE)
	for range payload {
		dst = append(dst, 0xAB)
	}
	return dst
}

func run(profile string, payload, n int, vectors string) error {
	cipher, tag, ok := strings.Cut(profile, "_")
	if !ok {
		return fmt.Errorf("profile %q: want CIPHER_TAG", profile)
	}
	k := keys(cipher)
	cfg := srtp.Config{Cipher: cipher, AuthTag: tag, Local: k, Remote: k}
	if vectors != "" {
		s, err := srtp.NewSession(cfg)
		if err != nil {
			return err
		}
		f, err := os.Create(vectors)
		if err != nil {
			return err
		}
		w := bufio.NewWriter(f)
		var pkt, sp []byte
		// Cross a sequence-number wrap so the rollover counter is checked too.
		for i := 65400; i < 65700; i++ {
			pkt = packet(pkt, i, payload)
			if sp, err = s.Protect(sp, pkt); err != nil {
				return err
			}
			for _, b := range [][]byte{pkt, sp} {
				w.Write(binary.BigEndian.AppendUint16(nil, uint16(len(b))))
				w.Write(b)
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	tx, err := srtp.NewSession(cfg)
	if err != nil {
		return err
	}
	rx, err := srtp.NewSession(cfg)
	if err != nil {
		return err
	}
	var pkt, sp, out []byte
	start := time.Now()
	for i := range n {
		pkt = packet(pkt, i, payload)
		if sp, err = tx.Protect(sp, pkt); err != nil {
			return err
		}
		if out, err = rx.Unprotect(out, sp); err != nil {
			return fmt.Errorf("packet %d: %w", i, err)
		}
	}
	fmt.Printf("%.0f\n", float64(n)/time.Since(start).Seconds())
	return nil
}
