package testpg

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

// A committed row survives a restart of the server; each test's database
// starts empty.
func TestDatabaseAndRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn := DSN(t)
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, `CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)`); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	Restart(t, nil)
	c, err = pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, `SELECT n FROM kept`).Scan(&n); err != nil || n != 7 {
		t.Fatalf("after restart: %d %v", n, err)
	}
	other, err := pgx.Connect(ctx, DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	var tables int
	other.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname='public'`).Scan(&tables)
	if tables != 0 {
		t.Fatalf("a fresh database has %d tables", tables)
	}
}

// PHONEX_TEST_PG names an existing server: databases are made there, and
// it is not restarted.
func TestExternalServer(t *testing.T) {
	own := Get(t)
	t.Setenv(EnvDSN, own.Admin)
	ext, err := start()
	if err != nil {
		t.Fatal(err)
	}
	if ext.bin != "" || ext.cmd != nil || ext.Admin != own.Admin {
		t.Fatalf("external server %+v", ext)
	}
	t.Setenv(EnvDSN, "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if _, err := start(); err == nil {
		t.Fatal("an unreachable server was accepted")
	}
}
