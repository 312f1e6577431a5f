// Package vaulttest runs a real Vault dev server for tests: the binary
// .ci/build-vault builds from tools/vault, on 127.0.0.1, stopped by the
// test's cleanup.
package vaulttest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// Binary finds the Vault server the integration tests run: $SIFT_VAULT_BIN,
// then vault on $PATH, then the one .ci/build-vault caches for the pinned
// tools/vault/go.sum. Outside CI a missing binary skips the test; in CI it
// fails it.
func Binary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SIFT_VAULT_BIN"); p != "" {
		return p
	}
	if p, err := exec.LookPath("vault"); err == nil {
		return p
	}
	_, self, _, _ := runtime.Caller(0)
	if sum, err := os.ReadFile(filepath.Join(filepath.Dir(self), "..", "..", "tools", "vault", "go.sum")); err == nil {
		h := sha256.Sum256(sum)
		cache := os.Getenv("SIFT_CACHE")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache", "sift")
		}
		p := filepath.Join(cache, "vault", hex.EncodeToString(h[:])[:16], "vault")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no vault binary: run .ci/build-vault (it builds the version pinned in tools/vault) or set SIFT_VAULT_BIN")
	}
	t.Skip("no vault binary (build it with .ci/build-vault, or set SIFT_VAULT_BIN); skipping the Vault integration test")
	return ""
}

// Server is a `vault server -dev` on 127.0.0.1, stopped by Cleanup.
type Server struct {
	Addr string
	// CAFile is the CA of a TLS server's certificate.
	CAFile string
	Root   *vaultapi.Client
	cmd    *exec.Cmd
	out    *syncBuffer

	stopOnce sync.Once
	done     chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// freePort returns a port nothing listens on at the moment.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func Start(t *testing.T) *Server {
	t.Helper()
	return StartWith(t, false)
}

// StartWith starts the server, with TLS when tlsOn: its CA is then
// at CAFile, and its certificate names localhost and 127.0.0.1.
func StartWith(t *testing.T, tlsOn bool) *Server {
	t.Helper()
	bin := Binary(t)
	rootToken := "root-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
		s := &Server{Addr: "http://" + addr, out: &syncBuffer{}, done: make(chan struct{})}
		args := []string{"server", "-dev", "-dev-root-token-id=" + rootToken,
			"-dev-listen-address=" + addr, "-dev-no-store-token", "-log-level=warn"}
		if tlsOn {
			certs := t.TempDir()
			args = append(args, "-dev-tls", "-dev-tls-cert-dir="+certs)
			s.Addr = "https://" + addr
			s.CAFile = filepath.Join(certs, "vault-ca.pem")
		}
		s.cmd = exec.Command(bin, args...)
		home := t.TempDir()
		s.cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "VAULT_DISABLE_MLOCK=true"}
		s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
		if err := s.cmd.Start(); err != nil {
			t.Fatalf("start vault: %v", err)
		}
		go func() { _ = s.cmd.Wait(); close(s.done) }()
		t.Cleanup(s.Stop)
		if last = s.waitReady(); last == nil {
			cfg := vaultapi.DefaultConfig()
			cfg.Address = s.Addr
			if s.CAFile != "" {
				if err := cfg.ConfigureTLS(&vaultapi.TLSConfig{CACert: s.CAFile}); err != nil {
					t.Fatal(err)
				}
			}
			root, err := vaultapi.NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			root.SetToken(rootToken)
			s.Root = root
			return s
		}
		s.Stop()
	}
	t.Fatalf("vault dev server did not start: %v", last)
	return nil
}

// waitReady polls the health endpoint until the server answers 200, or it
// exited, or a generous bound passed (a loaded machine starts it slowly).
func (s *Server) waitReady() error {
	client := &http.Client{Timeout: time.Second}
	if s.CAFile != "" {
		// Only the health answer is read; the certificate is checked by
		// the tests themselves.
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	for i := 0; i < 600; i++ {
		select {
		case <-s.done:
			return fmt.Errorf("vault exited: %s", s.out.String())
		default:
		}
		resp, err := client.Get(s.Addr + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no healthy answer from %s: %s", s.Addr, s.out.String())
}

// Stop kills the server and waits for it.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.cmd.Process != nil {
			_ = s.cmd.Process.Kill()
		}
		<-s.done
	})
}

