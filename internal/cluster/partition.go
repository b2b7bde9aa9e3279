package cluster

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Partition is a test-only transport wrapper (Config.WrapStream) that
// cuts a node off the network: Cut(true) closes every connection of the
// node's Raft transport and makes every new one, both ways, fail, as a
// firewall dropping its port would; Cut(false) heals it. The Raft-level
// and the daemon-level partition tests use it.
type Partition struct {
	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

// Wrap is a Config.WrapStream.
func (p *Partition) Wrap(s raft.StreamLayer) raft.StreamLayer {
	return &cutStream{StreamLayer: s, p: p}
}

// Cut cuts the node off (down) or heals it.
func (p *Partition) Cut(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

func (p *Partition) track(c net.Conn) (net.Conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		c.Close()
		return nil, errors.New("partitioned")
	}
	p.conns = append(p.conns, c)
	return c, nil
}

type cutStream struct {
	raft.StreamLayer
	p *Partition
}

func (s *cutStream) Accept() (net.Conn, error) {
	for {
		c, err := s.StreamLayer.Accept()
		if err != nil {
			return nil, err
		}
		if c, err := s.p.track(c); err == nil {
			return c, nil
		}
	}
}

func (s *cutStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := s.StreamLayer.Dial(addr, timeout)
	if err != nil {
		return nil, err
	}
	return s.p.track(c)
}
