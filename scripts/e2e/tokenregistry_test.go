//go:build e2e

package e2e

// A test-only token issuer for stock distribution's `auth: token`, so doctor's live probes are tested against the
// Bearer-token challenge flow Docker Hub, Quay, Harbor and GAR use. distribution v3.1.2 (registry/auth/token) checks
// the JWT's first header: an x5c chain that verifies against rootcertbundle (used here), else a jwk/kid from jwks;
// then iss == issuer, aud contains service, exp/nbf within 60s leeway, and the "access" claim.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/registry-kit/registry-kit/internal/lockedbuf"
)

const (
	tokenIssuer  = "registry-kit-test-issuer"
	tokenService = "registry-kit-test-registry"
)

// jwtIssuer signs registry tokens with a self-signed ECDSA certificate that the registry trusts as its
// rootcertbundle.
type jwtIssuer struct {
	key  *ecdsa.PrivateKey
	cert []byte // DER
}

func newJWTIssuer(t testing.TB) *jwtIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "registry-kit test token signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &jwtIssuer{key: key, cert: der}
}

func (j *jwtIssuer) certPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: j.cert})
}

type tokenAccess struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// sign returns a compact ES256 JWT for subject with the given access.
func (j *jwtIssuer) sign(subject string, access []tokenAccess) (string, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	header, _ := json.Marshal(map[string]any{"alg": "ES256", "typ": "JWT", "x5c": []string{base64.StdEncoding.EncodeToString(j.cert)}})
	now := time.Now()
	idb := make([]byte, 8)
	_, _ = rand.Read(idb)
	if access == nil {
		access = []tokenAccess{}
	}
	claims, _ := json.Marshal(map[string]any{"iss": tokenIssuer, "sub": subject, "aud": tokenService,
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": fmt.Sprintf("%x", idb), "access": access})
	signing := b64(header) + "." + b64(claims)
	sum := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, j.key, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + b64(sig), nil
}

// tokenHandler is the token endpoint: no credentials get an anonymous token with no access (as Docker Hub gives for
// a private repository), wrong credentials get 401, right ones get what they asked for.
func (j *jwtIssuer) tokenHandler(user, pass string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("service") != tokenService {
			http.Error(w, "unknown service", http.StatusBadRequest)
			return
		}
		subject := ""
		var access []tokenAccess
		if u, p, ok := r.BasicAuth(); ok {
			if u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
				http.Error(w, `{"details":"incorrect username or password"}`, http.StatusUnauthorized)
				return
			}
			subject = u
			for _, scope := range r.URL.Query()["scope"] {
				parts := strings.Split(scope, ":") // repository:NAME:ACTIONS
				if len(parts) == 3 {
					access = append(access, tokenAccess{Type: parts[0], Name: parts[1], Actions: strings.Split(parts[2], ",")})
				}
			}
		}
		tok, err := j.sign(subject, access)
		if err != nil {
			http.Error(w, "signing failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "access_token": tok, "expires_in": 300,
			"issued_at": time.Now().UTC().Format(time.RFC3339)})
	})
}

// tokenRegistry is stock distribution (registry v3.1.2) with `auth: token` and its test token server.
type tokenRegistry struct {
	Addr       string // 127.0.0.1:PORT of the registry
	Realm      string
	User, Pass string
}

// startTokenRegistry starts the token server on 127.0.0.1 and stock distribution pointed at it. The realm names the
// token server as localhost: go-containerregistry refuses realms on loopback/private IP literals other than the
// registry's own host:port (SSRF guard), and a name is what real deployments use anyway.
func startTokenRegistry(t *testing.T) *tokenRegistry {
	t.Helper()
	iss := newJWTIssuer(t)
	tr := &tokenRegistry{User: "tokenuser", Pass: "token-Pa55-" + strconv.FormatInt(time.Now().UnixNano(), 36)}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: iss.tokenHandler(tr.User, tr.Pass), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	tr.Realm = fmt.Sprintf("http://localhost:%d/token", l.Addr().(*net.TCPAddr).Port)

	dir := t.TempDir()
	bundle := filepath.Join(dir, "token-ca.pem")
	if err := os.WriteFile(bundle, iss.certPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	tr.Addr = "127.0.0.1:" + strconv.Itoa(freePort(t))
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
  secret: registry-kit-e2e
auth:
  token:
    realm: %s
    service: %s
    issuer: %s
    rootcertbundle: %s
`, filepath.Join(dir, "data"), tr.Addr, tr.Realm, tokenService, tokenIssuer, bundle)
	done, log := runStockRegistry(t, dir, cfg)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + tr.Addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized && strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
				return tr
			}
		}
		select {
		case <-done:
			t.Fatalf("stock registry exited:\n%s", log.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("stock registry did not answer /v2/ with a Bearer challenge within 20s:\n%s", log.String())
		}
	}
}

// TestTokenIssuerAcceptedByDistribution checks the issuer itself: distribution accepts its tokens for the
// requested scope and refuses anonymous ones, so the doctor tests below test doctor, not a broken fixture.
func TestTokenIssuerAcceptedByDistribution(t *testing.T) {
	tr := startTokenRegistry(t)
	get := func(tok string) int {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+tr.Addr+"/v2/", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	token := func(user, pass string) (string, int) {
		req, _ := http.NewRequest(http.MethodGet, tr.Realm+"?service="+tokenService+"&scope=repository:app:pull", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Token string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return body.Token, resp.StatusCode
	}
	tok, code := token(tr.User, tr.Pass)
	if code != http.StatusOK || get(tok) != http.StatusOK {
		t.Errorf("a token for the right credentials: token status %d, /v2/ status %d; want 200, 200", code, get(tok))
	}
	if _, code := token(tr.User, "wrong"); code != http.StatusUnauthorized {
		t.Errorf("token for a wrong password: status %d, want 401", code)
	}
	if got := get(""); got != http.StatusUnauthorized {
		t.Errorf("/v2/ without a token: status %d, want 401", got)
	}
}

// runStockRegistry starts stock distribution (the `registry` tool) with the configuration cfg, written into dir, and
// stops it when the test ends (printing its output if the test failed). done is closed when it exits.
func runStockRegistry(t *testing.T, dir, cfg string) (done <-chan struct{}, log *lockedbuf.Buffer) {
	t.Helper()
	bin := needTool(t, "registry")
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	log = &lockedbuf.Buffer{}
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting stock registry: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("stock registry output:\n%s", log.String())
		}
	})
	return exited, log
}
