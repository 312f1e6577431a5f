// Package pgtest runs a real PostgreSQL server for tests: Debian's
// postgresql package, initialised into a temporary directory, listening on
// 127.0.0.1 at a free port, with password authentication. As root (as CI
// runs) the server runs as the postgres user (or nobody), since PostgreSQL
// refuses to run as root. Outside CI a missing server skips the test; in
// CI (CI set) it fails it.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Password is the superuser's password. Tests pass it to Sift by
// reference, never in a URL.
const Password = "pg-test-5e1d0b7c"

// Server is a running PostgreSQL.
type Server struct {
	bin     string // the directory of initdb and postgres
	dir     string // data directory and logs, owned by the server's user
	port    int
	cred    *syscall.Credential
	dbCount atomic.Int64
	// proc is the running server; done is closed when it exits.
	proc *os.Process
	done chan struct{}
}

// Start initialises and starts a server, stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := findBin()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("pgtest: %v (CI runs the PostgreSQL tests: .ci/run installs the postgresql package)", err)
		}
		t.Skipf("pgtest: %v (install Debian's postgresql package to run this test)", err)
	}
	s := &Server{bin: bin}
	reapOrphans()
	// Not t.TempDir: its parent is private to root, and the server's user
	// must reach the directory.
	s.dir, err = os.MkdirTemp("", dirPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(s.dir) })
	if os.Geteuid() == 0 {
		s.cred, err = serverUser()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	pwfile := filepath.Join(s.dir, "pwfile")
	if err := s.writeFile(pwfile, Password+"\n"); err != nil {
		t.Fatal(err)
	}
	if out, err := s.run("initdb", "-D", s.data(), "-U", "postgres", "--auth=scram-sha-256", "--pwfile="+pwfile,
		"-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	s.port, err = freePort()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

// dirPrefix names the servers' directories in the temporary directory;
// ownerFile in each holds the pid of the test process that owns it.
const (
	dirPrefix = "sift-pg-"
	ownerFile = "owner.pid"
)

// reapOrphans stops the servers of test processes that are gone (killed
// by a timeout, say, before their cleanup ran) and removes their
// directories, so that they do not pile up on a developer's machine.
func reapOrphans() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		owner, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(owner)))
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) == nil {
			continue // alive (or not ours to judge)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			if server, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(first), "-")); err == nil && server > 0 {
				_ = syscall.Kill(server, syscall.SIGQUIT)
				for range 100 {
					if syscall.Kill(server, 0) != nil {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}
		_ = os.RemoveAll(dir)
	}
}

// findBin finds initdb and postgres: on PATH, else in Debian's versioned
// directory (the newest).
func findBin() (string, error) {
	if p, err := exec.LookPath("postgres"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL server found (initdb, postgres)")
}

// serverUser is the user the server runs as when the test runs as root.
func serverUser() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("pgtest: running as root and no postgres or nobody user to run the server as")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

func (s *Server) writeFile(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	if s.cred != nil {
		return os.Chown(path, int(s.cred.Uid), int(s.cred.Gid))
	}
	return nil
}

// run runs one of the server's programs as the server's user.
func (s *Server) run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd.CombinedOutput()
}

// Start starts the server (again, after Stop) on its port and data.
// fsync is off (the operating system keeps what the server wrote when the
// server is killed); synchronous commits stay on, so that a commit a test
// saw survives Stop.
func (s *Server) Start() error {
	logFile, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", s.data(), "-p", strconv.Itoa(s.port), "-k", s.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off")
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	err = cmd.Start()
	logFile.Close()
	if err != nil {
		return fmt.Errorf("pgtest: postgres: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.proc, s.done = cmd.Process, done
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		if err := s.ping(ctx); err == nil {
			return nil
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
			return fmt.Errorf("pgtest: postgres exited at start:\n%s", log)
		case <-ctx.Done():
			_ = s.Stop()
			return errors.New("pgtest: postgres did not accept connections within a minute")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) ping(ctx context.Context) error {
	cfg, err := pgx.ParseConfig(s.URL("postgres"))
	if err != nil {
		return err
	}
	cfg.Password = Password
	cfg.ConnectTimeout = time.Second
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// Stop stops the server at once, as a crash would: connections drop.
// SIGQUIT is PostgreSQL's immediate shutdown.
func (s *Server) Stop() error {
	if s.proc == nil {
		return nil
	}
	_ = s.proc.Signal(syscall.SIGQUIT)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.proc.Kill()
		<-s.done
	}
	s.proc = nil
	return nil
}

// Port is the server's TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// URL is a connection URL of database db, without the password.
func (s *Server) URL(db string) string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)), Path: "/" + db}
	q := url.Values{"sslmode": {"disable"}}
	u.RawQuery = q.Encode()
	return u.String()
}

// CreateDB creates an empty database and returns its name.
func (s *Server) CreateDB(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("sift_%d", s.dbCount.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(s.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = Password
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return name
}