// Setup gives the server what the tests use: a policy that reads
// secret/data/sift/*, secrets in and out of it, AppRole, and JWT auth
// checked against a static RSA key, mounted both at jwt and at kubernetes
// (the kubernetes method sends the same role and JWT; Vault's JWT check
// stands in for the cluster's TokenReview).
func (s *Server) Setup(t *testing.T, key *rsa.PrivateKey) {
	t.Helper()
	ctx := context.Background()
	r := s.Root
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.Sys().PutPolicy("sift", `path "secret/data/sift/*" { capabilities = ["read"] }`))
	_, err := r.KVv2("secret").Put(ctx, "sift/salt-eu", map[string]any{"password": "vault-pw-1"})
	must(err)
	_, err = r.KVv2("secret").Put(ctx, "other/db", map[string]any{"password": "not-for-sift"})
	must(err)
	must(r.Sys().EnableAuthWithOptions("approle", &vaultapi.EnableAuthOptions{Type: "approle"}))
	// Tokens live 6 s at most, so renewal ends and a re-login must follow.
	_, err = r.Logical().Write("auth/approle/role/sift", map[string]any{
		"token_policies": "sift", "token_ttl": "3s", "token_max_ttl": "6s",
	})
	must(err)
	_, err = r.Logical().Write("auth/approle/role/static", map[string]any{"token_policies": "sift", "token_ttl": "1m"})
	must(err)
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	must(err)
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	for _, mount := range []string{"jwt", "kubernetes"} {
		must(r.Sys().EnableAuthWithOptions(mount, &vaultapi.EnableAuthOptions{Type: "jwt"}))
		_, err = r.Logical().Write("auth/"+mount+"/config", map[string]any{"jwt_validation_pubkeys": []string{pub}, "bound_issuer": "sift-test"})
		must(err)
		_, err = r.Logical().Write("auth/"+mount+"/role/sift", map[string]any{
			"role_type": "jwt", "user_claim": "sub", "bound_audiences": []string{"vault"}, "token_policies": "sift", "token_ttl": "1m",
		})
		must(err)
	}
}

// RoleID returns the role_id of the AppRole role.
func (s *Server) RoleID(t *testing.T, role string) string {
	t.Helper()
	sec, err := s.Root.Logical().Read("auth/approle/role/" + role + "/role-id")
	if err != nil {
		t.Fatal(err)
	}
	return sec.Data["role_id"].(string)
}

// SecretID makes a new secret_id of the role; wrapped returns a
// response-wrapping token in its place.
func (s *Server) SecretID(t *testing.T, role string, wrapped bool) (value, accessor string) {
	t.Helper()
	c := s.Root
	if wrapped {
		var err error
		c, err = s.Root.Clone()
		if err != nil {
			t.Fatal(err)
		}
		c.SetToken(s.Root.Token())
		c.SetWrappingLookupFunc(func(string, string) string { return "2m" })
	}
	sec, err := c.Logical().Write("auth/approle/role/"+role+"/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	if wrapped {
		return sec.WrapInfo.Token, ""
	}
	return sec.Data["secret_id"].(string), sec.Data["secret_id_accessor"].(string)
}

// SignJWT makes an RS256 JWT for the jwt roles.
func SignJWT(t *testing.T, key *rsa.PrivateKey, sub string) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	now := time.Now()
	unsigned := enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(map[string]any{
		"iss": "sift-test", "sub": sub, "aud": "vault", "iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	sum := sha256.Sum256([]byte(unsigned))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return unsigned + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// WriteSecret writes a secret file readable by its owner only.
func WriteSecret(t *testing.T, path, v string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
