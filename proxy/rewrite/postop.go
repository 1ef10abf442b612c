package rewrite

import (
	"sync"

	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// PostOp returns a transformer that applies op to what tr makes of a text
// value of type oid (tr nil: to the value as it is): the cast or prefix a
// statement asked the server for, computed on the token instead of the
// clear value. Like every Transformer, it is safe for concurrent use (a
// large result's rows are rewritten on several cores).
func PostOp(tr crypto.Transformer, op sqlinfo.PostOp, oid uint32) crypto.Transformer {
	return &postOpT{inner: tr, op: op, oid: oid}
}

type postOpT struct {
	inner   crypto.Transformer
	op      sqlinfo.PostOp
	oid     uint32
	scratch sync.Pool // *[]byte: what inner made of the value, per call
}

// Transform implements crypto.Transformer.
func (t *postOpT) Transform(dst, src []byte) ([]byte, error) {
	if t.inner == nil {
		return t.op.Apply(dst, src, t.oid), nil
	}
	sc, _ := t.scratch.Get().(*[]byte)
	if sc == nil {
		sc = new([]byte)
	}
	defer t.scratch.Put(sc)
	v, err := t.inner.Transform((*sc)[:0], src)
	if err != nil {
		return dst, err
	}
	*sc = v
	return t.op.Apply(dst, v, t.oid), nil
}

// ReturnsNull implements crypto.Transformer.
func (t *postOpT) ReturnsNull() bool { return t.inner != nil && t.inner.ReturnsNull() }

// KeyVersion implements crypto.Transformer.
func (t *postOpT) KeyVersion() uint32 {
	if t.inner == nil {
		return 0
	}
	return t.inner.KeyVersion()
}
