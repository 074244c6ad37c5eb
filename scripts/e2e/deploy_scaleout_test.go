//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/registry-kit/registry-kit/manifests"
)

// TestDeployScaleOut: `registry-kit deploy --storage s3 --replicas 2 --with-redis` against a MinIO on the node's
// address 10.200.0.1, with the in-cluster Redis run from an image of this machine's redis-server (nothing public
// can be pulled here). deploy waits until both replicas and Redis are ready: the replicas' readiness follows the
// bucket and Redis (/readyz), so ready replicas prove they reach both, Redis with its generated password. The
// host pushes through the node port, each replica serves the manifest, a pod in another namespace pulls it. A
// second deploy changes nothing and keeps the Redis password; undeploy removes the Redis objects and the
// PodDisruptionBudget (and, there being no claim, the namespace).
func TestDeployScaleOut(t *testing.T) {
	cs := kubeClient(t)
	image := registryKitImage(t)
	redisImage := redisNodeImage(t)
	nodeIP := clusterEnv(t).get(t, "CLUSTER_NODE_IP")
	minio := startMinIOOn(t, nodeIP)
	minio.makeBucket(t, "registry")
	keys := t.TempDir()
	ak, sk := filepath.Join(keys, "access-key"), filepath.Join(keys, "secret-key")
	if err := os.WriteFile(ak, []byte(minioUser+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sk, []byte(minio.secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ns := depNamespace(t, cs, "e2e-rk-scale")
	port := depFreeNodePort(t, cs)
	args := []string{"deploy", "-n", ns, "--image", image, "--node-port", fmt.Sprint(port), "--timeout", "3m",
		"--storage", "s3", "--replicas", "2", "--s3-endpoint", minio.endpoint, "--s3-secure=false", "--s3-force-path-style",
		"--s3-bucket", "registry", "--s3-root-directory", "/deploy", "--s3-access-key-file", ak, "--s3-secret-key-file", sk,
		"--with-redis", "--redis-image", redisImage}
	ctx := context.Background()

	// 1. From scratch. This test cluster runs no cluster DNS (the kubelet has no clusterDNS), so the replicas
	// cannot resolve the Redis Service's name registry-redis, which every real cluster's DNS answers. The first
	// deploy therefore only applies (--wait=false); the test then maps the name to the Service's ClusterIP with a
	// hostAliases patch under its own field manager, which deploy leaves alone; the second deploy waits.
	first := depRun(t, "", append(args, "--wait=false")...)
	password := depGeneratedPassword(first.out)
	if password == "" {
		t.Fatalf("first deploy printed no generated password (err %v):\n%s", first.err, depRedact(first.out, minio.secret))
	}
	if first.err != nil {
		t.Fatalf("first deploy: %v\n%s", first.err, depRedact(first.out, password, minio.secret))
	}
	for _, want := range []string{"secret/registry-s3 created", "secret/registry-redis created", "service/registry-redis created",
		"service/registry created", "deployment.apps/registry-redis created", "deployment.apps/registry created",
		"poddisruptionbudget.policy/registry created"} {
		if !strings.Contains(first.out, want) {
			t.Errorf("first deploy output lacks %q:\n%s", want, depRedact(first.out, password, minio.secret))
		}
	}
	if strings.Contains(first.out, "persistentvolumeclaim") {
		t.Errorf("deploy with --storage s3 made a claim:\n%s", depRedact(first.out, password, minio.secret))
	}
	redisPassword := liveSecret(t, ns, "registry-redis", manifests.RedisPasswordKey)
	if len(redisPassword) != 64 {
		t.Fatalf("Secret registry-redis holds a %d-byte password, want a generated 64-character one", len(redisPassword))
	}
	redisSvc, err := cs.CoreV1().Services(ns).Get(ctx, "registry-redis", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading service registry-redis: %v", err)
	}
	alias := fmt.Sprintf(`{"spec":{"template":{"spec":{"hostAliases":[{"ip":%q,"hostnames":["registry-redis"]}]}}}}`, redisSvc.Spec.ClusterIP)
	if _, err := cs.AppsV1().Deployments(ns).Patch(ctx, "registry", types.StrategicMergePatchType, []byte(alias),
		metav1.PatchOptions{FieldManager: "e2e-no-cluster-dns"}); err != nil {
		t.Fatalf("patching hostAliases into deployment registry: %v", err)
	}

	// 2. Idempotent, and waits until both replicas and Redis serve: every object unchanged, no new admin or
	// Redis password.
	second := depRun(t, "", args...)
	if second.err != nil {
		t.Fatalf("second deploy: %v\n%s", second.err, depRedact(second.out, password, minio.secret))
	}
	t.Logf("second deploy (no-op) until 2 replicas + Redis serve: %s", second.elapsed.Round(100*time.Millisecond))
	applied := regexp.MustCompile(`(?m)^\S+/\S+ (created|configured|unchanged)$`).FindAllStringSubmatch(second.out, -1)
	if len(applied) != 11 { // namespace, 5 secrets (the puller's too), 2 services, 2 deployments, the PodDisruptionBudget
		t.Errorf("second deploy reported %d objects, want 11:\n%s", len(applied), depRedact(second.out, password, minio.secret))
	}
	for _, a := range applied {
		if a[1] != "unchanged" {
			t.Errorf("second deploy: %q, want unchanged", a[0])
		}
	}
	if depGeneratedPassword(second.out) != "" {
		t.Error("second deploy printed a password: it must keep the existing one")
	}
	if !bytes.Equal(liveSecret(t, ns, "registry-redis", manifests.RedisPasswordKey), redisPassword) {
		t.Error("second deploy changed the Redis password")
	}
	for name, want := range map[string]int32{"registry": 2, "registry-redis": 1} {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("reading deployment %s: %v", name, err)
		}
		if d.Status.ReadyReplicas != want {
			t.Errorf("deploy returned with deployment %s at %d ready replicas, want %d", name, d.Status.ReadyReplicas, want)
		}
	}
	push := depField(second.out, "Push from this machine to:")
	prefix := strings.TrimSuffix(depField(second.out, "Image prefix for pods:"), "/")
	if push == "" || prefix == "" {
		t.Fatalf("deploy printed no push address or image prefix:\n%s", depRedact(second.out, password, minio.secret))
	}
	if prefix != fmt.Sprintf("localhost:%d", port) {
		trustRegistry(t, prefix) // the node IP: what deploy's warning tells the user to configure
	}

	// 3. Push through the node port; every replica serves the manifest from the shared bucket; a pod pulls it.
	pushed := pushTestApp(t, push, "admin", password, "e2e/scaled")
	digest := pushed[strings.Index(pushed, "@")+1:]
	for _, ip := range registryPodIPs(t, ns) {
		req, _ := http.NewRequest(http.MethodHead, "http://"+ip+":5000/v2/e2e/scaled/manifests/"+digest, nil)
		req.SetBasicAuth("admin", password)
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json,"+
			"application/vnd.docker.distribution.manifest.v2+json,application/vnd.docker.distribution.manifest.list.v2+json")
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("HEAD manifest at replica %s: %v", ip, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("HEAD manifest %s at replica %s: HTTP %d, want 200", digest, ip, resp.StatusCode)
		}
	}
	appNS := newNamespace(t)
	ps := depRun(t, password+"\n", "pull-secret", "create", "registry-kit-pull", "-n", appNS, "--server", prefix, "--username", "admin", "--password-stdin")
	if ps.err != nil {
		t.Fatalf("registry-kit pull-secret create: %v\n%s", ps.err, depRedact(ps.out, password))
	}
	podImage := prefix + "/e2e/scaled@" + digest
	createPod(t, cs, appNS, "app", podImage, "registry-kit-pull")
	waitPodPhase(t, cs, appNS, "app", corev1.PodRunning)
	t.Logf("pod in %s runs %s", appNS, podImage)

	// 4. Once everything has settled, deploy is still a no-op.
	third := depRun(t, "", args...)
	if third.err != nil {
		t.Fatalf("third deploy: %v\n%s", third.err, depRedact(third.out, password, minio.secret))
	}
	applied = regexp.MustCompile(`(?m)^\S+/\S+ (created|configured|unchanged)$`).FindAllStringSubmatch(third.out, -1)
	for _, a := range applied {
		if a[1] != "unchanged" {
			t.Errorf("third deploy: %q, want unchanged", a[0])
		}
	}
	if len(applied) != 11 || !bytes.Equal(liveSecret(t, ns, "registry-redis", manifests.RedisPasswordKey), redisPassword) {
		t.Errorf("third deploy: %d objects reported (want 11), or the Redis password changed", len(applied))
	}

	// 5. Undeploy removes the Redis objects, the PodDisruptionBudget, and (no claim being left) the namespace.
	un := depRun(t, "", "undeploy", "-n", ns)
	if un.err != nil {
		t.Fatalf("undeploy: %v\n%s", un.err, un.out)
	}
	for _, want := range []string{"poddisruptionbudget.policy/registry deleted", "deployment.apps/registry-redis deleted",
		"service/registry-redis deleted", "secret/registry-redis deleted", "secret/registry-s3 deleted",
		"deployment.apps/registry deleted", "namespace/" + ns + " deleted"} {
		if !strings.Contains(un.out, want) {
			t.Errorf("undeploy output lacks %q:\n%s", want, un.out)
		}
	}
	depWaitGone(t, "poddisruptionbudget "+ns+"/registry", func(ctx context.Context) error {
		_, err := cs.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "registry", metav1.GetOptions{})
		return err
	})
	depWaitGone(t, "deployment "+ns+"/registry-redis", func(ctx context.Context) error {
		_, err := cs.AppsV1().Deployments(ns).Get(ctx, "registry-redis", metav1.GetOptions{})
		return err
	})
	depWaitGone(t, "namespace "+ns, func(ctx context.Context) error {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return err
	})
}

