package sqldb

import (
	"database/sql"
	"time"

	"github.com/go-sql-driver/mysql"
)

// ParseMySQLDSN checks a MySQL DSN; the error says what is wrong with it.
func ParseMySQLDSN(dsn string) (*mysql.Config, error) {
	return mysql.ParseDSN(dsn)
}

// Pool sizes a MySQL connection pool.
type Pool struct {
	MaxOpen     int
	MaxIdle     int
	MaxIdleTime time.Duration // 0: a minute
	MaxLifetime time.Duration // 0: unlimited
}

// OpenMySQL opens a pool on dsn (it does not connect yet). Queries
// interpolate their arguments: without it the driver prepares, executes
// and closes a statement for every query with arguments (a tenth of the
// CPU of smp-bench dispatch on MySQL); safe with utf8mb4, the only charset
// SMP uses. SMP scans times as integers, so parseTime and other DSN
// parameters are dropped when plain is true. WithCounters counts its
// statements and commits.
func OpenMySQL(dsn string, plain bool, p Pool, opts ...Option) (*sql.DB, error) {
	c, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if plain {
		c.ParseTime = false
		c.Params = nil
	}
	c.InterpolateParams = true
	var db *sql.DB
	if o := applyOptions(opts); o.counters != nil {
		conn, err := mysql.NewConnector(c)
		if err != nil {
			return nil, err
		}
		db = sql.OpenDB(countingConnector{Connector: conn, c: o.counters})
	} else if db, err = sql.Open("mysql", c.FormatDSN()); err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(p.MaxOpen)
	db.SetMaxIdleConns(p.MaxIdle)
	if p.MaxIdleTime <= 0 {
		p.MaxIdleTime = time.Minute
	}
	db.SetConnMaxIdleTime(p.MaxIdleTime)
	if p.MaxLifetime > 0 {
		db.SetConnMaxLifetime(p.MaxLifetime)
	}
	return db, nil
}
