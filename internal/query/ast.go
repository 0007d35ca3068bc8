package query

import (
	"regexp"
	"time"
)

type cmdKind uint8

const (
	cmdFields cmdKind = iota
	cmdDisplay
	cmdFilter
	cmdStats
	cmdSort
	cmdLimit
	cmdDedup
	cmdParse
)

// Query is a parsed Logs Insights query.
type Query struct {
	src  string
	cmds []*command
}

type command struct {
	kind  cmdKind
	off   int
	items []namedExpr // fields; stats "by" groups
	expr  Expr        // filter condition; parse source
	aggs  []aggSpec   // stats
	sorts []sortKey   // sort
	limit int         // limit
	names []string    // display, dedup, parse outputs
	re    *regexp.Regexp
}

type namedExpr struct {
	name string
	e    Expr
}

type aggSpec struct {
	name string // output column
	fn   string // lower-case function name
	arg  Expr   // nil for count(), count(*)
	p    float64
}

type sortKey struct {
	e    Expr
	desc bool
}

// period is a bin/datefloor unit: a fixed duration, or calendar months.
type period struct {
	d      time.Duration
	months int
}

// Expr is an expression node.
type Expr interface{ pos() int }

type litExpr struct {
	off int
	v   Value
}

type fieldExpr struct {
	off  int
	name string
}

type periodExpr struct {
	off int
	p   period
}

type unaryExpr struct {
	off int
	op  string // "-", "not"
	x   Expr
}

type binExpr struct {
	off  int
	op   string
	l, r Expr
}

// matchExpr is like / not like / =~.
type matchExpr struct {
	off int
	x   Expr
	sub string         // like "substring"
	re  *regexp.Regexp // like /re/, =~ /re/
	not bool
}

type inExpr struct {
	off  int
	x    Expr
	list []Expr
	not  bool
}

type callExpr struct {
	off  int
	fn   string // lower case
	args []Expr
}

func (e *litExpr) pos() int    { return e.off }
func (e *fieldExpr) pos() int  { return e.off }
func (e *periodExpr) pos() int { return e.off }
func (e *unaryExpr) pos() int  { return e.off }
func (e *binExpr) pos() int    { return e.off }
func (e *matchExpr) pos() int  { return e.off }
func (e *inExpr) pos() int     { return e.off }
func (e *callExpr) pos() int   { return e.off }
