package imagestore

import (
	"fmt"
	"regexp"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/kubelab/kubelab/spec"
)

// Reference is a parsed, normalised image reference.
type Reference struct {
	// Repository is the fully qualified repository, e.g.
	// "docker.io/library/busybox".
	Repository string
	// Tag is the tag, "latest" when the reference had neither a tag nor a
	// digest; empty for a digest reference without a tag.
	Tag string
	// Digest is the manifest digest of a "name@sha256:…" reference.
	Digest digest.Digest
}

// String returns the normalised reference: "repo@digest" when it has a
// digest (a tag next to a digest is dropped, as Docker does), else
// "repo:tag".
func (r Reference) String() string {
	if r.Digest != "" {
		return r.Repository + "@" + r.Digest.String()
	}
	return r.Repository + ":" + r.Tag
}

const (
	defaultDomain = "docker.io"
	officialRepo  = "library/"
)

var (
	// pathComponent is one lowercase component of a repository path.
	pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	// domainRe is a registry host with an optional port.
	domainRe = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?$|^\[[a-fA-F0-9:]+\](?::[0-9]+)?$`)
	tagRe    = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
)

// ParseReference parses and normalises an image reference the way
// Kubernetes and containerd do: a missing domain is docker.io, a
// single-component docker.io repository gets "library/", and a reference
// with neither tag nor digest gets the tag "latest". A malformed reference
// gives an error wrapping spec.ErrInvalid.
func ParseReference(ref string) (Reference, error) {
	invalid := func(why string) (Reference, error) {
		return Reference{}, fmt.Errorf("image reference %q: %s: %w", ref, why, spec.ErrInvalid)
	}
	if ref == "" {
		return invalid("empty")
	}
	if len(ref) > 4096 {
		return invalid("too long")
	}
	name := ref
	var r Reference
	if i := strings.IndexByte(name, '@'); i >= 0 {
		d, err := digest.Parse(name[i+1:])
		if err != nil {
			return invalid("bad digest: " + err.Error())
		}
		r.Digest = d
		name = name[:i]
	}
	// A tag is after the last ':' that follows the last '/'.
	if i := strings.LastIndexByte(name, ':'); i >= 0 && i > strings.LastIndexByte(name, '/') {
		r.Tag = name[i+1:]
		name = name[:i]
		if !tagRe.MatchString(r.Tag) {
			return invalid("bad tag")
		}
	}
	if name == "" {
		return invalid("no repository")
	}
	domain, rest := defaultDomain, name
	if i := strings.IndexByte(name, '/'); i >= 0 {
		first := name[:i]
		if strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first {
			if !domainRe.MatchString(first) {
				return invalid("bad domain")
			}
			domain, rest = first, name[i+1:]
		}
	}
	if domain == "index.docker.io" {
		domain = defaultDomain
	}
	if domain == defaultDomain && !strings.Contains(rest, "/") {
		rest = officialRepo + rest
	}
	for _, c := range strings.Split(rest, "/") {
		if !pathComponent.MatchString(c) {
			return invalid("bad repository path component " + fmt.Sprintf("%q", c))
		}
	}
	r.Repository = domain + "/" + rest
	if r.Digest != "" {
		r.Tag = ""
	} else if r.Tag == "" {
		r.Tag = "latest"
	}
	return r, nil
}

// NormalizeRef returns ref normalised ("busybox" →
// "docker.io/library/busybox:latest"), or an error wrapping spec.ErrInvalid.
func NormalizeRef(ref string) (string, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return "", err
	}
	return r.String(), nil
}
