//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/registry-kit/registry-kit/manifests"
)

// TestScaleOutOnCluster runs the scale-out objects (what overlays/scale-out builds, with the endpoints of this
// machine) on the local cluster: two registry replicas on a MinIO bucket and a Redis on the node's address
// 10.200.0.1, behind a NodePort Service. An image is pushed through the Service, each replica serves its manifest,
// and a pod pulls it through the Service with a pull secret.
func TestScaleOutOnCluster(t *testing.T) {
	env := clusterEnv(t)
	cs := kubeClient(t)
	nodeIP := env.get(t, "CLUSTER_NODE_IP")
	image := env.get(t, "REGISTRY_KIT_IMAGE")
	ns := newNamespace(t)

	minio := startMinIOOn(t, nodeIP)
	minio.makeBucket(t, "registry")
	redisPassword := rand.Text()
	redis := startRedisOn(t, nodeIP, "allkeys-lru", redisPassword)
	user, password := "cluster-scaler", rand.Text()
	set, err := manifests.Generate(manifests.Options{
		Namespace: ns, OmitNamespace: true, Image: image, ImagePullPolicy: corev1.PullNever,
		Replicas: 2, Storage: manifests.StorageS3, ServiceType: corev1.ServiceTypeNodePort,
		S3: manifests.S3{Endpoint: minio.endpoint, Insecure: true, ForcePathStyle: true, Bucket: "registry",
			RootDirectory: "/registry", AccessKey: []byte(minioUser), SecretKey: []byte(minio.secret)},
		Redis:      manifests.Redis{Addrs: []string{redis.addr}, Password: []byte(redisPassword)},
		Users:      []manifests.User{{Name: user, Password: password}},
		BcryptCost: 5,
		Rand:       rand.Reader,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, s := range []*corev1.Secret{set.HtpasswdSecret, set.HTTPSecret, set.S3Secret, set.RedisSecret} {
		createSecret(t, cs, ns, s)
	}
	svc, err := cs.CoreV1().Services(ns).Create(ctx, set.Service, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating service: %v", err)
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, set.Deployment, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating deployment: %v", err)
	}
	if _, err := cs.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, set.PodDisruptionBudget, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating pod disruption budget: %v", err)
	}
	podIPs := waitReplicasReady(t, cs, ns, set.Deployment.Name, 2)

	addr := fmt.Sprintf("%s:%d", nodeIP, svc.Spec.Ports[0].NodePort)
	waitServiceAnswers(t, addr)
	ref := pushTestApp(t, addr, user, password, "team/app")
	digest := ref[strings.Index(ref, "@")+1:]

	// Every replica answers for the image, so each reads the shared bucket.
	for _, ip := range podIPs {
		req, _ := http.NewRequest(http.MethodGet, "http://"+ip+":5000/v2/team/app/manifests/"+digest, nil)
		req.SetBasicAuth(user, password)
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json,"+
			"application/vnd.docker.distribution.manifest.v2+json,application/vnd.docker.distribution.manifest.list.v2+json")
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("GET manifest at replica %s: %v", ip, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET manifest %s at replica %s: HTTP %d, want 200", digest, ip, resp.StatusCode)
		}
	}

	trustRegistry(t, addr)
	createSecret(t, cs, ns, dockerConfigJSONSecret("pull", addr, user, password))
	createPod(t, cs, ns, "app", ref, "pull")
	waitPodPhase(t, cs, ns, "app", corev1.PodRunning)
}

// waitServiceAnswers waits until kube-proxy forwards addr (a NodePort) to a registry: /v2/ answers 401.
func waitServiceAnswers(t *testing.T, addr string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var last string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		resp, err := client.Get("http://" + addr + "/v2/")
		if err != nil {
			last = err.Error()
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized {
			return
		}
		last = resp.Status
	}
	t.Fatalf("the registry Service at %s did not answer /v2/ with 401: %s", addr, last)
}

// waitReplicasReady waits until the Deployment has n ready pods and returns their IPs.
func waitReplicasReady(t *testing.T, cs kubernetes.Interface, ns, name string, n int) []string {
	t.Helper()
	var ips []string
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: manifests.LabelInstance + "=" + name})
		if err != nil && !apierrors.IsNotFound(err) {
			return false, err
		}
		ips = nil
		for _, p := range pods.Items {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && p.Status.PodIP != "" {
					ips = append(ips, p.Status.PodIP)
				}
			}
		}
		return len(ips) == n, nil
	})
	if err != nil {
		pods, _ := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		var b strings.Builder
		for _, p := range pods.Items {
			fmt.Fprintf(&b, "%s:\n%s\n", p.Name, describePod(cs, ns, p.Name))
		}
		t.Fatalf("deployment %s/%s: %d of %d replicas ready: %v\n%s", ns, name, len(ips), n, err, b.String())
	}
	return ips
}
