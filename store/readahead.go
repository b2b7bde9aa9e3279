package store

// readahead is the range of the store's map a walk last asked the kernel
// to read ahead (readAhead).
type readahead struct{ lo, hi uintptr }
