// Command agentauth is the agentauth gateway and its command-line client.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "agentauth:", err)
		os.Exit(exitCode(err))
	}
}
