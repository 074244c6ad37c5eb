package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type rpsCase struct {
	method      string
	concurrency int
}

var rpsCases = []rpsCase{{http.MethodHead, 1}, {http.MethodHead, 16}, {http.MethodGet, 1}, {http.MethodGet, 16}}

type results struct {
	servers []string
	rps     map[rpsCase]map[string]float64
	cpu     map[rpsCase]map[string]time.Duration // server CPU time per request
	errors  map[rpsCase]map[string]int64
	pushMBs map[string]float64
	crane   map[string]time.Duration
}

var client = &http.Client{Transport: &http.Transport{
	MaxIdleConns: 64, MaxIdleConnsPerHost: 64, DisableCompression: true,
}}

const manifestPath = "/v2/bench/app/manifests/latest"

const manifestAccept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"

func measure(ctx context.Context, cfg config, servers []*server, work string) (*results, error) {
	r := &results{rps: map[rpsCase]map[string]float64{}, cpu: map[rpsCase]map[string]time.Duration{}, errors: map[rpsCase]map[string]int64{},
		pushMBs: map[string]float64{}, crane: map[string]time.Duration{}}
	for _, s := range servers {
		r.servers = append(r.servers, s.name)
	}
	// Servers take turns, in short rounds, so background load on this shared machine hits all of them alike.
	const rounds = 6
	for _, c := range rpsCases {
		r.rps[c], r.cpu[c], r.errors[c] = map[string]float64{}, map[string]time.Duration{}, map[string]int64{}
		ok, elapsed, cpu := map[string]int64{}, map[string]time.Duration{}, map[string]time.Duration{}
		for _, s := range servers {
			// Warm up: connections, caches, and the first (bcrypt) verification.
			if err := manifestOnce(ctx, s, c.method, "http://"+s.addr+manifestPath); err != nil {
				return nil, fmt.Errorf("%s %s: %w", s.name, c.method, err)
			}
		}
		for range rounds {
			for _, s := range servers {
				cpu0, err := s.cpuTime()
				if err != nil {
					return nil, err
				}
				n, errs, d, err := manifestRequests(ctx, s, c, cfg.duration/rounds)
				if err != nil {
					return nil, fmt.Errorf("%s %s c=%d: %w", s.name, c.method, c.concurrency, err)
				}
				cpu1, err := s.cpuTime()
				if err != nil {
					return nil, err
				}
				ok[s.name] += n
				elapsed[s.name] += d
				cpu[s.name] += cpu1 - cpu0
				r.errors[c][s.name] += errs
			}
		}
		for _, s := range servers {
			r.rps[c][s.name] = float64(ok[s.name]) / elapsed[s.name].Seconds()
			if ok[s.name] > 0 {
				r.cpu[c][s.name] = cpu[s.name] / time.Duration(ok[s.name])
			}
			fmt.Fprintf(os.Stderr, "%-12s %-4s c=%-2d %9.0f req/s %9v CPU/req\n", s.name, c.method, c.concurrency,
				r.rps[c][s.name], r.cpu[c][s.name])
		}
	}
	blob := make([]byte, cfg.blobMB<<20)
	if _, err := rand.Read(blob); err != nil {
		return nil, err
	}
	registries := servers[:0:0]
	for _, s := range servers {
		if s.name != fileServerName {
			registries = append(registries, s)
		}
	}
	for round := range 3 { // best of three, each round in another order: the first server writes to a colder disk
		for i := range registries {
			s := registries[(i+round)%len(registries)]
			mbs, err := chunkedPush(ctx, s, blob, cfg.chunkMB<<20, round)
			if err != nil {
				return nil, fmt.Errorf("%s chunked push: %w", s.name, err)
			}
			r.pushMBs[s.name] = max(r.pushMBs[s.name], mbs)
			fmt.Fprintf(os.Stderr, "%-12s chunked push %7.1f MB/s\n", s.name, mbs)
		}
	}
	for round := range 2 { // best of two, a new image each round
		img, err := random.Image(int64(cfg.layerMB)<<20, 4)
		if err != nil {
			return nil, err
		}
		tar := filepath.Join(work, "image.tar")
		tag, _ := name.NewTag("bench/crane:v1")
		if err := tarball.WriteToFile(tar, tag, img); err != nil {
			return nil, err
		}
		for i := range registries {
			s := registries[(i+round)%len(registries)]
			d, err := cranePush(ctx, cfg.crane, s, tar, work, round)
			if err != nil {
				return nil, fmt.Errorf("%s crane push: %w", s.name, err)
			}
			if old, ok := r.crane[s.name]; !ok || d < old {
				r.crane[s.name] = d
			}
			fmt.Fprintf(os.Stderr, "%-12s crane push %v\n", s.name, d.Round(time.Millisecond))
		}
	}
	return r, nil
}

