package image

import (
	"archive/tar"
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's contract, shared with the Dockerfile: where the binary and the data live and who runs it.
const (
	BinaryPath = "/registry-kit"
	DataDir    = "/var/lib/registry"
	CABundle   = "/etc/ssl/certs/ca-certificates.crt"
	// NonRootID is the uid and gid the server runs as (the distroless "nonroot" user).
	NonRootID = 65532
	// DefaultSource is the org.opencontainers.image.source label when Options.Source is empty.
	DefaultSource = "https://github.com/registry-kit/registry-kit"
)

// OCI annotation and label keys the image carries.
const (
	LabelSource   = "org.opencontainers.image.source"
	LabelVersion  = "org.opencontainers.image.version"
	LabelRevision = "org.opencontainers.image.revision"
	LabelCreated  = "org.opencontainers.image.created"
)

//go:embed rootfs
var rootfs embed.FS

// Binary is the registry-kit executable for one platform: a static linux binary (CGO_ENABLED=0).
type Binary struct {
	Platform v1.Platform
	Path     string
}

// Options are the inputs of Build. Everything that ends up in the image comes from them and the embedded rootfs.
type Options struct {
	// Binaries has one entry per platform of the index, in the index's order.
	Binaries []Binary
	// CABundlePath is the PEM bundle copied to CABundle (typically the build host's /etc/ssl/certs/ca-certificates.crt).
	CABundlePath string
	// Version and Revision are the org.opencontainers.image.version and .revision labels; Source the .source label
	// (default DefaultSource).
	Version, Revision, Source string
	// Created is the time every timestamp of the image carries (file times, config, history). The zero value means
	// the Unix epoch, so a rebuild of the same inputs has the same digest; a release passes SOURCE_DATE_EPOCH.
	Created time.Time
}

// Validate reports every problem with o, naming the field.
func (o Options) Validate() error {
	var errs []error
	if len(o.Binaries) == 0 {
		errs = append(errs, errors.New("binaries: at least one platform is needed"))
	}
	seen := map[string]bool{}
	for _, b := range o.Binaries {
		p := b.Platform.String()
		switch {
		case b.Platform.OS != "linux" || b.Platform.Architecture == "":
			errs = append(errs, fmt.Errorf("binaries: platform %q: must be linux/ARCH", p))
		case seen[p]:
			errs = append(errs, fmt.Errorf("binaries: platform %s given twice", p))
		case b.Path == "":
			errs = append(errs, fmt.Errorf("binaries: platform %s: no binary path", p))
		}
		seen[p] = true
	}
	if o.CABundlePath == "" {
		errs = append(errs, errors.New("ca bundle: no path (the image needs it to reach HTTPS S3 endpoints)"))
	}
	return errors.Join(errs...)
}

func (o Options) created() time.Time {
	if o.Created.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return o.Created.UTC()
}

func (o Options) labels() map[string]string {
	l := map[string]string{LabelSource: o.Source, LabelVersion: o.Version, LabelRevision: o.Revision}
	if l[LabelSource] == "" {
		l[LabelSource] = DefaultSource
	}
	for k, v := range l {
		if v == "" {
			delete(l, k)
		}
	}
	return l
}

// Build makes the multi-arch OCI image index: one image per Options.Binaries entry, each of two layers (the
// shared base files, then the binary). It reads the binaries and the CA bundle and nothing else.
func Build(o Options) (v1.ImageIndex, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("validating image options: %w", err)
	}
	base, err := o.baseLayer()
	if err != nil {
		return nil, err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var adds []mutate.IndexAddendum
	for _, b := range o.Binaries {
		img, err := o.platformImage(base, b)
		if err != nil {
			return nil, err
		}
		p := b.Platform
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	idx = mutate.AppendManifests(idx, adds...)
	anns := o.labels()
	anns[LabelCreated] = o.created().Format(time.RFC3339)
	return mutate.Annotations(idx, anns).(v1.ImageIndex), nil
}

func (o Options) platformImage(base v1.Layer, b Binary) (v1.Image, error) {
	data, err := os.ReadFile(b.Path)
	if err != nil {
		return nil, fmt.Errorf("reading the %s binary: %w", b.Platform, err)
	}
	bin, err := layer([]entry{{name: strings.TrimPrefix(BinaryPath, "/"), mode: 0o755, data: data}}, o.created())
	if err != nil {
		return nil, fmt.Errorf("building the %s binary layer: %w", b.Platform, err)
	}
	created := v1.Time{Time: o.created()}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, MediaType: types.OCILayer, History: v1.History{
			Created: created, CreatedBy: "registry-kit image build: passwd, group, CA bundle, " + DataDir, Comment: "base"}},
		mutate.Addendum{Layer: bin, MediaType: types.OCILayer, History: v1.History{
			Created: created, CreatedBy: "registry-kit image build: " + BinaryPath}},
	)
	if err != nil {
		return nil, fmt.Errorf("assembling the %s image: %w", b.Platform, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the %s image config: %w", b.Platform, err)
	}
	cf = cf.DeepCopy()
	cf.Created = created
	cf.OS, cf.Architecture, cf.Variant, cf.OSVersion = b.Platform.OS, b.Platform.Architecture, b.Platform.Variant, b.Platform.OSVersion
	cf.Config = v1.Config{
		User:         fmt.Sprintf("%d:%d", NonRootID, NonRootID),
		Entrypoint:   []string{BinaryPath},
		Cmd:          []string{"serve"},
		WorkingDir:   "/",
		ExposedPorts: map[string]struct{}{"5000/tcp": {}, "5001/tcp": {}},
		Volumes:      map[string]struct{}{DataDir: {}},
		Labels:       o.labels(),
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("setting the %s image config: %w", b.Platform, err)
	}
	return img, nil
}

// baseLayer holds what every platform shares: the non-root user's passwd and group entries, the CA bundle and the
// data directory owned by that user.
func (o Options) baseLayer() (v1.Layer, error) {
	ca, err := os.ReadFile(o.CABundlePath)
	if err != nil {
		return nil, fmt.Errorf("reading the CA bundle: %w", err)
	}
	read := func(p string) []byte {
		b, _ := rootfs.ReadFile(p) // embedded at build time: present by construction
		return b
	}
	entries := []entry{
		{name: "etc/", dir: true, mode: 0o755},
		{name: "etc/group", mode: 0o644, data: read("rootfs/group")},
		{name: "etc/passwd", mode: 0o644, data: read("rootfs/passwd")},
		{name: "etc/ssl/", dir: true, mode: 0o755},
		{name: "etc/ssl/certs/", dir: true, mode: 0o755},
		{name: strings.TrimPrefix(CABundle, "/"), mode: 0o644, data: ca},
		{name: "var/", dir: true, mode: 0o755},
		{name: "var/lib/", dir: true, mode: 0o755},
		{name: strings.TrimPrefix(DataDir, "/") + "/", dir: true, mode: 0o755, owner: NonRootID},
		{name: strings.TrimPrefix(DataDir, "/") + "/README", mode: 0o644, owner: NonRootID, data: read("rootfs/data/README")},
	}
	l, err := layer(entries, o.created())
	if err != nil {
		return nil, fmt.Errorf("building the base layer: %w", err)
	}
	return l, nil
}

// entry is one file or directory of a layer; owner is both its uid and gid.
type entry struct {
	name  string
	dir   bool
	mode  int64
	owner int
	data  []byte
}

// layer writes entries as a tar stream, sorted by name, every time set to mtime and no user or group names, so the
// same entries always give the same bytes, and makes it a gzip-compressed OCI layer.
func layer(entries []entry, mtime time.Time) (v1.Layer, error) {
	entries = slices.Clone(entries)
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name: e.name, Mode: e.mode, Uid: e.owner, Gid: e.owner, ModTime: mtime, Typeflag: tar.TypeReg,
			Size: int64(len(e.data)),
			// USTAR: no PAX records, which would carry access and change times.
			Format: tar.FormatUSTAR,
		}
		if e.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("writing tar header %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("writing %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("closing tar stream: %w", err)
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
}
