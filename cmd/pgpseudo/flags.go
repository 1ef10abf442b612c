package main

import (
	"errors"
	"flag"
	"io"
)

// parseFlags parses args into fs. A -h, -help or --help anywhere before
// "--" prints the command's usage on stdout and yields flag.ErrHelp, which
// flagError turns into success: asking for help is not a usage error.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return flag.ErrHelp
		}
	}
	return fs.Parse(args)
}

// flagError maps a flag parsing error to the command's result: after -h
// the usage is printed and run reports success; anything else is a usage
// error.
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &exitError{code: 2, err: err}
}
