package router

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// mathNode is a parsed ${math[...]} expression. uWSGI hands the text to
// libmatheval; gouwsgi supports the common subset: numbers, request vars by
// name (read as numbers, 0 when absent or not numeric), + - * / %, unary
// minus and parentheses. Division by zero yields 0.
type mathNode interface {
	eval(st *state) float64
}

type mathNum float64

func (n mathNum) eval(*state) float64 { return float64(n) }

type mathVar string

func (v mathVar) eval(st *state) float64 {
	f, err := strconv.ParseFloat(st.r.Vars.Value(string(v)), 64)
	if err != nil {
		return 0
	}
	return f
}

type mathNeg struct{ x mathNode }

func (n mathNeg) eval(st *state) float64 { return -n.x.eval(st) }

type mathBin struct {
	op   byte
	l, r mathNode
}

func (n mathBin) eval(st *state) float64 {
	l, r := n.l.eval(st), n.r.eval(st)
	switch n.op {
	case '+':
		return l + r
	case '-':
		return l - r
	case '*':
		return l * r
	case '/':
		if r == 0 {
			return 0
		}
		return l / r
	default: // '%'
		if r == 0 {
			return 0
		}
		return math.Mod(l, r)
	}
}

type mathParser struct {
	s   string
	pos int
}

func parseMath(s string) (mathNode, error) {
	p := &mathParser{s: s}
	n, err := p.expr()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.pos != len(p.s) {
		return nil, fmt.Errorf("math: unexpected %q at offset %d", p.s[p.pos:], p.pos)
	}
	return n, nil
}

func (p *mathParser) space() {
	for p.pos < len(p.s) && p.s[p.pos] == ' ' {
		p.pos++
	}
}

func (p *mathParser) peek() byte {
	p.space()
	if p.pos < len(p.s) {
		return p.s[p.pos]
	}
	return 0
}

func (p *mathParser) expr() (mathNode, error) {
	return p.binary("+-", p.term)
}

func (p *mathParser) term() (mathNode, error) {
	return p.binary("*/%", p.factor)
}

// binary parses a left-associative chain of the operators in ops.
func (p *mathParser) binary(ops string, operand func() (mathNode, error)) (mathNode, error) {
	l, err := operand()
	if err != nil {
		return nil, err
	}
	for {
		c := p.peek()
		if c == 0 || !strings.ContainsRune(ops, rune(c)) {
			return l, nil
		}
		p.pos++
		r, err := operand()
		if err != nil {
			return nil, err
		}
		l = mathBin{op: c, l: l, r: r}
	}
}

func (p *mathParser) factor() (mathNode, error) {
	c := p.peek()
	switch {
	case c == '-':
		p.pos++
		x, err := p.factor()
		if err != nil {
			return nil, err
		}
		return mathNeg{x}, nil
	case c == '(':
		p.pos++
		x, err := p.expr()
		if err != nil {
			return nil, err
		}
		if p.peek() != ')' {
			return nil, fmt.Errorf("math: missing ) at offset %d", p.pos)
		}
		p.pos++
		return x, nil
	case c >= '0' && c <= '9' || c == '.':
		start := p.pos
		for p.pos < len(p.s) && (p.s[p.pos] >= '0' && p.s[p.pos] <= '9' || p.s[p.pos] == '.') {
			p.pos++
		}
		f, err := strconv.ParseFloat(p.s[start:p.pos], 64)
		if err != nil {
			return nil, fmt.Errorf("math: bad number %q", p.s[start:p.pos])
		}
		return mathNum(f), nil
	case c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
		start := p.pos
		for p.pos < len(p.s) && isIdent(p.s[p.pos]) {
			p.pos++
		}
		return mathVar(p.s[start:p.pos]), nil
	case c == 0:
		return nil, fmt.Errorf("math: unexpected end of expression")
	}
	return nil, fmt.Errorf("math: unexpected %q at offset %d", c, p.pos)
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
}
