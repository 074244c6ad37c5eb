package registry

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/distribution/distribution/v3/registry/api/errcode"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/google/go-cmp/cmp"
)

// storagePath is an absolute server path as distribution's filesystem driver puts it in its errors.
const storagePath = "/var/lib/registry/docker/registry/v2/repositories/app/_uploads/0d4c/data"

// distributionError answers as distribution's handlers do when the storage driver fails with err.
func distributionError(err error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
		_ = errcode.ServeJSON(w, errcode.ErrorCodeUnknown.WithDetail(storagedriver.Error{DriverName: "filesystem", Detail: err}))
	})
}

func TestInsufficientStorage(t *testing.T) {
	noSpace := &fs.PathError{Op: "write", Path: storagePath, Err: syscall.ENOSPC}
	fullBody := `{"errors":[{"code":"UNKNOWN","message":"insufficient storage: the registry's storage is full (no space left on device)"}]}` + "\n"
	accepted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "/v2/app/blobs/uploads/0d4c")
		w.WriteHeader(http.StatusAccepted)
	})
	tests := []struct {
		name, method, path string
		next               http.Handler
		wantStatus         int
		wantBody           string // exact, except for a 500, which must be distribution's body passed through
	}{
		{name: "full disk on PATCH", method: "PATCH", path: "/v2/app/blobs/uploads/0d4c", next: distributionError(noSpace),
			wantStatus: http.StatusInsufficientStorage, wantBody: fullBody},
		{name: "full disk on monolithic PUT", method: "PUT", path: "/v2/app/blobs/uploads/0d4c?digest=sha256:1", next: distributionError(noSpace),
			wantStatus: http.StatusInsufficientStorage, wantBody: fullBody},
		{name: "full disk on manifest PUT", method: "PUT", path: "/v2/app/manifests/v1", next: distributionError(noSpace),
			wantStatus: http.StatusInsufficientStorage, wantBody: fullBody},
		{name: "full disk on POST", method: "POST", path: "/v2/app/blobs/uploads/", next: distributionError(noSpace),
			wantStatus: http.StatusInsufficientStorage, wantBody: fullBody},
		{name: "other storage error kept", method: "PATCH", path: "/v2/app/blobs/uploads/0d4c",
			next:       distributionError(&fs.PathError{Op: "open", Path: storagePath, Err: syscall.EACCES}),
			wantStatus: http.StatusInternalServerError},
		{name: "reads not watched", method: "GET", path: "/v2/app/blobs/sha256:1", next: distributionError(noSpace),
			wantStatus: http.StatusInternalServerError},
		{name: "success untouched", method: "PATCH", path: "/v2/app/blobs/uploads/0d4c", next: accepted,
			wantStatus: http.StatusAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			insufficientStorage(tt.next).ServeHTTP(w, httptest.NewRequest(tt.method, "http://reg"+tt.path, nil))
			if diff := cmp.Diff(tt.wantStatus, w.Code); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			body := w.Body.String()
			switch {
			case tt.wantStatus == http.StatusInternalServerError:
				if !strings.Contains(body, storagePath) {
					t.Errorf("the passed-through 500 lost distribution's body: %s", body)
				}
			default:
				if diff := cmp.Diff(tt.wantBody, body); diff != "" {
					t.Errorf("body (-want +got):\n%s", diff)
				}
			}
			if tt.wantStatus == http.StatusInsufficientStorage {
				if got := w.Header().Get("Content-Type"); got != "application/json" {
					t.Errorf("Content-Type = %q", got)
				}
				if got := w.Header().Get("Docker-Distribution-Api-Version"); got != "registry/2.0" {
					t.Errorf("Docker-Distribution-Api-Version = %q, want distribution's header kept", got)
				}
			}
		})
	}
}

// TestInsufficientStorageLargeError: a 500 with a body too large to be distribution's error passes through whole.
func TestInsufficientStorageLargeError(t *testing.T) {
	big := strings.Repeat("x", maxHeldErrorBody) + syscall.ENOSPC.Error()
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		for i := 0; i < len(big); i += 1000 {
			_, _ = w.Write([]byte(big[i:min(i+1000, len(big))]))
		}
	})
	w := httptest.NewRecorder()
	insufficientStorage(next).ServeHTTP(w, httptest.NewRequest("PUT", "http://reg/v2/app/manifests/v1", nil))
	if w.Code != http.StatusInternalServerError || w.Body.String() != big {
		t.Errorf("got %d with %d bytes, want 500 with the %d bytes written", w.Code, w.Body.Len(), len(big))
	}
}
