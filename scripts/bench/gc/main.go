// Command gc is the garbage-collection benchmark (scripts/bench/gc.sh): mark+sweep time of `registry-kit gc` and of
// stock `registry garbage-collect` on identical copies of a filesystem store holding N manifests (a quarter of them
// deleted, so there is garbage; uploads are not purged, as stock does not), then authenticated manifest HEAD requests/s against registry-kit serve while it
// collects every second, relative to the same server without collection.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/registry-kit/registry-kit/scripts/bench/internal/benchserver"
)

type config struct {
	benchserver.Binaries
	manifests []int
	duration  time.Duration
	conc      int
}

func main() {
	var cfg config
	cfg.RegisterFlags(flag.CommandLine)
	var sizes string
	flag.StringVar(&sizes, "manifests", "1000,10000", "store sizes to collect, comma-separated")
	flag.DurationVar(&cfg.duration, "d", 5*time.Second, "length of each HEAD requests/s measurement")
	flag.IntVar(&cfg.conc, "c", 16, "concurrent HEAD clients")
	flag.Parse()
	for _, f := range bytes.Split([]byte(sizes), []byte(",")) {
		var n int
		if _, err := fmt.Sscan(string(f), &n); err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "gc bench: -manifests: %q is not a positive number\n", f)
			os.Exit(2)
		}
		cfg.manifests = append(cfg.manifests, n)
	}
	os.Exit(benchserver.Main("gc bench", "registry-kit-gc-bench-", func(ctx context.Context, work string) error { return run(ctx, cfg, work) }))
}

func run(ctx context.Context, cfg config, work string) error {
	if err := cfg.Resolve(ctx, work); err != nil {
		return err
	}
	fmt.Printf("| manifests | registry-kit gc | stock garbage-collect | ratio (stock/registry-kit) | blobs removed (rk, stock) |\n|---|---|---|---|---|\n")
	var last string
	var lastTags []string
	for _, n := range cfg.manifests {
		dir := filepath.Join(work, fmt.Sprintf("store-%d", n))
		tags, err := populate(ctx, cfg, dir, n)
		if err != nil {
			return err
		}
		rkDir, stockDir := dir+"-rk", dir+"-stock"
		for _, d := range []string{rkDir, stockDir} {
			if out, err := exec.CommandContext(ctx, "cp", "-a", dir, d).CombinedOutput(); err != nil {
				return fmt.Errorf("copying the store: %v: %s", err, out)
			}
		}
		rkTime, rkOut, err := timed(exec.CommandContext(ctx, cfg.RK, "gc", "--window=0", "--upload-age=0", "--data-dir", rkDir, "--log-level", "error"))
		if err != nil {
			return fmt.Errorf("registry-kit gc: %w\n%s", err, rkOut)
		}
		stockCfg := filepath.Join(work, "stock-gc.yml")
		if err := os.WriteFile(stockCfg, []byte("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: "+stockDir+"\n"), 0o600); err != nil {
			return err
		}
		stock := exec.CommandContext(ctx, cfg.Stock, "garbage-collect", "--quiet", stockCfg)
		stock.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
		stockTime, stockOut, err := timed(stock)
		if err != nil {
			return fmt.Errorf("stock garbage-collect: %w\n%s", err, stockOut)
		}
		fmt.Printf("| %d | %s | %s | %.2f× | %d, %d |\n", n, rkTime.Round(time.Millisecond), stockTime.Round(time.Millisecond),
			stockTime.Seconds()/rkTime.Seconds(), bytes.Count(rkOut, []byte("removed blob ")), countBlobs(dir)-countBlobs(stockDir))
		os.RemoveAll(dir)
		os.RemoveAll(stockDir)
		last, lastTags = rkDir, tags
	}
	return headDuringGC(ctx, cfg, work, last, lastTags)
}

func timed(cmd *exec.Cmd) (time.Duration, []byte, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	return time.Since(start), out.Bytes(), err
}

func countBlobs(dir string) int {
	n := 0
	filepath.Walk(filepath.Join(dir, "docker/registry/v2/blobs"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && fi.Name() == "data" {
			n++
		}
		return nil
	})
	return n
}