// depGeneratedPassword finds the admin password deploy printed once, in its instructions or (with --wait=false
// or an error) on its own line; "" when there is none.
func depGeneratedPassword(out string) string {
	if m := depPasswordLine.FindStringSubmatch(out); m != nil {
		return m[1]
	}
	if m := regexp.MustCompile(`generated user "[^"]*", password (\S+) \(shown once\)`).FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return ""
}

// liveSecret reads one key of a Secret in the cluster; the value is for comparisons, never for printing.
func liveSecret(t *testing.T, ns, name, key string) []byte {
	t.Helper()
	s, err := kubeClient(t).CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		t.Fatalf("Secret %s/%s does not exist", ns, name)
	}
	if err != nil {
		t.Fatalf("reading Secret %s/%s: %v", ns, name, err)
	}
	return s.Data[key]
}

// registryPodIPs are the IPs of the ready registry pods (not the Redis pod, which shares the instance label).
func registryPodIPs(t *testing.T, ns string) []string {
	t.Helper()
	pods, err := kubeClient(t).CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: manifests.LabelName + "=" + manifests.AppName + "," + manifests.LabelInstance + "=registry"})
	if err != nil {
		t.Fatalf("listing registry pods: %v", err)
	}
	var ips []string
	for _, p := range pods.Items {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && p.Status.PodIP != "" && p.DeletionTimestamp == nil {
				ips = append(ips, p.Status.PodIP)
			}
		}
	}
	sort.Strings(ips)
	if len(ips) != 2 {
		t.Fatalf("%d ready registry pods (%v), want 2", len(ips), ips)
	}
	return ips
}

