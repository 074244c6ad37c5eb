package registry

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// BenchmarkChunkedPush pushes a 64 MiB blob in 4 MiB PATCHes, with and without authentication (target: with auth
// >= 0.95x without). Each op is one whole upload to a fresh repository.
//
//	go test -run '^$' -bench ChunkedPush -benchtime 10x ./registry
func BenchmarkChunkedPush(b *testing.B) {
	blob := make([]byte, 64<<20)
	if _, err := rand.Read(blob); err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256(blob)
	dgst := "sha256:" + hex.EncodeToString(sum[:])
	for _, mode := range []string{"no-auth", "auth"} {
		base := strings.TrimSuffix(benchServer(b, mode), "/v2/team-a/app/manifests/1")
		b.Run(mode, func(b *testing.B) {
			b.SetBytes(int64(len(blob)))
			for i := range b.N {
				if err := chunkedUpload(base, fmt.Sprintf("team-a/push%d", i), blob, 4<<20, dgst, mode != "no-auth"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func chunkedUpload(base, repo string, blob []byte, chunk int, dgst string, auth bool) error {
	step := func(method, u string, body []byte, cr string, want int) (string, error) {
		req, _ := http.NewRequest(method, u, bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		if body != nil {
			req.Header.Set("Content-Type", "application/octet-stream")
			req.Header.Set("Content-Range", cr)
		}
		if auth {
			req.SetBasicAuth("ci", "ci-pw")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			return "", fmt.Errorf("%s %s: %d", method, u, resp.StatusCode)
		}
		loc, err := url.Parse(base)
		if err != nil {
			return "", err
		}
		next, err := loc.Parse(resp.Header.Get("Location"))
		if err != nil {
			return "", err
		}
		return next.String(), nil
	}
	loc, err := step(http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/", nil, "", http.StatusAccepted)
	if err != nil {
		return err
	}
	for off := 0; off < len(blob); off += chunk {
		end := min(off+chunk, len(blob))
		if loc, err = step(http.MethodPatch, loc, blob[off:end], fmt.Sprintf("%d-%d", off, end-1), http.StatusAccepted); err != nil {
			return err
		}
	}
	u, _ := url.Parse(loc)
	q := u.Query()
	q.Set("digest", dgst)
	u.RawQuery = q.Encode()
	_, err = step(http.MethodPut, u.String(), nil, "", http.StatusCreated)
	return err
}
