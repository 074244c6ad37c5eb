package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-kit/registry-kit/scripts/bench/internal/benchserver"
)

// server is one registry under test; user is "" when it runs without auth.
type server struct {
	name, dir, addr string
	user, pass      string
	proc            *benchserver.Process
}

func (s *server) start(ctx context.Context, cfg config, htpasswdFile string) error {
	addr, err := benchserver.FreeAddr()
	if err != nil {
		return err
	}
	s.addr = addr
	data := filepath.Join(s.dir, "data")
	auth := ""
	if s.user != "" {
		auth = htpasswdFile
	}
	switch s.name {
	case fileServerName:
		files := filepath.Join(s.dir, "files")
		if err := os.MkdirAll(files, 0o755); err != nil {
			return err
		}
		if s.proc, err = benchserver.StartFileServer(ctx, s.dir, addr, files); err != nil {
			return err
		}
		return s.proc.WaitReady("http://" + addr + "/")
	case "rk-auth", "rk-noauth":
		s.proc, err = benchserver.StartIn(ctx, s.dir, cfg.RK, benchserver.ServeArgs(addr, data, "", "warn", auth)...)
	default:
		s.proc, err = benchserver.StartStock(ctx, cfg.Stock, s.dir, benchserver.StockConfig{
			RootDir: data, Addr: addr, LogLevel: "warn", Delete: true, Htpasswd: auth,
		})
	}
	if err != nil {
		return err
	}
	return s.proc.WaitRegistry(addr)
}

func (s *server) stop() { s.proc.Stop() }

// cpuTime is the user+system CPU time the server process has used.
func (s *server) cpuTime() (time.Duration, error) {
	d, err := s.proc.CPUTime()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", s.name, err)
	}
	return d, nil
}

func stopAll(servers []*server) {
	for _, s := range servers {
		s.stop()
	}
}

func (s *server) auth() authn.Authenticator {
	if s.user == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: s.user, Password: s.pass}
}

// fileServerName is the plain http.FileServer serving the same manifest bytes at the same path, the ceiling the
// manifest rows compare with; it takes no part in the push rows.
const fileServerName = "FileServer"

// seedFiles writes the manifest from registry from into the FileServer's directory at the manifest's URL path.
func (s *server) seedFiles(ctx context.Context, from *server) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+from.addr+manifestPath, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", manifestAccept)
	from.authorize(req)
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		return fmt.Errorf("reading the manifest from %s: %d %v", from.name, res.StatusCode, err)
	}
	p := filepath.Join(s.dir, "files", filepath.FromSlash(manifestPath))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

// seed pushes the small image the manifest benchmark reads.
func (s *server) seed(ctx context.Context) error {
	img, err := random.Image(1024, 2)
	if err != nil {
		return err
	}
	ref, err := name.NewTag(s.addr+"/bench/app:latest", name.Insecure)
	if err != nil {
		return err
	}
	return remote.Write(ref, img, remote.WithAuth(s.auth()), remote.WithContext(ctx))
}
