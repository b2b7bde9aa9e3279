package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"deskd/config"
	"deskd/daemon"
	"deskd/internal/cluster"
)

// clusterConfig is the daemon's cluster membership from the cluster
// section (nil when it is off: the single-node daemon).
func clusterConfig(cfg *config.Config) (*cluster.Config, error) {
	c := cfg.Cluster
	if !c.Enabled() {
		return nil, nil
	}
	out := &cluster.Config{
		NodeID: c.NodeID, Bind: c.Bind, Advertise: c.Advertise,
		Dir: c.Dir, MaxEntryBytes: c.MaxEntryBytes,
	}
	for _, p := range c.Peers {
		out.Peers = append(out.Peers, cluster.Peer{ID: p.ID, Address: p.Address})
	}
	if c.TLS.Cert != "" {
		t, err := cluster.LoadTLS(c.TLS.Cert, c.TLS.Key, c.TLS.CA)
		if err != nil {
			return nil, err
		}
		out.TLS = t
	}
	return out, nil
}

// cmdCluster answers `deskd cluster status|add-voter|remove|
// transfer-leadership` through the running daemon's admin socket.
func cmdCluster(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"cluster: status, add-voter ID ADDRESS, remove ID, or transfer-leadership [ID]"}
	}
	sub := args[0]
	fs := flag.NewFlagSet("cluster "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	sf := addStoreFlags(fs)
	asJSON := fs.Bool("json", false, "status: print JSON")
	var pos []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			return usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	loc, err := sf.locate()
	if err != nil {
		return err
	}
	if loc.socket == "" {
		return usageError{"cluster: no admin socket (admin.socket or --socket): the cluster commands talk to a running daemon"}
	}
	req := daemon.AdminRequest{}
	switch {
	case sub == "status" && len(pos) == 0:
		var st cluster.Status
		if err := daemon.AdminCall(loc.socket, daemon.AdminRequest{Op: "cluster.status"}, &st); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(stdout, st)
		}
		fmt.Fprintf(stdout, "node %s: %s, term %d, commit index %d, applied %d (%d behind), in the store %d\n", st.NodeID, st.State, st.Term, st.CommitIndex, st.AppliedIndex, st.Behind, st.StoreIndex)
		if st.LeaderID == "" {
			fmt.Fprintln(stdout, "leader: none known")
		} else {
			fmt.Fprintf(stdout, "leader: %s (%s)", st.LeaderID, st.LeaderAddr)
			if st.State != "Leader" && !st.LastContact.IsZero() {
				fmt.Fprintf(stdout, ", last contact %s ago", time.Since(st.LastContact).Round(time.Millisecond))
			}
			fmt.Fprintln(stdout)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tADDRESS\tVOTER")
		for _, s := range st.Servers {
			fmt.Fprintf(tw, "%s\t%s\t%v\n", s.ID, s.Address, s.Voter)
		}
		return tw.Flush()
	case sub == "add-voter" && len(pos) == 2:
		req = daemon.AdminRequest{Op: "cluster.add-voter", Node: pos[0], Address: pos[1]}
	case sub == "remove" && len(pos) == 1:
		req = daemon.AdminRequest{Op: "cluster.remove", Node: pos[0]}
	case sub == "transfer-leadership" && len(pos) <= 1:
		req = daemon.AdminRequest{Op: "cluster.transfer"}
		if len(pos) == 1 {
			req.Node = pos[0]
		}
	default:
		return usageError{"cluster: status, add-voter ID ADDRESS, remove ID, or transfer-leadership [ID]"}
	}
	var ok string
	if err := daemon.AdminCall(loc.socket, req, &ok); err != nil {
		return err
	}
	fmt.Fprintln(stdout, ok)
	return nil
}
