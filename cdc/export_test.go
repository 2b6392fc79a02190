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

// StreamError is the task's reading of a stream error at binlog.000001:4
// (GTIDs 0-1-7).
func StreamError(err error) error {
	return (&binlogTask{}).streamError(err, binlogPos{File: "binlog.000001", Pos: 4, GTIDs: "0-1-7"})
}
