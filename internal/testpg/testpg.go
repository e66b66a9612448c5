// Package testpg gives tests a PostgreSQL database: a throwaway server
// started from Debian's postgresql package (initdb in a temporary directory,
// run as an unprivileged user, on a free loopback port), shared by the tests
// of one test binary, each test getting a fresh database of its own.
//
// PHONEX_TEST_PG=postgres://… uses an existing server instead. Without
// either, a test that needs PostgreSQL skips with the reason, or fails when
// CI is set (internal/testpeer's convention).
//
// A package using it stops the server at the end with
//
//	func TestMain(m *testing.M) { testpg.Main(m) }
package testpg

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/phonex/phonex/internal/freeport"
	"github.com/phonex/phonex/internal/testpeer"
)

// EnvDSN names the variable that points the tests at an existing server.
const EnvDSN = "PHONEX_TEST_PG"

// Peer is the name skip messages give PostgreSQL.
const Peer = "postgres"

// Server is a running PostgreSQL the tests share.
type Server struct {
	// Admin is a DSN of the server's maintenance database, as a
	// superuser; database names are replaced in it for each test.
	Admin string
	// Port is the loopback port it listens on (0 for an external server).
	Port int

	dir, bin, sock string
	cred           *syscall.Credential
	mu             sync.Mutex
	cmd            *exec.Cmd
	exited         chan struct{}
}

var (
	shared     *Server
	sharedErr  error
	sharedOnce sync.Once
	dbSeq      atomic.Int64
)

// Main runs the tests and then stops the server they shared.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the shared server, if one was started, and removes its
// files; a TestMain that does more than Main calls it after m.Run.
func Stop() {
	if shared != nil {
		shared.close()
	}
}

// Get returns the shared server, starting it on first use; it skips or
// fails t when PostgreSQL is not available.
func Get(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = start() })
	if sharedErr != nil {
		testpeer.Missing(t, Peer, sharedErr.Error())
	}
	return shared
}

// DSN creates a fresh, empty database for t (dropped when t ends) and
// returns its connection string.
func DSN(t testing.TB) string {
	t.Helper()
	s := Get(t)
	name := fmt.Sprintf("phonex_test_%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.exec(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("testpg: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends the sessions a failed test left open.
		if err := s.exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Logf("testpg: drop database %s: %v", name, err)
		}
	})
	return s.withDatabase(name)
}

func (s *Server) withDatabase(name string) string {
	u, err := url.Parse(s.Admin)
	if err != nil {
		panic(err) // Admin is ours or checked in start
	}
	u.Path = "/" + name
	return u.String()
}

func (s *Server) exec(ctx context.Context, sql string) error {
	c, err := pgx.Connect(ctx, s.Admin)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql)
	return err
}

// Restart stops the server the way an operator's restart does (fast
// shutdown: sessions end, committed data stays) and starts it again on the
// same port, waiting until it accepts connections. down, when not nil,
// runs while it is stopped. Every test of the binary shares the server, so
// a test that restarts it must not run in parallel with others that use
// it. An external server (PHONEX_TEST_PG) cannot be restarted: the test is
// skipped.
func Restart(t testing.TB, down func()) {
	t.Helper()
	s := Get(t)
	if s.cmd == nil && s.bin == "" {
		t.Skip("testpg: " + EnvDSN + " names an external server, which tests do not restart")
	}
	s.stop()
	if down != nil {
		down()
	}
	if err := s.run(); err != nil {
		t.Fatalf("testpg: restart: %v", err)
	}
}

func start() (*Server, error) {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		if _, err := url.Parse(dsn); err != nil {
			return nil, fmt.Errorf("%s: %w", EnvDSN, err)
		}
		s := &Server{Admin: dsn}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.exec(ctx, `SELECT 1`); err != nil {
			return nil, fmt.Errorf("%s server: %w", EnvDSN, err)
		}
		return s, nil
	}
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin}
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root.
		s.cred, err = unprivileged()
		if err != nil {
			return nil, err
		}
	}
	if s.dir, err = os.MkdirTemp("", "phonex-pg-"); err != nil {
		return nil, err
	}
	s.sock = filepath.Join(s.dir, "sock")
	if err := os.Mkdir(s.sock, 0o700); err != nil {
		return nil, err
	}
	if s.cred != nil {
		for _, p := range []string{s.dir, s.sock} {
			if err := os.Chown(p, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
				return nil, err
			}
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(s.dir, "data"), "-U", "postgres",
		"--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	// The test's directory may be closed to the server's user (a
	// checkout under /root): work from the server's own.
	initdb.Dir = s.dir
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(s.dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, lastLines(out))
	}
	if s.Port, err = freeport.Pick(); err != nil {
		return nil, err
	}
	s.Admin = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.Port)
	if err := s.run(); err != nil {
		os.RemoveAll(s.dir)
		return nil, err
	}
	return s, nil
}

// run starts the server process and waits until it accepts connections.
func (s *Server) run() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	log, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	// fsync stays on: the store's guarantee (an answer only after a
	// durable commit) is what the tests check.
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", filepath.Join(s.dir, "data"),
		"-p", strconv.Itoa(s.Port), "-k", s.sock, "-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=on", "-c", "max_connections=300", "-c", "shared_buffers=32MB")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Dir = s.dir
	// Its own process group: a ^C to the test does not reach it before
	// Main stops it. A test binary that dies without stopping it (killed
	// at a timeout) takes it along: SIGQUIT is PostgreSQL's immediate
	// shutdown.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true, Pdeathsig: syscall.SIGQUIT}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("postgres: %w", err)
	}
	log.Close()
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := s.exec(ctx, `SELECT 1`)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
			return fmt.Errorf("postgres exited: %s", lastLines(b))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not ready after a minute: %w", err)
		}
	}
}

// stop shuts the server down (fast shutdown), killing it if it hangs;
// the data directory stays until Main removes it.
func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// close stops the server and removes its files.
func (s *Server) close() {
	s.stop()
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// findBin finds the directory of Debian's server binaries (the newest
// version installed), or of a postgres on PATH.
func findBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		d := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin or on PATH (Debian package postgresql; or set " + EnvDSN + ")")
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// unprivileged is the user the server runs as when the tests run as root:
// Debian's postgres user, or nobody.
func unprivileged() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root and no unprivileged user (postgres or nobody) to run PostgreSQL as")
}

func lastLines(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return strings.Join(lines, "\n")
}
