// Command gen writes the Kundendaten sample database as a psql script:
//
//	go run ./configs/sample/gen -customers 1000 -seed 42 | psql …
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/pgpseudo/pgpseudo/configs/sample"
)

func main() {
	n := flag.Int("customers", 1000, "number of customers")
	seed := flag.Uint64("seed", 42, "generator seed (same seed, same data)")
	flag.Parse()
	if *n < 1 {
		fmt.Fprintln(os.Stderr, "gen: -customers must be at least 1")
		os.Exit(2)
	}
	if err := sample.Write(os.Stdout, *n, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
