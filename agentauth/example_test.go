package agentauth_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/agentauth/agentauth/agentauth"
	"github.com/agentauth/agentauth/agentauth/control/api"
)

// This example starts a run as the local user over the control socket,
// joins it as the agent (as a process started by `agentauth run start`
// would, from its environment), and delegates part of its grants to a
// child run, which joins in turn.
func Example() {
	dir, _ := os.MkdirTemp("", "agentauth-example-")
	defer os.RemoveAll(dir)
	g, stop, err := newGateway(dir, 10*time.Minute) // a control server, CA and run store
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
	ctx := context.Background()

	// The sponsor: the OS user on the control socket.
	start, err := agentauth.DialSocket(g.socket).StartRun(ctx, api.StartRunRequest{
		Agent: "researcher", Grants: []string{"read"}, Purpose: "summarize the notes"})
	if err != nil {
		log.Fatal(err)
	}

	// The agent: generates its key in memory and trades the token for an SVID.
	run, err := agentauth.JoinEnrollment(ctx, agentauth.Enrollment{Control: g.controlURL,
		BootstrapToken: start.BootstrapToken, SPIFFEID: start.Run.SPIFFEID, TrustBundle: g.bundlePath})
	if err != nil {
		log.Fatal(err)
	}
	defer run.Close()
	fmt.Println("joined as run", run.ID() == start.Run.ID)

	// Delegation: the child's enrollment goes to the process that acts as it.
	child, err := run.Delegate(ctx, api.DelegateRequest{Agent: "summarizer", Grants: []string{"read"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("child chain length", len(child.Run.Chain))
	sub, err := agentauth.JoinEnrollment(ctx, child.Enrollment)
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	fmt.Println("child SPIFFE ID path starts with", sub.SPIFFEID().Path()[:len("/agents/summarizer/runs/")])
	// Output:
	// joined as run true
	// child chain length 2
	// child SPIFFE ID path starts with /agents/summarizer/runs/
}

// A tool server reads the transaction token of the call it is serving and
// passes it on when it calls another tool through the gateway.
func ExampleTxnTokenFromRequest() {
	var incoming = newCallWithToken("eyJ…") // the gateway's call to this tool server
	if tok, ok := agentauth.TxnTokenFromRequest(incoming); ok {
		ctx := agentauth.WithTxnToken(context.Background(), tok)
		_ = ctx // use ctx for calls made with the tool server's MCP client
		fmt.Println("token found")
	}
	// Output: token found
}

// A program on the gateway's host starts a run as its OS user and acts as
// that run itself: the key stays in this process and the CSR travels with
// the start request.
func ExampleStartRun() {
	dir, _ := os.MkdirTemp("", "agentauth-example-")
	defer os.RemoveAll(dir)
	g, stop, err := newGateway(dir, 10*time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	defer stop()

	run, err := agentauth.StartRun(context.Background(), agentauth.DialSocket(g.socket),
		api.StartRunRequest{Agent: "researcher", Grants: []string{"read"}, Purpose: "nightly report"},
		agentauth.Enrollment{Control: g.controlURL})
	if err != nil {
		log.Fatal(err)
	}
	defer run.Close()
	svid, _ := run.GetX509SVID()
	fmt.Println(svid.ID.TrustDomain(), len(svid.Certificates) > 0)
	// Output: agentauth.local true
}
