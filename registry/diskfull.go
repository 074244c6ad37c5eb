package registry

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"syscall"

	"github.com/distribution/distribution/v3/registry/api/errcode"
)

// errNoSpace is how a full disk shows in distribution's error detail (syscall.ENOSPC's text).
var errNoSpace = []byte(syscall.ENOSPC.Error())

// maxHeldErrorBody bounds how much of a 500 response is held back to look for errNoSpace; distribution's error bodies
// are a few hundred bytes.
const maxHeldErrorBody = 64 << 10

// insufficientStorage answers a write that failed because the storage is full with 507 Insufficient Storage and a
// message naming the cause, instead of distribution's 500 UNKNOWN whose detail holds the absolute path of the file it
// could not write. Only POST, PUT and PATCH under /v2/ are watched, and only a 500 is held back: every other response,
// and every read (with the blob fast path's sendfile), passes straight through.
func insufficientStorage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v2/") || (r.Method != http.MethodPost && r.Method != http.MethodPut && r.Method != http.MethodPatch) {
			next.ServeHTTP(w, r)
			return
		}
		nw := &noSpaceWriter{ResponseWriter: w}
		defer nw.finish()
		next.ServeHTTP(nw, r)
	})
}

// noSpaceWriter holds back a 500 response's body until the handler is done, to replace it when it reports a full disk.
type noSpaceWriter struct {
	http.ResponseWriter
	wroteHeader bool
	holding     bool // a 500 whose header and body are held
	held        bytes.Buffer
}

func (w *noSpaceWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *noSpaceWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	if code == http.StatusInternalServerError {
		w.holding = true
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *noSpaceWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.holding {
		return w.ResponseWriter.Write(p)
	}
	if w.held.Len()+len(p) > maxHeldErrorBody { // not an error body of distribution's: give up holding
		w.release()
		return w.ResponseWriter.Write(p)
	}
	return w.held.Write(p)
}

// release sends the held 500 as it was.
func (w *noSpaceWriter) release() {
	w.holding = false
	w.ResponseWriter.WriteHeader(http.StatusInternalServerError)
	_, _ = w.ResponseWriter.Write(w.held.Bytes())
	w.held.Reset()
}

func (w *noSpaceWriter) finish() {
	if !w.holding {
		return
	}
	if !bytes.Contains(w.held.Bytes(), errNoSpace) {
		w.release()
		return
	}
	w.holding = false
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "application/json")
	w.ResponseWriter.WriteHeader(http.StatusInsufficientStorage)
	_ = json.NewEncoder(w.ResponseWriter).Encode(errcode.Errors{
		errcode.ErrorCodeUnknown.WithMessage("insufficient storage: the registry's storage is full (" + string(errNoSpace) + ")"),
	})
}