// populate pushes n manifests through a registry-kit serve (no auth) into dir, 20 repositories, 50 shared layers,
// one config each, then deletes every fourth manifest. It returns the "repo:tag" references left.
func populate(ctx context.Context, cfg config, dir string, n int) ([]string, error) {
	addr, err := benchserver.FreeAddr()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir+"-log", 0o700); err != nil {
		return nil, err
	}
	p, err := benchserver.StartIn(ctx, dir+"-log", cfg.RK, append(benchserver.ServeArgs(addr, dir, "", "error", ""), "--delete-enabled")...)
	if err != nil {
		return nil, err
	}
	defer p.Stop()
	if err := p.WaitRegistry(addr); err != nil {
		return nil, err
	}
	base := "http://" + addr
	layers := make([]desc, 50)
	for i := range layers {
		if layers[i], err = putBlob(base, "r0", []byte(fmt.Sprintf("layer %d %s", i, bytes.Repeat([]byte("x"), 1024)))); err != nil {
			return nil, err
		}
		layers[i].MediaType = "application/vnd.oci.image.layer.v1.tar"
	}
	var next atomic.Int64
	var mu sync.Mutex
	var tags []string
	var firstErr error
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				repo, tag := fmt.Sprintf("r%d", i%20), fmt.Sprintf("t%d", i)
				keep, err := pushManifest(base, repo, tag, i, layers[i%len(layers)], i%4 == 3)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if keep {
					tags = append(tags, repo+":"+tag)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	fmt.Fprintf(os.Stderr, "populated %d manifests (%d kept)\n", n, len(tags))
	return tags, firstErr
}

type desc struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int    `json:"size"`
}

func putBlob(base, repo string, data []byte) (desc, error) {
	sum := sha256.Sum256(data)
	d := "sha256:" + hex.EncodeToString(sum[:])
	resp, err := http.Post(base+"/v2/"+repo+"/blobs/uploads/?digest="+d, "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		return desc{}, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return desc{}, fmt.Errorf("uploading blob to %s: %s", repo, resp.Status)
	}
	return desc{Digest: d, Size: len(data), MediaType: "application/vnd.oci.image.config.v1+json"}, nil
}

func pushManifest(base, repo, tag string, i int, layer desc, del bool) (bool, error) {
	cfg, err := putBlob(base, repo, []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","i":%d}`, i)))
	if err != nil {
		return false, err
	}
	if repo != "r0" { // link the shared layer into this repository
		resp, err := http.Post(base+"/v2/"+repo+"/blobs/uploads/?mount="+layer.Digest+"&from=r0", "", nil)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
	}
	body, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": cfg, "layers": []desc{layer}})
	req, _ := http.NewRequest(http.MethodPut, base+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return false, fmt.Errorf("putting manifest %s:%s: %s", repo, tag, resp.Status)
	}
	if !del {
		return true, nil
	}
	req, _ = http.NewRequest(http.MethodDelete, base+"/v2/"+repo+"/manifests/"+resp.Header.Get("Docker-Content-Digest"), nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return false, fmt.Errorf("deleting %s:%s: %s", repo, tag, resp.Status)
	}
	return false, nil
}

// headDuringGC measures authenticated manifest HEADs/s on the collected store without and with collection every
// second (window 2h: each run walks the whole store and fences, nothing is deleted).
func headDuringGC(ctx context.Context, cfg config, work, dir string, tags []string) error {
	htpasswd, user, pass, err := benchserver.WriteHtpasswd(work, 10)
	if err != nil {
		return err
	}
	rate := func(extra ...string) (float64, error) {
		addr, err := benchserver.FreeAddr()
		if err != nil {
			return 0, err
		}
		if err := os.MkdirAll(filepath.Join(work, "head-log"), 0o700); err != nil {
			return 0, err
		}
		p, err := benchserver.StartIn(ctx, filepath.Join(work, "head-log"), cfg.RK,
			append(benchserver.ServeArgs(addr, dir, "", "info", htpasswd), extra...)...)
		if err != nil {
			return 0, err
		}
		defer p.Stop()
		if err := p.WaitRegistry(addr); err != nil {
			return 0, err
		}
		time.Sleep(1500 * time.Millisecond) // let the first collection start
		var ok atomic.Int64
		end := time.Now().Add(cfg.duration)
		var wg sync.WaitGroup
		for c := range cfg.conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rnd := rand.New(rand.NewPCG(uint64(c), 1))
				for time.Now().Before(end) {
					repo, tag, _ := bytes.Cut([]byte(tags[rnd.IntN(len(tags))]), []byte(":"))
					req, _ := http.NewRequest(http.MethodHead, "http://"+addr+"/v2/"+string(repo)+"/manifests/"+string(tag), nil)
					req.SetBasicAuth(user, pass)
					req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						continue
					}
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						ok.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		return float64(ok.Load()) / cfg.duration.Seconds(), nil
	}
	without, err := rate()
	if err != nil {
		return err
	}
	with, err := rate("--gc-interval=1s")
	if err != nil {
		return err
	}
	fmt.Printf("\nauthenticated manifest HEAD c=%d on %d tags: %.0f/s without GC, %.0f/s while collecting every second: %.2f× (goal ≥ 0.8×)\n",
		cfg.conc, len(tags), without, with, with/without)
	return nil
}
