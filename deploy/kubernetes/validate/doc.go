// Package validate checks the Kubernetes manifests in deploy/kubernetes
// without a cluster: every document is decoded strictly into its typed
// Kubernetes object, and the deployment's invariants are checked (Check
// lists them; docs/deployment.md describes them). It is a module of its own
// so that the proxy's module does not depend on the Kubernetes libraries.
package validate