var (
	redisImageOnce sync.Once
	redisImageRef  string
	redisImageErr  error
)

// redisNodeImage builds an image of this machine's redis-server (Debian's, with the shared libraries ldd lists)
// and imports it into the node's containerd: the in-cluster Redis of --with-redis cannot pull redis:7.2 here.
func redisNodeImage(t *testing.T) string {
	t.Helper()
	sock := clusterEnv(t).get(t, "CONTAINERD_SOCK")
	ctr := needTool(t, "ctr")
	server := needTool(t, "redis-server")
	ldd := needTool(t, "ldd")
	redisImageOnce.Do(func() { redisImageRef, redisImageErr = buildRedisImage(server, ldd, ctr, sock) })
	if redisImageErr != nil {
		t.Fatalf("building the redis image: %v", redisImageErr)
	}
	return redisImageRef
}

func buildRedisImage(server, ldd, ctr, sock string) (string, error) {
	out, err := exec.Command(ldd, server).Output()
	if err != nil {
		return "", fmt.Errorf("ldd %s: %w", server, err)
	}
	// The binary goes in as redis-server (Debian links it to redis-check-rdb, which picks its mode by argv[0]).
	files := map[string]string{"/usr/bin/redis-server": server}
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		for i, f := range fields {
			if strings.HasPrefix(f, "/") && (i == 0 || fields[i-1] == "=>") {
				files[f] = f
			}
		}
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	dirs := map[string]bool{"/data": true, "/tmp": true}
	for p := range files {
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	var dirList []string
	for d := range dirs {
		dirList = append(dirList, d)
	}
	sort.Strings(dirList)
	for _, d := range dirList {
		mode := int64(0o755)
		if d == "/tmp" || d == "/data" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(d, "/") + "/", Mode: mode, Typeflag: tar.TypeDir, ModTime: time.Unix(0, 0)}); err != nil {
			return "", err
		}
	}
	var names []string
	for p := range files {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		data, err := os.ReadFile(files[p]) // follows symlinks: the image holds the real files
		if err != nil {
			return "", err
		}
		if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(p, "/"), Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			return "", err
		}
		if _, err := tw.Write(data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	var ref string
	err = importNodeImage(ctr, sock, layer.Bytes(), func(c *v1.Config) {
		c.Env = []string{"PATH=/usr/bin:/bin"}
		c.WorkingDir = "/data"
		c.User = "999"
	}, func(d v1.Hash) []string {
		ref = "registry-kit-e2e/redis:" + d.Hex[:12]
		return []string{ref}
	})
	return ref, err
}

