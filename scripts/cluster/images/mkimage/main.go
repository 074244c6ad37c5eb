// Command mkimage turns one static binary into a single-layer OCI image with no base image (what
// `crane append --oci-empty-base` + `crane mutate --entrypoint --set-platform` do), reproducibly: the same
// binary always gives the same digest. It writes an OCI image layout directory, the same layout as a tar archive
// that `ctr images import` names from the io.containerd.image.name annotation, and optionally a docker tarball.
// scripts/cluster/images/build.sh drives it for the test cluster's pause and test-app images.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

type options struct {
	bin, path, ref, layoutDir, ociArchive, dockerTar, label string
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "", "static binary to put in the image (required)")
	flag.StringVar(&o.path, "path", "", "absolute path of the binary inside the image, also the entrypoint (required)")
	flag.StringVar(&o.ref, "ref", "", "image name recorded in the outputs, e.g. registry-kit.local/pause:3.10 (required)")
	flag.StringVar(&o.layoutDir, "layout", "", "write an OCI image layout directory here (required)")
	flag.StringVar(&o.ociArchive, "oci-archive", "", "also write the layout as a tar archive here")
	flag.StringVar(&o.dockerTar, "docker-tar", "", "also write a docker tarball (docker load) here")
	flag.StringVar(&o.label, "label", "", "KEY=VALUE label for the image config (gives the same binary another image ID)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "mkimage: %v\n", err)
		os.Exit(1)
	}
}

func (o options) validate() error {
	var errs []error
	for flagName, v := range map[string]string{"-bin": o.bin, "-path": o.path, "-ref": o.ref, "-layout": o.layoutDir} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is required", flagName))
		}
	}
	if k, _, ok := strings.Cut(o.label, "="); o.label != "" && (!ok || k == "") {
		errs = append(errs, fmt.Errorf("-label %q must be KEY=VALUE", o.label))
	}
	if o.path != "" && !strings.HasPrefix(o.path, "/") {
		errs = append(errs, fmt.Errorf("-path %q must be absolute", o.path))
	}
	return errors.Join(errs...)
}

func run(o options) error {
	if err := o.validate(); err != nil {
		return err
	}
	tag, err := name.NewTag(o.ref)
	if err != nil {
		return fmt.Errorf("parsing -ref: %w", err)
	}
	img, err := build(o.bin, o.path, o.label)
	if err != nil {
		return err
	}
	if err := writeLayout(o.layoutDir, tag, img); err != nil {
		return err
	}
	if o.ociArchive != "" {
		if err := tarDir(o.layoutDir, o.ociArchive); err != nil {
			return fmt.Errorf("writing OCI archive %s: %w", o.ociArchive, err)
		}
	}
	if o.dockerTar != "" {
		if err := tarball.WriteToFile(o.dockerTar, tag, img); err != nil {
			return fmt.Errorf("writing docker tarball %s: %w", o.dockerTar, err)
		}
	}
	d, err := img.Digest()
	if err != nil {
		return fmt.Errorf("computing digest: %w", err)
	}
	fmt.Printf("%s@%s\n", tag, d)
	return nil
}

// build makes an OCI image of one layer holding the binary at path, run as its entrypoint, for linux/amd64, with
// an optional KEY=VALUE label.
func build(bin, path, label string) (v1.Image, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("reading binary: %w", err)
	}
	layerTar, err := singleFileTar(strings.TrimPrefix(path, "/"), data)
	if err != nil {
		return nil, fmt.Errorf("building layer: %w", err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("building layer: %w", err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, fmt.Errorf("appending layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Entrypoint = []string{path}
	cf.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	cf.Config.WorkingDir = "/"
	if k, v, ok := strings.Cut(label, "="); ok {
		cf.Config.Labels = map[string]string{k: v}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("setting config: %w", err)
	}
	return img, nil
}

// singleFileTar returns a tar stream with one executable file; every header field is fixed so the digest is stable.
func singleFileTar(name string, data []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeLayout(dir string, tag name.Tag, img v1.Image) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clearing layout %s: %w", dir, err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("creating layout %s: %w", dir, err)
	}
	annotations := map[string]string{
		"io.containerd.image.name":          tag.String(),
		"org.opencontainers.image.ref.name": tag.TagStr(),
	}
	if err := p.AppendImage(img, layout.WithAnnotations(annotations)); err != nil {
		return fmt.Errorf("writing image to layout %s: %w", dir, err)
	}
	return nil
}

// tarDir archives a directory tree (an OCI layout) with paths relative to it, in walk order.
func tarDir(dir, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	walkErr := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name, hdr.ModTime, hdr.Uname, hdr.Gname, hdr.Uid, hdr.Gid = filepath.ToSlash(rel), time.Unix(0, 0), "", "", 0, 0
		if d.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	return errors.Join(walkErr, tw.Close(), f.Close())
}
