//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// field returns the value printed after label on its own line of deploy's output.
func depField(out, label string) string {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(label) + `\s+(\S+)`).FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestDeployLifecycle: deploy from scratch until ready, a second deploy changes nothing, the host pushes, a pod in
// another namespace pulls with the printed prefix and a pull secret, the data survives a registry pod restart, and
// undeploy removes everything but the claim (then, with --delete-data, the rest).
func TestDeployLifecycle(t *testing.T) {
	cs := kubeClient(t)
	image := registryKitImage(t)
	ns := depNamespace(t, cs, "e2e-rk-deploy")
	class := depUniqueName("e2e-rk-pv")
	depHostPathPV(t, cs, class, ns, "registry")
	port := depFreeNodePort(t, cs)
	nodeIP := clusterEnv(t).get(t, "CLUSTER_NODE_IP")
	args := []string{"deploy", "-n", ns, "--image", image, "--node-port", fmt.Sprint(port),
		"--storage-class", class, "--storage-size", "1Gi", "--timeout", "3m"}

	// 1. From scratch.
	first := depRun(t, "", args...)
	m := depPasswordLine.FindStringSubmatch(first.out)
	if m == nil {
		t.Fatalf("first deploy printed no generated password (err %v):\n%s", first.err, depRedact(first.out))
	}
	password := m[1]
	if first.err != nil {
		t.Fatalf("first deploy: %v\n%s", first.err, depRedact(first.out, password))
	}
	t.Logf("first deploy, from scratch to serving: %s", first.elapsed.Round(100*1e6))
	for _, want := range []string{"namespace/" + ns + " created", "secret/registry-htpasswd created", "persistentvolumeclaim/registry created",
		"service/registry created", "deployment.apps/registry created", "docker login", "imagePullSecrets", "registry-kit pull-secret create"} {
		if !strings.Contains(first.out, want) {
			t.Errorf("first deploy output lacks %q:\n%s", want, depRedact(first.out, password))
		}
	}
	push := depField(first.out, "Push from this machine to:")
	prefix := strings.TrimSuffix(depField(first.out, "Image prefix for pods:"), "/")
	switch push {
	case fmt.Sprintf("127.0.0.1:%d", port):
		// kube-proxy serves node ports on loopback: pods pull from localhost:<port>, plain HTTP, no configuration.
		if want := fmt.Sprintf("localhost:%d", port); prefix != want {
			t.Fatalf("image prefix = %q, want %q:\n%s", prefix, want, depRedact(first.out, password))
		}
		t.Logf("node port answers on 127.0.0.1: pods use %s", prefix)
	case fmt.Sprintf("%s:%d", nodeIP, port):
		// This cluster's kube-proxy serves node ports on the node IP only (--nodeport-addresses,
		// --iptables-localhost-nodeports=false) and the test runs on the node: deploy must see that localhost
		// cannot work, give the node IP as the prefix, and say how containerd must trust it.
		for _, want := range []string{"Warning: the node port answers on " + push + " but not on this node's loopback",
			"certs.d/" + push + "/hosts.toml", `server = "http://` + push + `"`} {
			if !strings.Contains(first.out, want) {
				t.Errorf("deploy output lacks %q:\n%s", want, depRedact(first.out, password))
			}
		}
		if prefix != push {
			t.Fatalf("image prefix = %q, want the node address %q:\n%s", prefix, push, depRedact(first.out, password))
		}
		trustRegistry(t, prefix) // what the printed hosts.toml says, in this cluster's certs.d
		t.Logf("node port answers on the node IP only: pods use %s (trusted in certs.d)", prefix)
	default:
		t.Fatalf("push address = %q, want 127.0.0.1:%d or %s:%d:\n%s", push, port, nodeIP, port, depRedact(first.out, password))
	}

	// 2. Idempotent: nothing changes, the password is kept (and not printed again).
	second := depRun(t, "", append(args, "--pull-address", prefix)...)
	if second.err != nil {
		t.Fatalf("second deploy: %v\n%s", second.err, depRedact(second.out, password))
	}
	t.Logf("second deploy (no-op): %s", second.elapsed.Round(100*1e6))
	applied := regexp.MustCompile(`(?m)^\S+/\S+ (created|configured|unchanged)$`).FindAllStringSubmatch(second.out, -1)
	if len(applied) != 7 {
		t.Errorf("second deploy reported %d objects, want 7 (the puller Secret too):\n%s", len(applied), depRedact(second.out, password))
	}
	for _, a := range applied {
		if a[1] != "unchanged" {
			t.Errorf("second deploy: %q, want unchanged", a[0])
		}
	}
	if depPasswordLine.MatchString(second.out) {
		t.Errorf("second deploy printed a password: it must keep the existing one")
	}
	if got := strings.TrimSuffix(depField(second.out, "Image prefix for pods:"), "/"); got != prefix {
		t.Errorf("second deploy: image prefix = %q, want %q (from --pull-address)", got, prefix)
	}

	// 3. Push from the host, pull from a pod in another namespace with the printed prefix and a pull secret.
	pushed := pushTestApp(t, push, "admin", password, "e2e/app")
	digest := pushed[strings.Index(pushed, "@"):]
	appNS := newNamespace(t)
	ps := depRun(t, password+"\n", "pull-secret", "create", "registry-kit-pull", "-n", appNS, "--server", prefix, "--username", "admin", "--password-stdin")
	if ps.err != nil {
		t.Fatalf("registry-kit pull-secret create: %v\n%s", ps.err, depRedact(ps.out, password))
	}
	podImage := prefix + "/e2e/app" + digest
	createPod(t, cs, appNS, "app", podImage, "registry-kit-pull")
	waitPodPhase(t, cs, appNS, "app", corev1.PodRunning)
	t.Logf("pod in %s runs %s", appNS, podImage)

	// 4. The images survive a registry pod restart (they are on the claim).
	ctx := context.Background()
	sel := "app.kubernetes.io/instance=registry"
	if err := cs.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: sel}); err != nil {
		t.Fatalf("deleting the registry pod: %v", err)
	}
	third := depRun(t, "", append(args, "--pull-address", prefix)...) // waits until the new pod serves
	if third.err != nil {
		t.Fatalf("deploy after the pod restart: %v\n%s", third.err, depRedact(third.out, password))
	}
	ref, err := name.ParseReference(pushed, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(ref, remote.WithAuth(&authn.Basic{Username: "admin", Password: password})); err != nil {
		t.Fatalf("the pushed image is gone after the registry pod restarted: %v", err)
	}
	createPod(t, cs, appNS, "app-after-restart", podImage, "registry-kit-pull")
	waitPodPhase(t, cs, appNS, "app-after-restart", corev1.PodRunning)

	// 5. Undeploy keeps the claim and the namespace; --delete-data removes them.
	un := depRun(t, "", "undeploy", "-n", ns)
	if un.err != nil {
		t.Fatalf("undeploy: %v\n%s", un.err, un.out)
	}
	for _, want := range []string{"deployment.apps/registry deleted", "service/registry deleted", "secret/registry-htpasswd deleted",
		"secret/registry-http-secret deleted", "persistentvolumeclaim/registry kept", "namespace/" + ns + " kept"} {
		if !strings.Contains(un.out, want) {
			t.Errorf("undeploy output lacks %q:\n%s", want, un.out)
		}
	}
	depWaitGone(t, "deployment "+ns+"/registry", func(ctx context.Context) error {
		_, err := cs.AppsV1().Deployments(ns).Get(ctx, "registry", metav1.GetOptions{})
		return err
	})
	if _, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "registry", metav1.GetOptions{}); err != nil {
		t.Fatalf("undeploy without --delete-data lost the claim: %v", err)
	}
	un = depRun(t, "", "undeploy", "-n", ns, "--delete-data")
	if un.err != nil {
		t.Fatalf("undeploy --delete-data: %v\n%s", un.err, un.out)
	}
	depWaitGone(t, "namespace "+ns, func(ctx context.Context) error {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return err
	})
}
