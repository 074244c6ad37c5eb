//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/registry-kit/registry-kit/auth/dockerconfig"
	"github.com/registry-kit/registry-kit/deploy/pullsecret"
)

// TestDeployPullOnlySecret: deploy creates the pull-only user puller and, with --pull-secret-namespaces, a pull
// secret with its credentials; a pod pulls with that secret, and the same credentials cannot push (checked from
// the host with the secret's contents); pull-secret create warns for admin's credentials and not for puller's.
func TestDeployPullOnlySecret(t *testing.T) {
	cs := kubeClient(t)
	image := registryKitImage(t)
	ns := depNamespace(t, cs, "e2e-rk-access")
	class := depUniqueName("e2e-rk-pv")
	depHostPathPV(t, cs, class, ns, "registry")
	port := depFreeNodePort(t, cs)
	appNS := newNamespace(t)

	r := depRun(t, "", "deploy", "-n", ns, "--image", image, "--node-port", fmt.Sprint(port), "--storage-class", class,
		"--storage-size", "1Gi", "--timeout", "3m", "--pull-secret-namespaces", appNS)
	m := depPasswordLine.FindStringSubmatch(r.out)
	if m == nil {
		t.Fatalf("deploy printed no generated admin password (err %v):\n%s", r.err, depRedact(r.out))
	}
	password := m[1]
	if r.err != nil {
		t.Fatalf("deploy: %v\n%s", r.err, depRedact(r.out, password))
	}
	for _, want := range []string{"secret/registry-puller created", "pull secret " + appNS + "/registry-kit-pull (user puller, pull only) created",
		"pull secret of user puller, which may pull but not push or delete", "--username puller --password-stdin"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("deploy output lacks %q:\n%s", want, depRedact(r.out, password))
		}
	}
	if strings.Contains(r.out, "--username admin") {
		t.Errorf("deploy still tells pods to pull as admin:\n%s", depRedact(r.out, password))
	}
	push := depField(r.out, "Push from this machine to:")
	prefix := strings.TrimSuffix(depField(r.out, "Image prefix for pods:"), "/")
	if prefix != fmt.Sprintf("localhost:%d", port) {
		trustRegistry(t, prefix) // the node-IP case TestDeployLifecycle explains
	}

	// The pull secret deploy made holds puller's credentials for the pull prefix.
	sec, err := cs.CoreV1().Secrets(appNS).Get(context.Background(), "registry-kit-pull", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the pull secret deploy should have created: %v", err)
	}
	cfg, err := dockerconfig.Parse(sec.Data[corev1.DockerConfigJsonKey])
	if err != nil {
		t.Fatal(err)
	}
	cred, err := cfg.Lookup(prefix)
	if err != nil {
		t.Fatalf("the pull secret has no entry for %s: %v", prefix, err)
	}
	if cred.Username != "puller" {
		t.Fatalf("the pull secret is for user %q, want puller", cred.Username)
	}
	secrets := []string{password, cred.Password}

	// A pod pulls with it.
	pushed := pushTestApp(t, push, "admin", password, "e2e/app")
	digest := pushed[strings.Index(pushed, "@"):]
	createPod(t, cs, appNS, "app", prefix+"/e2e/app"+digest, "registry-kit-pull")
	waitPodPhase(t, cs, appNS, "app", corev1.PodRunning)
	t.Logf("pod in %s runs %s/e2e/app%s with the pull-only secret", appNS, prefix, digest)

	// The same credentials cannot push: a new repository, or over the tag the pod runs.
	puller := &authn.Basic{Username: cred.Username, Password: cred.Password}
	wantPushDenied(t, puller, push+"/e2e/evil:v1", push+"/e2e/app:v1")
	ref, _ := name.ParseReference(push+"/e2e/app:v1", name.Insecure)
	desc, err := remote.Head(ref, remote.WithAuth(puller))
	if err != nil || "@"+desc.Digest.String() != digest {
		t.Errorf("e2e/app:v1 after the refused push = %v (%v), want %s", desc, err, digest)
	}
	if can, err := pullsecret.CanPush(context.Background(), push, cred.Username, cred.Password, nil); err != nil || can {
		t.Errorf("CanPush(puller) = %v, %v; want false", can, err)
	}

	// pull-secret create warns for admin, not for puller.
	for _, c := range []struct {
		user, pass string
		warn       bool
	}{{"admin", password, true}, {"puller", cred.Password, false}} {
		out := depRun(t, c.pass+"\n", "pull-secret", "create", "x", "--server", push, "--username", c.user, "--password-stdin", "-n", appNS, "-o", "yaml")
		// Only the notes and warnings are shown: the rest is the Secret, .dockerconfigjson included.
		var notes []string
		for _, l := range strings.Split(out.out, "\n") {
			if strings.HasPrefix(l, "Warning:") || strings.HasPrefix(l, "note:") || strings.HasPrefix(l, "Error:") {
				notes = append(notes, l)
			}
		}
		shown := depRedact(strings.Join(notes, "\n"), secrets...)
		if out.err != nil {
			t.Fatalf("pull-secret create -o yaml as %s: %v\n%s", c.user, out.err, shown)
		}
		if got := strings.Contains(out.out, `Warning: user "`+c.user+`" can push`); got != c.warn {
			t.Errorf("pull-secret create as %s warned = %v, want %v:\n%s", c.user, got, c.warn, shown)
		}
	}
	if strings.Contains(r.out, cred.Password) {
		t.Error("deploy printed the puller password")
	}
}

// wantPushDenied pushes a new random image to each target with auth and wants 403 DENIED every time. (A new image:
// the one already there would be a no-op for the client, every blob and the manifest present, not a push.)
func wantPushDenied(t *testing.T, auth *authn.Basic, targets ...string) {
	t.Helper()
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range targets {
		ref, err := name.ParseReference(target, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		err = remote.Write(ref, img, remote.WithAuth(auth))
		var te *transport.Error
		if !errors.As(err, &te) || te.StatusCode != http.StatusForbidden {
			t.Errorf("pushing %s as %s: %v, want 403 DENIED", target, auth.Username, err)
		}
	}
}
