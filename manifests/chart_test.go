package manifests

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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