func (s *server) authorize(req *http.Request) {
	if s.user != "" {
		req.SetBasicAuth(s.user, s.pass)
	}
}

// manifestRequests sends manifest requests from c.concurrency workers for d and returns the successful and failed
// requests and the time taken.
func manifestRequests(ctx context.Context, s *server, c rpsCase, d time.Duration) (int64, int64, time.Duration, error) {
	u := "http://" + s.addr + manifestPath
	var ok, failed atomic.Int64
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range c.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if manifestOnce(ctx, s, c.method, u) == nil {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return ok.Load(), failed.Load(), time.Since(start), ctx.Err()
}

func manifestOnce(ctx context.Context, s *server, method, u string) error {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", manifestAccept)
	s.authorize(req)
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", res.StatusCode)
	}
	return nil
}

// chunkedPush uploads blob with POST, one PATCH per chunk and a closing PUT, and returns MB/s (MiB).
func chunkedPush(ctx context.Context, s *server, blob []byte, chunk, round int) (float64, error) {
	sum := sha256.Sum256(blob)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	base, _ := url.Parse("http://" + s.addr)
	start := time.Now()
	loc, err := uploadStep(ctx, s, http.MethodPost, base.JoinPath(fmt.Sprintf("/v2/bench/push%d/blobs/uploads/", round)).String(), nil, "", http.StatusAccepted)
	if err != nil {
		return 0, err
	}
	for off := 0; off < len(blob); off += chunk {
		end := min(off+chunk, len(blob))
		u, err := base.Parse(loc)
		if err != nil {
			return 0, err
		}
		loc, err = uploadStep(ctx, s, http.MethodPatch, u.String(), blob[off:end], fmt.Sprintf("%d-%d", off, end-1), http.StatusAccepted)
		if err != nil {
			return 0, err
		}
	}
	u, err := base.Parse(loc)
	if err != nil {
		return 0, err
	}
	q := u.Query()
	q.Set("digest", digest)
	u.RawQuery = q.Encode()
	if _, err := uploadStep(ctx, s, http.MethodPut, u.String(), nil, "", http.StatusCreated); err != nil {
		return 0, err
	}
	return float64(len(blob)) / (1 << 20) / time.Since(start).Seconds(), nil
}

func uploadStep(ctx context.Context, s *server, method, u string, body []byte, contentRange string, want int) (string, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.ContentLength = int64(len(body))
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Content-Range", contentRange)
	}
	s.authorize(req)
	res, err := client.Do(req)
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != want {
		return "", fmt.Errorf("%s: status %d, want %d", method, res.StatusCode, want)
	}
	return res.Header.Get("Location"), nil
}

