package cluster

import (
	"bytes"
	"fmt"

	"github.com/klauspost/compress/zstd"

	"deskd/store"
)

// A log entry's data is a write set (store.WriteSet, which starts with
// its version byte), or a zstd frame of one. The records in a write set
// are JSON (a case, its list line, a message's metadata, deadlines) and
// compress several times over; the mails in it are compressed already.
// A group of 64 decisions is about 520 KB as it is and half that
// compressed, and every entry is written to the Raft log on three nodes
// and sent twice over TLS before it counts as committed, so the smaller
// entry commits sooner; each node spends about a millisecond to expand it
// before applying it.
var (
	entryEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	// maxEntryDecoded is above every entry a leader writes: a write set is
	// split into pieces of cluster.max_entry_bytes (at most 64 MiB) before
	// it is compressed.
	entryDecoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxEntryDecoded))
	zstdMagic       = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

const maxEntryDecoded = 128 << 20

// encodeEntry is the data of the log entry that carries ws: compressed
// when that makes it smaller.
func encodeEntry(ws store.WriteSet) []byte {
	z := entryEncoder.EncodeAll(ws, make([]byte, 0, len(ws)/2))
	if len(z) >= len(ws) {
		return ws
	}
	return z
}

// decodeEntry is the write set a log entry's data carries.
func decodeEntry(data []byte) (store.WriteSet, error) {
	if !bytes.HasPrefix(data, zstdMagic) {
		return store.WriteSet(data), nil
	}
	ws, err := entryDecoder.DecodeAll(data, nil)
	if err != nil {
		return nil, fmt.Errorf("cluster: entry: %w", err)
	}
	return store.WriteSet(ws), nil
}
