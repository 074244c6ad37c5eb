package deploy

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCanaryOutcome(t *testing.T) {
	waiting := func(reason, msg string) *corev1.Pod {
		return &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}}}}
	}
	r := &Result{Namespace: "docker-registry", PullPrefix: "10.200.0.1:30500", TLS: true}
	tests := []struct {
		name     string
		pod      *corev1.Pod
		done, ok bool
		msg, fix string
	}{
		{"still pulling", waiting("ContainerCreating", ""), false, false, "", ""},
		{"not found: reached, trusted, let in", waiting("ErrImagePull", `failed to pull and unpack image "10.200.0.1:30500/registry-kit/canary:probe": failed to resolve reference: 10.200.0.1:30500/registry-kit/canary:probe: not found`),
			true, true, "reached 10.200.0.1:30500 (TLS, certificate trusted, pull credentials accepted)", ""},
		{"untrusted", waiting("ErrImagePull", `failed to do request: Head "https://10.200.0.1:30500/v2/registry-kit/canary/manifests/probe": tls: failed to verify certificate: x509: certificate signed by unknown authority`),
			true, false, "x509: certificate signed by unknown authority", "registry-kit nodes trust -n docker-registry"},
		{"refused credentials", waiting("ErrImagePull", `failed to authorize: failed to fetch anonymous token: unexpected status from GET request: 401 Unauthorized`),
			true, false, "401 Unauthorized", "credentials were refused"},
		{"unreachable", waiting("ImagePullBackOff", `dial tcp 10.200.0.1:30500: connect: connection refused`),
			true, false, "connection refused", "cannot reach"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, done := canaryOutcome(tt.pod, r)
			if done != tt.done || got.OK != tt.ok || !strings.Contains(got.Message, tt.msg) || !strings.Contains(got.Fix, tt.fix) {
				t.Errorf("= %+v, %v; want done %v ok %v message ~%q fix ~%q", got, done, tt.done, tt.ok, tt.msg, tt.fix)
			}
		})
	}
}