// cranePush times `crane push` of the 4-layer image tarball, with credentials in a private DOCKER_CONFIG.
func cranePush(ctx context.Context, crane string, s *server, tar, work string, round int) (time.Duration, error) {
	dcfg := filepath.Join(work, "docker-"+s.name)
	if err := os.MkdirAll(dcfg, 0o700); err != nil {
		return 0, err
	}
	conf := `{"auths":{}}`
	if s.user != "" {
		conf = fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, s.addr, base64.StdEncoding.EncodeToString([]byte(s.user+":"+s.pass)))
	}
	if err := os.WriteFile(filepath.Join(dcfg, "config.json"), []byte(conf), 0o600); err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, crane, "push", "--insecure", tar, fmt.Sprintf("%s/bench/crane%d:v1", s.addr, round))
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dcfg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%w: %s", err, out.String())
	}
	return time.Since(start), nil
}

func (r *results) print(w io.Writer, cfg config) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "measurement\t")
	for _, s := range r.servers {
		fmt.Fprintf(tw, "%s\t", s)
	}
	fmt.Fprintf(tw, "rk-auth/rk-noauth\trk-auth/stock-auth\tstock-auth/stock-noauth\trk-auth/FileServer\t\n")
	ratio := func(a, b float64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx", a/b)
	}
	for _, c := range rpsCases {
		m := r.rps[c]
		fmt.Fprintf(tw, "manifest %s c=%d (req/s)\t", c.method, c.concurrency)
		for _, s := range r.servers {
			fmt.Fprintf(tw, "%.0f\t", m[s])
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", ratio(m["rk-auth"], m["rk-noauth"]), ratio(m["rk-auth"], m["stock-auth"]),
			ratio(m["stock-auth"], m["stock-noauth"]), ratio(m["rk-auth"], m[fileServerName]))
	}
	for _, c := range rpsCases {
		m := r.cpu[c]
		fmt.Fprintf(tw, "  server CPU per request (µs)\t")
		for _, s := range r.servers {
			fmt.Fprintf(tw, "%.0f\t", float64(m[s])/float64(time.Microsecond))
		}
		// For CPU, lower is better: print efficiency (noauth CPU / auth CPU), comparable to the req/s ratios.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", ratio(float64(m["rk-noauth"]), float64(m["rk-auth"])),
			ratio(float64(m["stock-auth"]), float64(m["rk-auth"])), ratio(float64(m["stock-noauth"]), float64(m["stock-auth"])),
			ratio(float64(m[fileServerName]), float64(m["rk-auth"])))
	}
	p := r.pushMBs
	fmt.Fprintf(tw, "chunked push %d MiB / %d MiB chunks (MB/s)\t", cfg.blobMB, cfg.chunkMB)
	for _, s := range r.servers {
		fmt.Fprintf(tw, "%s\t", orDash(s, fmt.Sprintf("%.1f", p[s])))
	}
	fmt.Fprintf(tw, "%s\t%s\t%s\t\n", ratio(p["rk-auth"], p["rk-noauth"]), ratio(p["rk-auth"], p["stock-auth"]),
		ratio(p["stock-auth"], p["stock-noauth"]))
	c := r.crane
	fmt.Fprintf(tw, "crane push 4x%d MiB layers (s)\t", cfg.layerMB)
	for _, s := range r.servers {
		fmt.Fprintf(tw, "%s\t", orDash(s, fmt.Sprintf("%.2f", c[s].Seconds())))
	}
	// For times, lower is better: print the speed-up (stock time / registry-kit time) in the middle column.
	fmt.Fprintf(tw, "%s\t%s\t%s\t\n", ratio(c["rk-auth"].Seconds(), c["rk-noauth"].Seconds()),
		ratio(c["stock-auth"].Seconds(), c["rk-auth"].Seconds())+" faster", ratio(c["stock-auth"].Seconds(), c["stock-noauth"].Seconds()))
	_ = tw.Flush()
	for _, cs := range rpsCases {
		for _, s := range r.servers {
			if n := r.errors[cs][s]; n > 0 {
				fmt.Fprintf(w, "note: %s %s c=%d had %d failed requests\n", s, cs.method, cs.concurrency, n)
			}
		}
	}
}

// orDash is v, or "-" for the FileServer, which takes no part in the push rows.
func orDash(server, v string) string {
	if server == fileServerName {
		return "-"
	}
	return v
}
