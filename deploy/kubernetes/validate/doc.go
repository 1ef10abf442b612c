// Package validate checks the Kubernetes manifests in deploy/kubernetes
// without a cluster: every document is decoded strictly into its typed
// Kubernetes object, and the deployment's invariants are checked (see
// manifests_test.go and docs/deployment.md). It is a module of its own so
// that the proxy's module does not depend on the Kubernetes libraries.
package validate
