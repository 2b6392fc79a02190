package readmodel

import (
	"embed"
	"fmt"
	"path"
	"regexp"
	"strconv"

	"smp"
)

// The versioned mappings: mappings/<table>-v<N>.json, Elasticsearch's
// mapping documents. The sink's index for a table is <table>-v<N> behind
// the alias <table> (orders-v1 behind orders); a corrected mapping is a new
// file and `smp ctl readmodel reindex --mapping FILE` moves the alias to an
// index made from it.
//
//go:embed mappings/*.json
var mappings embed.FS

var mappingName = regexp.MustCompile(`^([a-z_]+)-v([0-9]+)\.json$`)

// Tables are the captured tables the read model indexes, each behind the
// alias of its name.
var Tables = []string{"orders", "order_transitions"}

// Mapping is one versioned mapping file.
type Mapping struct {
	Table   string // the alias
	Version int
	Body    []byte
}

// Index is the index the mapping makes: <table>-v<version>.
func (m Mapping) Index() string { return m.Table + "-v" + strconv.Itoa(m.Version) }

// ParseMappingName reads <table>-v<N>.json.
func ParseMappingName(file string) (table string, version int, err error) {
	sub := mappingName.FindStringSubmatch(path.Base(file))
	if sub == nil {
		return "", 0, smp.Errorf(smp.EINVALID, "mapping file %q: must be named <table>-v<N>.json (orders-v2.json)", path.Base(file))
	}
	v, _ := strconv.Atoi(sub[2])
	return sub[1], v, nil
}

// LatestMappings returns the newest mapping of each table in Tables.
func LatestMappings() ([]Mapping, error) {
	entries, err := mappings.ReadDir("mappings")
	if err != nil {
		return nil, err
	}
	latest := map[string]Mapping{}
	for _, e := range entries {
		table, v, err := ParseMappingName(e.Name())
		if err != nil {
			return nil, err
		}
		if cur, ok := latest[table]; ok && cur.Version >= v {
			continue
		}
		body, err := mappings.ReadFile("mappings/" + e.Name())
		if err != nil {
			return nil, err
		}
		latest[table] = Mapping{Table: table, Version: v, Body: body}
	}
	out := make([]Mapping, 0, len(Tables))
	for _, t := range Tables {
		m, ok := latest[t]
		if !ok {
			return nil, fmt.Errorf("readmodel: no mapping for table %s", t)
		}
		out = append(out, m)
	}
	return out, nil
}
