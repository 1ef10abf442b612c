// Package deploy holds pgpseudo's deployment files: the container image's
// Dockerfile and the Kubernetes manifests (docs/deployment.md). It has no
// code; its test loads the configuration and policy shipped in
// kubernetes/configmap.yaml with the proxy's own loaders, so the files an
// operator starts from are known to be valid. The manifests themselves are
// checked by the separate module in kubernetes/validate, which keeps the
// Kubernetes libraries out of this module.
package deploy
