package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// repo is the repository every registry receives the blob in.
const repo = "bench/blob"

// blob is the file every server serves and every registry receives.
type blob struct {
	path   string
	size   int64
	digest string // sha256:...
}

// writeBlob writes size pseudo-random (incompressible) bytes to dir/blob.bin and returns it with its digest.
func writeBlob(dir string, size int64) (blob, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return blob{}, err
	}
	path := filepath.Join(dir, "blob.bin")
	f, err := os.Create(path)
	if err != nil {
		return blob{}, err
	}
	defer f.Close()
	var seed [32]byte
	_, _ = rand.NewChaCha8(seed).Read(seed[:]) // fixed content: runs are comparable
	src := rand.NewChaCha8(seed)
	h := sha256.New()
	buf := make([]byte, 4<<20)
	for left := size; left > 0; {
		n := int64(len(buf))
		n = min(n, left)
		_, _ = src.Read(buf[:n])
		h.Write(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			return blob{}, err
		}
		left -= n
	}
	if err := f.Close(); err != nil {
		return blob{}, err
	}
	return blob{path: path, size: size, digest: "sha256:" + hex.EncodeToString(h.Sum(nil))}, nil
}

var client = &http.Client{Transport: &http.Transport{
	Proxy:               nil, // loopback only, whatever the environment says
	DisableCompression:  true,
	MaxIdleConnsPerHost: 16,
	ReadBufferSize:      256 << 10,
	WriteBufferSize:     256 << 10,
}}

// pullURL is where a server serves the blob.
func (s *server) pullURL(b blob) string {
	if !s.registry() {
		return "http://" + s.addr + "/" + filepath.Base(b.path)
	}
	return "http://" + s.addr + "/v2/" + repo + "/blobs/" + b.digest
}

func (s *server) request(ctx context.Context, method, u string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if s.user != "" {
		req.SetBasicAuth(s.user, s.pass)
	}
	return req, nil
}