// TestDeployScaleOutRBAC: a ServiceAccount bound to exactly the Role and ClusterRole of --print-rbac deploys the scale-out
// objects (the PodDisruptionBudget and the Redis Deployment and Service among them; server dry run, then a real
// apply and a short wait that reads pods and events) and undeploys them.
func TestDeployScaleOutRBAC(t *testing.T) {
	cs := kubeClient(t)
	saNS, sa, _, kubeconfig := newDeployer(t, cs)
	target := depNamespace(t, cs, "e2e-rk-scale-rbac")
	// The admin creates the namespace and keeps it: deploy and undeploy leave it as it is.
	bindDeployRole(t, cs, saNS, sa, target, false)
	scale := []string{"--kubeconfig", kubeconfig, "-n", target, "--node-port", "0", "--storage", "s3", "--replicas", "2",
		"--s3-bucket", "registry", "--with-redis", "--redis-image", "registry-kit-e2e/redis:none"}
	for _, args := range [][]string{
		append([]string{"deploy", "--dry-run=server"}, scale...),
		append([]string{"deploy", "--wait=false"}, scale...),
		append([]string{"deploy", "--timeout", "5s"}, scale...),
		{"undeploy", "--kubeconfig", kubeconfig, "-n", target},
	} {
		r := depRun(t, "", args...)
		if refusedByRBAC(r.out) {
			t.Errorf("registry-kit %s with the --print-rbac role was refused:\n%s", strings.Join(args, " "), depRedact(r.out))
		}
		if r.err != nil && !strings.Contains(r.out, "is not ready") {
			t.Errorf("registry-kit %s: %v\n%s", strings.Join(args, " "), r.err, depRedact(r.out))
		}
		if args[0] == "undeploy" {
			for _, want := range []string{"poddisruptionbudget.policy/registry deleted", "deployment.apps/registry-redis deleted", "service/registry-redis deleted"} {
				if !strings.Contains(r.out, want) {
					t.Errorf("undeploy output lacks %q:\n%s", want, r.out)
				}
			}
		}
	}
}
