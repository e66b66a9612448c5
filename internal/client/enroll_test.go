package client_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/client"
	"github.com/phonex/phonex/internal/kdf"
	"github.com/phonex/phonex/internal/keys"
	"github.com/phonex/phonex/internal/server"
	"github.com/phonex/phonex/internal/throttle"
)

// progressLog records the steps a client reports.
type progressLog struct {
	mu    sync.Mutex
	steps []string
}

func (l *progressLog) add(s string) { l.mu.Lock(); l.steps = append(l.steps, s); l.mu.Unlock() }

func (l *progressLog) has(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.steps {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// TestStrangerCannotLockDevices: wrong passwords through new-device login
// count apart from the devices' unlocks, so they cannot lock out a device
// that exists; past the free logins the client solves the proof of work on
// its own; and a successful unlock does not reset the login counter.
func TestStrangerCannotLockDevices(t *testing.T) {
	fast := func(free, lock int) throttle.Policy {
		return throttle.Policy{Free: free, LockAfter: lock, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}
	}
	c := startCluster(t, func(cfg *server.Config) {
		cfg.AccountAttempts = fast(1, 3)
		cfg.LoginAttempts = fast(3, 20)
		cfg.LoginAttempts.HumanAfter = 3
		cfg.LoginPoWBits = 8
	})
	ctx := context.Background()
	p := c.enroll("alpha@example.org", "laptop", "alpha password", keys.SuiteEC)
	dir := p.Dir
	p.Close()
	login := func(pw string, log *progressLog) (*client.Profile, error) {
		return client.Login(ctx, client.EnrollRequest{Dir: filepath.Join(t.TempDir(), "p"), User: "alpha@example.org", Device: "desktop",
			Server: c.addr, Fingerprint: mustFP(t, c), Password: []byte(pw)}, &client.Options{MinKDF: fastKDF, Progress: log.add})
	}
	for i := range 5 {
		log := &progressLog{}
		_, err := login("stranger guess", log)
		if apiCode(err) != api.CodeWrongPassword {
			t.Fatalf("stranger's login %d: %v", i+1, err)
		}
		if solved := log.has("proof of work"); solved != (i >= 3) {
			t.Fatalf("login %d: proof of work solved: %v", i+1, solved)
		}
	}
	// The device is not locked: it opens with its password.
	p, err := client.Open(ctx, dir, []byte("alpha password"), nil)
	if err != nil {
		t.Fatalf("device after a stranger's logins: %v", err)
	}
	p.Close()
	// The unlock did not reset the login counter: the next login still
	// needs the proof of work.
	log := &progressLog{}
	p2, err := login("alpha password", log)
	if err != nil {
		t.Fatalf("login with the password: %v", err)
	}
	defer p2.Close()
	if !log.has("proof of work") {
		t.Fatal("a device's unlock reset the login counter")
	}
}

// TestPendingAccountIsNotEnrolled: an account with an activation code and
// no device answers not_enrolled, an unknown one unknown_user.
func TestPendingAccountIsNotEnrolled(t *testing.T) {
	c := startCluster(t, nil)
	ctx := context.Background()
	c.code("alpha@example.org")
	req := client.EnrollRequest{Dir: filepath.Join(t.TempDir(), "p"), User: "alpha@example.org", Device: "d", Server: c.addr,
		Fingerprint: mustFP(t, c), Password: []byte("a password")}
	_, err := client.Login(ctx, req, &client.Options{MinKDF: fastKDF})
	if !errors.Is(err, client.ErrNotEnrolled) || apiCode(err) != api.CodeNotEnrolled {
		t.Fatalf("pending account: %v", err)
	}
	req.User = "nobody@example.org"
	if _, err := client.Login(ctx, req, &client.Options{MinKDF: fastKDF}); apiCode(err) != api.CodeUnknownUser || errors.Is(err, client.ErrNotEnrolled) {
		t.Fatalf("unknown account: %v", err)
	}
}

// TestWrongCAFileKeepsTheCode: giving the server's own certificate as the CA
// (which does verify the TLS connection) is refused before the code is
// used; the code then enrolls with the right CA.
func TestWrongCAFileKeepsTheCode(t *testing.T) {
	c := startCluster(t, nil)
	ctx := context.Background()
	code := c.code("alpha@example.org")
	req := client.EnrollRequest{Dir: filepath.Join(t.TempDir(), "p"), User: "alpha@example.org", Device: "d", Server: c.addr,
		CAFile: filepath.Join(c.cfg.DataDir, ca.ServerCertFile), Code: code, Password: []byte("a password")}
	o := &client.Options{KDF: fastKDF}
	if _, err := client.Enroll(ctx, req, o); !errors.Is(err, client.ErrNotCA) {
		t.Fatalf("server certificate as --ca-file: %v", err)
	}
	srv, err := ca.ReadCert(filepath.Join(c.cfg.DataDir, ca.ServerCertFile))
	if err != nil {
		t.Fatal(err)
	}
	req.CAFile, req.Fingerprint = "", ca.Fingerprint(srv)
	if _, err := client.Enroll(ctx, req, o); !errors.Is(err, client.ErrNotCA) {
		t.Fatalf("server certificate's fingerprint: %v", err)
	}
	if us, _ := c.adm.Users(ctx); len(us) != 1 || us[0].Status != "pending" || us[0].Devices != 0 {
		t.Fatalf("after refused enrollments: %+v", us)
	}
	req.CAFile, req.Fingerprint = filepath.Join(c.cfg.DataDir, ca.CACertFile), ""
	p, err := client.Enroll(ctx, req, o)
	if err != nil {
		t.Fatalf("the code after a wrong --ca-file: %v", err)
	}
	p.Close()
}

// TestFailedClientStepLeavesNoDevice: when the device fails after the
// server issued its certificate (here: the profile directory cannot be
// created), no device is active, the code is not spent, and it enrolls at
// once on the next try.
func TestFailedClientStepLeavesNoDevice(t *testing.T) {
	c := startCluster(t, nil)
	ctx := context.Background()
	code := c.code("alpha@example.org")
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	req := client.EnrollRequest{Dir: filepath.Join(file, "p"), User: "alpha@example.org", Device: "d", Server: c.addr,
		CAFile: filepath.Join(c.cfg.DataDir, ca.CACertFile), Code: code, Password: []byte("a password")}
	o := &client.Options{KDF: fastKDF}
	if _, err := client.Enroll(ctx, req, o); err == nil {
		t.Fatal("enrolled into a directory under a file")
	}
	if ds, err := c.adm.Devices(ctx, "alpha@example.org"); err != nil || len(ds) != 0 {
		t.Fatalf("devices after a failed enrollment: %+v %v", ds, err)
	}
	if us, _ := c.adm.Users(ctx); len(us) != 1 || us[0].Status != "pending" {
		t.Fatalf("account after a failed enrollment: %+v", us)
	}
	req.Dir = filepath.Join(t.TempDir(), "p")
	p, err := client.Enroll(ctx, req, o)
	if err != nil {
		t.Fatalf("the code after a failed enrollment: %v", err)
	}
	p.Close()
	// The same for a login: no device is left behind.
	req = client.EnrollRequest{Dir: filepath.Join(file, "q"), User: "alpha@example.org", Device: "e", Server: c.addr,
		Fingerprint: mustFP(t, c), Password: []byte("a password")}
	if _, err := client.Login(ctx, req, &client.Options{MinKDF: fastKDF}); err == nil {
		t.Fatal("logged in into a directory under a file")
	}
	if ds, _ := c.adm.Devices(ctx, "alpha@example.org"); len(ds) != 1 {
		t.Fatalf("devices after a failed login: %+v", ds)
	}
}

// TestLoginRefusesWeakKDF: a device added by login refuses KDF parameters
// below its minimum, whatever the server hands it; the node refuses to
// store parameters below its own minimum.
func TestLoginRefusesWeakKDF(t *testing.T) {
	c := startCluster(t, nil) // accepts fastKDF (log_n 14)
	ctx := context.Background()
	c.enroll("alpha@example.org", "laptop", "alpha password", keys.SuiteEC).Close()
	req := client.EnrollRequest{Dir: filepath.Join(t.TempDir(), "p"), User: "alpha@example.org", Device: "desktop", Server: c.addr,
		Fingerprint: mustFP(t, c), Password: []byte("alpha password")}
	if _, err := client.Login(ctx, req, nil); !errors.Is(err, client.ErrWeakKDF) || !errors.Is(err, kdf.ErrParams) {
		t.Fatalf("login with log_n=14 parameters: %v", err)
	}
	if ds, _ := c.adm.Devices(ctx, "alpha@example.org"); len(ds) != 1 {
		t.Fatalf("devices: %+v", ds)
	}

	strict := startCluster(t, func(cfg *server.Config) { cfg.KDFMinLogN = kdf.MinParams.LogN })
	code := strict.code("bravo@example.org")
	_, err := client.Enroll(ctx, client.EnrollRequest{Dir: filepath.Join(t.TempDir(), "p"), User: "bravo@example.org", Device: "d",
		Server: strict.addr, CAFile: filepath.Join(strict.cfg.DataDir, ca.CACertFile), Code: code, Password: []byte("a password")},
		&client.Options{KDF: fastKDF})
	if apiCode(err) != api.CodeBadRequest || !strings.Contains(err.Error(), "weaker than the minimum") {
		t.Fatalf("enrollment with log_n=14 on a node with minimum 16: %v", err)
	}
}

// TestLoginLockoutSparesDevices: a locked login leaves the devices opening;
// the operator's account unlock lifts it.
func TestLoginLockoutSparesDevices(t *testing.T) {
	c := startCluster(t, func(cfg *server.Config) {
		cfg.LoginAttempts = throttle.Policy{Free: 2, LockAfter: 4, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, HumanAfter: 2}
		cfg.LoginPoWBits = 8
	})
	ctx := context.Background()
	p := c.enroll("alpha@example.org", "laptop", "alpha password", keys.SuiteEC)
	dir := p.Dir
	p.Close()
	login := func(pw string) error {
		p, err := client.Login(ctx, client.EnrollRequest{Dir: filepath.Join(t.TempDir(), "p"), User: "alpha@example.org", Device: "desktop",
			Server: c.addr, Fingerprint: mustFP(t, c), Password: []byte(pw)}, &client.Options{MinKDF: fastKDF})
		if err == nil {
			p.Close()
		}
		return err
	}
	for i := range 4 {
		if err := login("stranger guess"); apiCode(err) != api.CodeWrongPassword {
			t.Fatalf("login %d: %v", i+1, err)
		}
	}
	if err := login("alpha password"); apiCode(err) != api.CodeLocked {
		t.Fatalf("login after the lock-out: %v", err)
	}
	if us, _ := c.adm.Users(ctx); len(us) != 1 || !us[0].LoginLocked || us[0].Locked {
		t.Fatalf("user list: %+v", us)
	}
	p, err := client.Open(ctx, dir, []byte("alpha password"), nil)
	if err != nil {
		t.Fatalf("device while logins are locked: %v", err)
	}
	p.Close()
	if err := c.adm.Unlock(ctx, "alpha@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := login("alpha password"); err != nil {
		t.Fatalf("login after the operator's unlock: %v", err)
	}
}

// TestPasswordChangeRefusesWeakKDF: the old password's parameters come from
// the server too, and are held to the same minimum.
func TestPasswordChangeRefusesWeakKDF(t *testing.T) {
	c := startCluster(t, nil) // accepts fastKDF (log_n 14)
	p := c.enroll("alpha@example.org", "laptop", "alpha password", keys.SuiteEC)
	defer p.Close()
	err := p.ChangePassword(context.Background(), []byte("alpha password"), []byte("new alpha password"), &client.Options{KDF: kdf.DefaultParams})
	if !errors.Is(err, client.ErrWeakKDF) {
		t.Fatalf("password change from log_n=14 parameters: %v", err)
	}
}
