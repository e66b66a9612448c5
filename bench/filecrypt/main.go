// Command filecrypt-bench measures the file encryption of internal/filecrypt
// on one machine: the STREAM content encryption alone on bytes in memory
// (what bench/filecrypt.sh compares with OpenSSL's AES-256-GCM on 64 KiB
// blocks), and a whole file read from disk and written to /dev/null through
// the public API (slot handout, key wrapping, signed header, content with
// its SHA-256). It prints one "NAME bytes-per-CPU-second" line per measure.
//
//	go run ./bench/filecrypt -in FILE [-seconds 3]
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/phonex/phonex/internal/filecrypt"
)

func main() {
	in := flag.String("in", "", "file to encrypt (its bytes are also what the in-memory measures use, up to 64 MiB)")
	secs := flag.Float64("seconds", 3, "length of each measure")
	flag.Parse()
	if err := run(*in, time.Duration(*secs*float64(time.Second))); err != nil {
		fmt.Fprintln(os.Stderr, "filecrypt-bench:", err)
		os.Exit(1)
	}
}

// rate repeats f for at least d and returns bytes per second of the
// process's CPU time (user and system, every thread, the garbage collector
// included). OpenSSL's speed divides by its CPU user time too; on a shared
// machine CPU time is what stays comparable between the two.
func rate(d time.Duration, size int64, f func() error) (float64, error) {
	var n int64
	start := time.Now()
	cpu0 := cpuTime()
	for time.Since(start) < d {
		if err := f(); err != nil {
			return 0, err
		}
		n += size
	}
	return float64(n) / (cpuTime() - cpu0).Seconds(), nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func run(in string, d time.Duration) error {
	if in == "" {
		return errors.New("-in FILE is required")
	}
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	mem, err := io.ReadAll(io.LimitReader(f, 64<<20))
	f.Close()
	if err != nil {
		return err
	}
	key := make([]byte, 32)
	rand.Read(key)
	// The first 1 MiB stays in the CPU cache as OpenSSL's 64 KiB buffer
	// does; the whole buffer (up to 64 MiB) streams from memory.
	for _, m := range []struct {
		name string
		b    []byte
	}{{"HOT", mem[:min(len(mem), 1<<20)]}, {"", mem}} {
		seal, open, err := stream(key, m.b, d)
		if err != nil {
			return err
		}
		fmt.Printf("STREAM_SEAL%s %.0f\nSTREAM_OPEN%s %.0f\n", m.name, seal, m.name, open)
	}
	return wholeFile(in, d)
}

// stream measures STREAM sealing and opening of mem.
func stream(key, mem []byte, d time.Duration) (seal, open float64, err error) {
	chunk := make([]byte, filecrypt.ChunkSize)
	seal, err = rate(d, int64(len(mem)), func() error {
		w, err := filecrypt.NewStreamWriter(key, io.Discard)
		if err != nil {
			return err
		}
		if _, err := w.Write(mem); err != nil {
			return err
		}
		return w.Close()
	})
	if err != nil {
		return 0, 0, err
	}
	var ct bytes.Buffer
	w, _ := filecrypt.NewStreamWriter(key, &ct)
	w.Write(mem)
	w.Close()
	open, err = rate(d, int64(len(mem)), func() error {
		r, err := filecrypt.NewStreamReader(key, bytes.NewReader(ct.Bytes()), int64(len(mem)))
		if err != nil {
			return err
		}
		_, err = io.CopyBuffer(struct{ io.Writer }{io.Discard}, r, chunk)
		return err
	})
	return seal, open, err
}

type dev struct {
	name string
	cert *x509.Certificate
	sk   ed25519.PrivateKey
	kem  hpke.PrivateKey
}

func newDev(name string) (*dev, error) {
	_, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		URIs:      []*url.URL{{Scheme: "phonex", Opaque: name}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, sk.Public(), sk)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	kem, err := hpke.MLKEM768X25519().GenerateKey()
	return &dev{name, cert, sk, kem}, err
}

// wholeFile sends the file from alpha to bravo and has bravo open it, each
// side timed over the whole file, from disk to disk (/dev/null).
func wholeFile(in string, d time.Duration) error {
	alpha, err := newDev("alpha@localhost/laptop")
	if err != nil {
		return err
	}
	bravo, err := newDev("bravo@localhost/phone")
	if err != nil {
		return err
	}
	now := time.Now()
	offer, secret, err := filecrypt.NewSlot(filecrypt.SlotMaker{Device: bravo.name, Cert: bravo.cert, Signer: bravo.sk},
		"alpha@localhost", []filecrypt.SealTo{{Device: alpha.name, Cert: alpha.cert, KEM: alpha.kem.PublicKey()}}, now, time.Hour)
	if err != nil {
		return err
	}
	sealed, err := filecrypt.ParseSealedSlot(offer.Sealed)
	if err != nil {
		return err
	}
	slot, err := sealed.Open(filecrypt.SlotOpener{Device: alpha.name, Cert: alpha.cert, KEM: alpha.kem}, bravo.cert, now)
	if err != nil {
		return err
	}
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	size, sum, err := filecrypt.HashContent(f)
	if err != nil {
		return err
	}
	meta := filecrypt.Metadata{Name: filepath.Base(in), Size: size, SHA256: sum}
	sender := filecrypt.Sender{Device: alpha.name, Cert: alpha.cert, Signer: alpha.sk}
	ctPath := filepath.Join(os.TempDir(), fmt.Sprintf("filecrypt-bench-%d.ct", os.Getpid()))
	defer os.Remove(ctPath)
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	var out *filecrypt.Outgoing
	send := func(dst io.Writer) error {
		if out, err = filecrypt.NewFile(sender, meta, []filecrypt.SlotUse{{Slot: slot, Nonce2: offer.Nonce2}}, nil, now); err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		cw, err := out.ContentWriter(dst)
		if err != nil {
			return err
		}
		if _, err := io.CopyBuffer(cw, struct{ io.Reader }{f}, make([]byte, filecrypt.ChunkSize)); err != nil {
			return err
		}
		return cw.Close()
	}
	seal, err := rate(d, int64(size), func() error { return send(null) })
	if err != nil {
		return err
	}
	// The ciphertext the recipient reads, written once, untimed.
	dst, err := os.Create(ctPath)
	if err != nil {
		return err
	}
	err = send(dst)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	open, err := rate(d, int64(size), func() error {
		h, err := filecrypt.ParseHeader(out.Header)
		if err != nil {
			return err
		}
		if err := h.Verify(alpha.cert); err != nil {
			return err
		}
		k, err := h.UnwrapSlot(secret)
		if err != nil {
			return err
		}
		m, err := k.OpenMetadata(out.Metadata)
		if err != nil {
			return err
		}
		src, err := os.Open(ctPath)
		if err != nil {
			return err
		}
		defer src.Close()
		r, err := k.ContentReader(src, m)
		if err != nil {
			return err
		}
		_, err = io.CopyBuffer(null, struct{ io.Reader }{r}, make([]byte, filecrypt.ChunkSize))
		return err
	})
	if err != nil {
		return err
	}
	fmt.Printf("FILE_SEAL %.0f\nFILE_OPEN %.0f\n", seal, open)
	return nil
}
