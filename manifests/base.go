package manifests

// BaseOptions are the options manifests/base is generated with: the defaults, with both Secrets left to the
// overlays (a kustomize secretGenerator reading files the user provides), so the base holds no credential.
func BaseOptions() Options { return Options{ExternalSecrets: true} }

// Base returns the files of the kustomize base checked in under manifests/base.
func Base() ([]File, error) {
	s, err := Generate(BaseOptions())
	if err != nil {
		return nil, err
	}
	return s.Files()
}
