package manifests

import (
	"encoding/base64"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestChartIsGenerated fails when manifests/chart differs from Chart(""), file by file, with no extra files. The
// chart's rendering by helm (lint, template equal to Generate, install, upgrade) is checked in the e2e tier, which
// has the helm binary.
func TestChartIsGenerated(t *testing.T) {
	files, err := Chart("")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
		if strings.Contains(string(f.Data), "rkchart") {
			t.Errorf("chart file %s still holds a generator sentinel or token", f.Name)
		}
		checkGolden(t, filepath.Join("chart", f.Name), f.Data)
	}
	err = filepath.WalkDir("chart", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel("chart", p)
		if slices.Contains(names, filepath.ToSlash(rel)) {
			return nil
		}
		if *update {
			return os.Remove(p)
		}
		t.Errorf("chart/%s is not generated; remove it or run go test ./manifests -update", rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestChartOfRelease(t *testing.T) {
	files, err := Chart("v1.4.0")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]string{}
	for _, f := range files {
		byName[f.Name] = string(f.Data)
	}
	for _, tc := range []struct{ file, want string }{
		{"Chart.yaml", "\nversion: 1.4.0\n"},
		{"Chart.yaml", "\nappVersion: \"v1.4.0\"\n"},
		{"values.yaml", "  repository: ghcr.io/registry-kit/registry-kit\n"},
		{"values.yaml", "  tag: v1.4.0\n"},
		{"README.md", "| `image.tag` | `v1.4.0` | `--image` |"},
	} {
		if !strings.Contains(byName[tc.file], tc.want) {
			t.Errorf("%s of the v1.4.0 chart has no %q:\n%s", tc.file, tc.want, byName[tc.file])
		}
	}
}

// TestChartPullerAndPolicy: the chart has the generator's pull-only user Secret and access policy, with the
// password, the htpasswd and the policy as template actions (no credential baked into the chart), and its default
// policy is the generator's text.
func TestChartPullerAndPolicy(t *testing.T) {
	files, err := Chart("")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]string{}
	for _, f := range files {
		byName[f.Name] = string(f.Data)
		if strings.Contains(string(f.Data), "$2y$") || strings.Contains(string(f.Data), "$2a$") {
			t.Errorf("chart file %s holds a bcrypt hash", f.Name)
		}
		if strings.Contains(string(f.Data), base64.StdEncoding.EncodeToString([]byte(ChartOptions().PullerPassword))) {
			t.Errorf("chart file %s holds the generator's placeholder %s password", f.Name, PullerUser)
		}
	}
	if _, ok := byName["templates/secret-puller.yaml"]; ok {
		t.Error("the puller Secret has a file of its own; it must share the htpasswd Secret's (one random password)")
	}
	ht := byName["templates/secret-htpasswd.yaml"]
	for _, want := range []string{
		"  name: {{ .Release.Name }}-puller\n",
		"type: " + string(corev1.SecretTypeBasicAuth) + "\n",
		"  " + corev1.BasicAuthPasswordKey + ": {{ $pullerPassword | b64enc }}\n",
		"  " + corev1.BasicAuthUsernameKey + ": " + base64.StdEncoding.EncodeToString([]byte(PullerUser)) + "\n",
		"  " + AccessPolicyKey + ": {{ $policy | b64enc }}\n",
		"  " + HtpasswdKey + ": {{ $htpasswd | b64enc }}\n",
		`{{- $policy := .Values.auth.accessPolicy }}`,
		`(printf "%s-puller" .Release.Name)`,
		`htpasswd "puller" $pullerPassword`,
		strconv.Quote(string(defaultPolicy([]string{chartAdminsPlaceholder}))),
		strconv.Quote(string(defaultPolicy(nil))),
	} {
		if !strings.Contains(ht, want) {
			t.Errorf("templates/secret-htpasswd.yaml has no %q:\n%s", want, ht)
		}
	}
	if !strings.Contains(byName["values.yaml"], "\n  accessPolicy: \"\"\n") {
		t.Errorf("values.yaml has no auth.accessPolicy:\n%s", byName["values.yaml"])
	}
}
