package cdc

// BinlogFile and LagBytes expose the lag's arithmetic to the tests.
type BinlogFile struct {
	Name string
	Size int64
}

func LagBytes(logs []BinlogFile, file string, pos uint32) int64 {
	fs := make([]binlogFile, len(logs))
	for i, l := range logs {
		fs[i] = binlogFile{name: l.Name, size: l.Size}
	}
	return lagBytes(fs, binlogPos{File: file, Pos: pos})
}
