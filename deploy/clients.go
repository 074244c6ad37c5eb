package deploy

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// FieldManager is the server-side apply field manager every deploy uses; undeploy removes what it owns.
const FieldManager = "registry-kit"

// ErrUnreachable is returned (wrapped) when the API server cannot be reached at all.
var ErrUnreachable = errors.New("cannot reach the Kubernetes API server")

// ErrForbidden is returned (wrapped) when RBAC refuses a request deploy or undeploy needs.
var ErrForbidden = errors.New("not allowed by RBAC")

// Clients are the cluster connections deploy needs: a dynamic client and a REST mapper to apply any object, and a
// typed clientset to read pods, events and nodes while waiting.
type Clients struct {
	Dynamic dynamic.Interface
	Mapper  meta.RESTMapper
	Kube    kubernetes.Interface
}

func (c Clients) validate() error {
	var errs []error
	if c.Dynamic == nil {
		errs = append(errs, errors.New("no dynamic client"))
	}
	if c.Mapper == nil {
		errs = append(errs, errors.New("no REST mapper"))
	}
	if c.Kube == nil {
		errs = append(errs, errors.New("no Kubernetes clientset"))
	}
	return errors.Join(errs...)
}

func discardLogger(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// explain turns the API errors a user can act on into messages that say what to do, keeping the original wrapped.
// verb and what ("patch", "deployments.apps \"registry\" in namespace \"x\"") describe the failed request.
func explain(err error, verb, what string) error {
	if err == nil {
		return nil
	}
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%w: cannot %s %s (grant it with the role from `registry-kit deploy --print-rbac`): %w", ErrForbidden, verb, what, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("the cluster rejected the kubeconfig credentials (expired token or certificate?) while trying to %s %s: %w", verb, what, err)
	case isConnectionError(err):
		return fmt.Errorf("%w (is the cluster running and is the kubeconfig context the right one?): %w", ErrUnreachable, err)
	}
	return fmt.Errorf("%s %s: %w", verbing(verb), what, err)
}

func verbing(verb string) string {
	switch verb {
	case "get":
		return "getting"
	case "list":
		return "listing"
	case "patch":
		return "applying"
	case "delete":
		return "deleting"
	}
	return verb
}

func isConnectionError(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) && urlErr.Timeout() {
		return true
	}
	return false
}

// Explain turns a client-go error into one that says what to do when it is a connection, authentication or RBAC
// problem (wrapping ErrUnreachable or ErrForbidden), and returns other errors as they are.
func Explain(err error) error {
	if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || isConnectionError(err) {
		return explain(err, "reach", "the API server")
	}
	return err
}
