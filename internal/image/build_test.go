package image

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var (
	amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = v1.Platform{OS: "linux", Architecture: "arm64"}
)

// fixture writes two stand-in binaries and a CA bundle into a new directory and returns options using them.
func fixture(t *testing.T, amd64Data string) Options {
	t.Helper()
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return Options{
		Binaries: []Binary{
			{Platform: amd64, Path: write("registry-kit-amd64", amd64Data)},
			{Platform: arm64, Path: write("registry-kit-arm64", "\x7fELF arm64 stand-in")},
		},
		CABundlePath: write("ca.crt", "-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n"),
		Version:      "v1.2.3",
		Revision:     "0123456789abcdef0123456789abcdef01234567",
	}
}

func digest(t *testing.T, o Options) v1.Hash {
	t.Helper()
	idx, err := Build(o)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestBuildReproducible: the same inputs give the same index digest, wherever the files are and whenever the build
// runs; any change of an input changes it.
func TestBuildReproducible(t *testing.T) {
	want := digest(t, fixture(t, "\x7fELF amd64 stand-in"))
	time.Sleep(1100 * time.Millisecond) // a build that read the clock would now differ
	if got := digest(t, fixture(t, "\x7fELF amd64 stand-in")); got != want {
		t.Errorf("same inputs in another directory, a second later: digest %s, want %s", got, want)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Options)
	}{
		{name: "binary content", mutate: func(o *Options) {
			if err := os.WriteFile(o.Binaries[0].Path, []byte("\x7fELF amd64 v2"), 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "version label", mutate: func(o *Options) { o.Version = "v1.2.4" }},
		{name: "revision label", mutate: func(o *Options) { o.Revision = "fedcba" }},
		{name: "created", mutate: func(o *Options) { o.Created = time.Unix(1700000000, 0) }},
		{name: "one platform", mutate: func(o *Options) { o.Binaries = o.Binaries[:1] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := fixture(t, "\x7fELF amd64 stand-in")
			tc.mutate(&o)
			if got := digest(t, o); got == want {
				t.Errorf("changing the %s kept the digest %s", tc.name, got)
			}
		})
	}
}

type fileInfo struct {
	Name       string
	Type       byte
	Mode       int64
	UID, GID   int
	Size       int64
	ModTimeUTC string
}

func layerFiles(t *testing.T, l v1.Layer) ([]fileInfo, map[string]string) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var files []fileInfo
	content := map[string]string{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		content[h.Name] = string(b)
		files = append(files, fileInfo{h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Size, h.ModTime.UTC().Format(time.RFC3339)})
	}
	return files, content
}

func TestBuildContents(t *testing.T) {
	o := fixture(t, "\x7fELF amd64 stand-in")
	idx, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex {
		t.Errorf("index media type %s, want %s", im.MediaType, types.OCIImageIndex)
	}
	var platforms []string
	for _, d := range im.Manifests {
		platforms = append(platforms, d.Platform.String())
	}
	if diff := cmp.Diff([]string{"linux/amd64", "linux/arm64"}, platforms); diff != "" {
		t.Errorf("index platforms (-want +got):\n%s", diff)
	}
	wantLabels := map[string]string{LabelSource: DefaultSource, LabelVersion: "v1.2.3", LabelRevision: o.Revision}
	epoch := "1970-01-01T00:00:00Z"
	var baseDigests []v1.Hash
	for i, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if got := cf.Platform().String(); got != d.Platform.String() {
			t.Errorf("image %d config platform %s, index says %s", i, got, d.Platform)
		}
		if diff := cmp.Diff(v1.Config{
			User: "65532:65532", Entrypoint: []string{"/registry-kit"}, Cmd: []string{"serve"}, WorkingDir: "/",
			ExposedPorts: map[string]struct{}{"5000/tcp": {}, "5001/tcp": {}},
			Volumes:      map[string]struct{}{"/var/lib/registry": {}}, Labels: wantLabels,
		}, cf.Config); diff != "" {
			t.Errorf("%s config (-want +got):\n%s", d.Platform, diff)
		}
		if got := cf.Created.UTC().Format(time.RFC3339); got != epoch {
			t.Errorf("%s created %s, want %s", d.Platform, got, epoch)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if len(layers) != 2 {
			t.Fatalf("%s has %d layers, want 2 (base, binary)", d.Platform, len(layers))
		}
		bd, _ := layers[0].Digest()
		baseDigests = append(baseDigests, bd)
		base, content := layerFiles(t, layers[0])
		ca, err := os.ReadFile(o.CABundlePath)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]fileInfo{
			{"etc/", tar.TypeDir, 0o755, 0, 0, 0, epoch},
			{"etc/group", tar.TypeReg, 0o644, 0, 0, 27, epoch},
			{"etc/passwd", tar.TypeReg, 0o644, 0, 0, 94, epoch},
			{"etc/ssl/", tar.TypeDir, 0o755, 0, 0, 0, epoch},
			{"etc/ssl/certs/", tar.TypeDir, 0o755, 0, 0, 0, epoch},
			{"etc/ssl/certs/ca-certificates.crt", tar.TypeReg, 0o644, 0, 0, int64(len(ca)), epoch},
			{"var/", tar.TypeDir, 0o755, 0, 0, 0, epoch},
			{"var/lib/", tar.TypeDir, 0o755, 0, 0, 0, epoch},
			{"var/lib/registry/", tar.TypeDir, 0o755, NonRootID, NonRootID, 0, epoch},
			{"var/lib/registry/README", tar.TypeReg, 0o644, NonRootID, NonRootID, 75, epoch},
		}, base); diff != "" {
			t.Errorf("%s base layer (-want +got):\n%s", d.Platform, diff)
		}
		if !strings.Contains(content["etc/passwd"], "nonroot:x:65532:65532:") {
			t.Errorf("etc/passwd has no nonroot user 65532:\n%s", content["etc/passwd"])
		}
		if content["etc/ssl/certs/ca-certificates.crt"] != string(ca) {
			t.Error("the CA bundle in the image differs from the input")
		}
		bin, content := layerFiles(t, layers[1])
		want, _ := os.ReadFile(o.Binaries[i].Path)
		if diff := cmp.Diff([]fileInfo{{"registry-kit", tar.TypeReg, 0o755, 0, 0, int64(len(want)), epoch}}, bin); diff != "" {
			t.Errorf("%s binary layer (-want +got):\n%s", d.Platform, diff)
		}
		if content["registry-kit"] != string(want) {
			t.Errorf("%s: the binary in the image is not the %s input", d.Platform, d.Platform)
		}
		if mt, _ := layers[1].MediaType(); mt != types.OCILayer {
			t.Errorf("%s binary layer media type %s, want %s", d.Platform, mt, types.OCILayer)
		}
	}
	if baseDigests[0] != baseDigests[1] {
		t.Errorf("the base layer differs between platforms (%s, %s): it should be shared", baseDigests[0], baseDigests[1])
	}
}

func TestBuildValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{name: "nothing", opts: Options{}, want: "binaries: at least one platform is needed\nca bundle: no path (the image needs it to reach HTTPS S3 endpoints)"},
		{name: "not linux", opts: Options{CABundlePath: "ca", Binaries: []Binary{{Platform: v1.Platform{OS: "darwin", Architecture: "arm64"}, Path: "b"}}}, want: `binaries: platform "darwin/arm64": must be linux/ARCH`},
		{name: "twice", opts: Options{CABundlePath: "ca", Binaries: []Binary{{Platform: amd64, Path: "a"}, {Platform: amd64, Path: "b"}}}, want: "binaries: platform linux/amd64 given twice"},
		{name: "no path", opts: Options{CABundlePath: "ca", Binaries: []Binary{{Platform: arm64}}}, want: "binaries: platform linux/arm64: no binary path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(tc.opts)
			if err == nil {
				t.Fatal("Build accepted invalid options")
			}
			if diff := cmp.Diff("validating image options: "+tc.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
	o := fixture(t, "x")
	o.Binaries[1].Path = filepath.Join(t.TempDir(), "missing")
	if _, err := Build(o); err == nil || !strings.Contains(err.Error(), "reading the linux/arm64 binary") {
		t.Errorf("missing binary: got %v, want an error naming the linux/arm64 binary", err)
	}
}
