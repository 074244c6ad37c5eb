// Command sbom writes an SPDX 2.3 JSON software bill of materials for a Go binary from the build information Go
// embeds in it (what `go version -m` prints): the main module, every dependency module with its version and
// go.sum hash, and the Go toolchain. scripts/release.sh runs it for each release binary.
//
//	go run ./scripts/sbom BINARY > BINARY.spdx.json
package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type checksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type externalRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type pkg struct {
	SPDXID           string        `json:"SPDXID"`
	Name             string        `json:"name"`
	Version          string        `json:"versionInfo,omitempty"`
	DownloadLocation string        `json:"downloadLocation"`
	FilesAnalyzed    bool          `json:"filesAnalyzed"`
	Checksums        []checksum    `json:"checksums,omitempty"`
	ExternalRefs     []externalRef `json:"externalRefs,omitempty"`
	Comment          string        `json:"comment,omitempty"`
}

type relationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

type document struct {
	SPDXVersion       string `json:"spdxVersion"`
	DataLicense       string `json:"dataLicense"`
	SPDXID            string `json:"SPDXID"`
	Name              string `json:"name"`
	DocumentNamespace string `json:"documentNamespace"`
	CreationInfo      struct {
		Created  string   `json:"created"`
		Creators []string `json:"creators"`
	} `json:"creationInfo"`
	Packages      []pkg          `json:"packages"`
	Relationships []relationship `json:"relationships"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: sbom BINARY")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "sbom:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the build information of %s: %w", path, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	created := time.Unix(0, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		var n int64
		if _, err := fmt.Sscan(s, &n); err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		created = time.Unix(n, 0).UTC()
	}
	name := filepath.Base(path)
	doc := document{SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT", Name: name,
		DocumentNamespace: "https://github.com/registry-kit/registry-kit/spdx/" + name + "-" + hex.EncodeToString(sum[:8])}
	doc.CreationInfo.Created = created.Format(time.RFC3339)
	doc.CreationInfo.Creators = []string{"Tool: registry-kit-scripts-sbom", "Tool: " + bi.GoVersion}
	main := pkg{SPDXID: "SPDXRef-Package-main", Name: bi.Main.Path, Version: bi.Main.Version, DownloadLocation: "NOASSERTION",
		Checksums: []checksum{{"SHA256", hex.EncodeToString(sum[:])}}, ExternalRefs: []externalRef{purl(bi.Main.Path, bi.Main.Version)}}
	var settings []string
	for _, s := range bi.Settings {
		settings = append(settings, s.Key+"="+s.Value)
	}
	main.Comment = "binary " + name + "; build settings: " + strings.Join(settings, " ")
	doc.Packages = append(doc.Packages, main,
		pkg{SPDXID: "SPDXRef-Package-go", Name: "go", Version: bi.GoVersion, DownloadLocation: "NOASSERTION",
			ExternalRefs: []externalRef{{"PACKAGE-MANAGER", "purl", "pkg:golang/stdlib@" + bi.GoVersion}}})
	doc.Relationships = append(doc.Relationships, relationship{"SPDXRef-DOCUMENT", "DESCRIBES", main.SPDXID},
		relationship{main.SPDXID, "DEPENDS_ON", "SPDXRef-Package-go"})
	for i, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		p := pkg{SPDXID: fmt.Sprintf("SPDXRef-Package-%d", i), Name: d.Path, Version: d.Version, DownloadLocation: "NOASSERTION",
			ExternalRefs: []externalRef{purl(d.Path, d.Version)}}
		if h, ok := strings.CutPrefix(d.Sum, "h1:"); ok {
			p.Comment = "go.sum h1:" + h
		}
		doc.Packages = append(doc.Packages, p)
		doc.Relationships = append(doc.Relationships, relationship{main.SPDXID, "DEPENDS_ON", p.SPDXID})
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

func purl(path, version string) externalRef {
	return externalRef{"PACKAGE-MANAGER", "purl", "pkg:golang/" + path + "@" + version}
}
