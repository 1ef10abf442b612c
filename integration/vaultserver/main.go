// Command vault is the official HashiCorp Vault server built from its Go
// module at the version pinned in go.mod. The integration test stack runs it
// as `vault server -dev`; building it here keeps the test stack on Debian
// packages and Go modules only.
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