// push uploads the blob monolithically: POST to open an upload, one PUT with the whole body and the digest.
func (s *server) push(ctx context.Context, b blob) (time.Duration, error) {
	start := time.Now()
	req, err := s.request(ctx, http.MethodPost, "http://"+s.addr+"/v2/"+repo+"/blobs/uploads/", nil)
	if err != nil {
		return 0, err
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		return 0, fmt.Errorf("POST upload: status %s", res.Status)
	}
	loc, err := res.Request.URL.Parse(res.Header.Get("Location"))
	if err != nil {
		return 0, fmt.Errorf("POST upload: bad Location: %w", err)
	}
	q := loc.Query()
	q.Set("digest", b.digest)
	loc.RawQuery = q.Encode()
	f, err := os.Open(b.path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	req, err = s.request(ctx, http.MethodPut, loc.String(), f)
	if err != nil {
		return 0, err
	}
	req.ContentLength = b.size
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err = client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("PUT upload: %w", err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		return 0, fmt.Errorf("PUT upload: status %s", res.Status)
	}
	if got := res.Header.Get("Docker-Content-Digest"); got != b.digest {
		return 0, fmt.Errorf("PUT upload: registry says digest %q, want %s", got, b.digest)
	}
	return time.Since(start), nil
}

// pull downloads the blob streams times concurrently and returns the wall time.
func (s *server) pull(ctx context.Context, b blob, streams int) (time.Duration, error) {
	start := time.Now()
	errs := make([]error, streams)
	var wg sync.WaitGroup
	for i := range streams {
		wg.Go(func() { errs[i] = s.pullOnce(ctx, b) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

func (s *server) pullOnce(ctx context.Context, b blob) error {
	req, err := s.request(ctx, http.MethodGet, s.pullURL(b), nil)
	if err != nil {
		return err
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %s", redactURL(req.URL), res.Status)
	}
	if s.registry() && res.Header.Get("Docker-Content-Digest") != b.digest {
		return fmt.Errorf("GET blob: Docker-Content-Digest %q, want %s", res.Header.Get("Docker-Content-Digest"), b.digest)
	}
	buf := make([]byte, 1<<20)
	var n int64
	for {
		k, err := res.Body.Read(buf)
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading blob: %w", err)
		}
	}
	if n != b.size {
		return fmt.Errorf("GET blob: %d bytes, want %d", n, b.size)
	}
	return nil
}

func redactURL(u *url.URL) string { c := *u; c.User = nil; return c.String() }

type result struct {
	pull1, pullN, push []float64 // MiB/s per repetition
	cpuPerGiB          float64   // server CPU seconds per GiB pulled (single stream)
	idleKB, peakKB     int64
	idleAnonKB         int64
}

type results struct {
	servers []*server
	byName  map[string]*result
	sizeMB  int
}

func measure(ctx context.Context, cfg config, servers []*server, b blob) (*results, error) {
	r := &results{servers: servers, byName: map[string]*result{}, sizeMB: cfg.sizeMB}
	for _, s := range servers {
		_, idle, err := s.memKB()
		if err != nil {
			return nil, fmt.Errorf("%s: reading RSS: %w", s.name, err)
		}
		anon, err := s.proc.AnonKB()
		if err != nil {
			return nil, fmt.Errorf("%s: reading RSS: %w", s.name, err)
		}
		r.byName[s.name] = &result{idleKB: idle, idleAnonKB: anon}
	}
	mib := float64(b.size) / (1 << 20)
	for rep := range cfg.pushReps {
		for _, s := range rotate(servers, rep) {
			if !s.registry() {
				continue
			}
			d, err := s.push(ctx, b)
			if err != nil {
				return nil, fmt.Errorf("%s: push: %w", s.name, err)
			}
			r.byName[s.name].push = append(r.byName[s.name].push, mib/d.Seconds())
			fmt.Fprintf(os.Stderr, "push %d/%d %-28s %8.0f MiB/s\n", rep+1, cfg.pushReps, s.name, mib/d.Seconds())
		}
	}
	for rep := range cfg.reps {
		for _, s := range rotate(servers, rep) {
			cpu := s.cpuSeconds()
			d, err := s.pull(ctx, b, 1)
			if err != nil {
				return nil, fmt.Errorf("%s: pull: %w", s.name, err)
			}
			res := r.byName[s.name]
			res.cpuPerGiB += (s.cpuSeconds() - cpu) / (mib / 1024) / float64(cfg.reps)
			res.pull1 = append(res.pull1, mib/d.Seconds())
			fmt.Fprintf(os.Stderr, "pull %d/%d %-28s %8.0f MiB/s\n", rep+1, cfg.reps, s.name, mib/d.Seconds())
		}
	}
	if cfg.streams > 1 {
		for rep := range cfg.streamReps {
			for _, s := range rotate(servers, rep) {
				d, err := s.pull(ctx, b, cfg.streams)
				if err != nil {
					return nil, fmt.Errorf("%s: pull x%d: %w", s.name, cfg.streams, err)
				}
				v := float64(cfg.streams) * mib / d.Seconds()
				r.byName[s.name].pullN = append(r.byName[s.name].pullN, v)
				fmt.Fprintf(os.Stderr, "pull x%d %d/%d %-25s %8.0f MiB/s\n", cfg.streams, rep+1, cfg.streamReps, s.name, v)
			}
		}
	}
	for _, s := range servers {
		peak, _, err := s.memKB()
		if err != nil {
			return nil, fmt.Errorf("%s: reading peak RSS: %w", s.name, err)
		}
		r.byName[s.name].peakKB = peak
	}
	return r, nil
}

// rotate returns servers starting at index k, so no server is always measured first (right after another's
// writes, say).
func rotate(servers []*server, k int) []*server {
	k %= len(servers)
	return append(slices.Clone(servers[k:]), servers[:k]...)
}

// paired returns the median over repetitions of a[i]/b[i].
func paired(a, b []float64) float64 {
	var rs []float64
	for i := range min(len(a), len(b)) {
		rs = append(rs, a[i]/b[i])
	}
	return median(rs)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r *results) print(w io.Writer, cfg config) {
	fmt.Fprintf(w, "\nblob %d MiB over loopback; MiB/s are medians of the repetitions; RSS from /proc/PID/status\n\n", r.sizeMB)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	pullN := fmt.Sprintf("pull x%d MiB/s\t", cfg.streams)
	if cfg.streams <= 1 {
		pullN = ""
	}
	fmt.Fprintf(tw, "server\tpull MiB/s\t%spush MiB/s\tpeak RSS MiB\tidle RSS MiB\tidle anon MiB\tCPU s/GiB pulled\t\n", pullN)
	for _, s := range r.servers {
		res := r.byName[s.name]
		push := "-"
		if s.registry() {
			push = fmt.Sprintf("%.0f", median(res.push))
		}
		n := ""
		if cfg.streams > 1 {
			n = fmt.Sprintf("%.0f\t", median(res.pullN))
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s%s\t%.1f\t%.1f\t%.1f\t%.2f\t\n", s.name, median(res.pull1), n, push,
			float64(res.peakKB)/1024, float64(res.idleKB)/1024, float64(res.idleAnonKB)/1024, res.cpuPerGiB)
	}
	tw.Flush()

	fs, stock := r.byName["http.FileServer"], r.byName["distribution v3.1.2 (auth)"]
	fmt.Fprintln(w, "\nratios, each the median of the per-repetition ratios (servers are measured back to back in each repetition):")
	for _, name := range []string{"registry-kit (auth)", "registry-kit (no-auth)", "distribution v3.1.2 (auth)"} {
		res, target := r.byName[name], 0.8
		if strings.HasPrefix(name, "distribution") {
			target = 0 // for reference
		}
		ratio(w, name+" pull / FileServer", paired(res.pull1, fs.pull1), ">=", target)
		if cfg.streams > 1 {
			ratio(w, fmt.Sprintf("%s pull x%d / FileServer", name, cfg.streams), paired(res.pullN, fs.pullN), ">=", target)
		}
	}
	for _, name := range []string{"registry-kit (auth)", "registry-kit (no-auth)"} {
		res := r.byName[name]
		ratio(w, name+" push / stock", paired(res.push, stock.push), ">=", 0.9)
		ratio(w, name+" peak RSS / stock", float64(res.peakKB)/float64(stock.peakKB), "<=", 1.0)
	}
}

func ratio(w io.Writer, what string, v float64, op string, target float64) {
	if target == 0 {
		fmt.Fprintf(w, "  %-52s %5.2f  (reference)\n", what, v)
		return
	}
	ok := v >= target
	if op == "<=" {
		ok = v <= target
	}
	verdict := "met"
	if !ok {
		verdict = "MISSED"
	}
	fmt.Fprintf(w, "  %-52s %5.2f  (%s %.2f) %s\n", what, v, op, target, verdict)
}
