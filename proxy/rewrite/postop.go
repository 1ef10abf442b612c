package rewrite

import (
	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// PostOp returns a transformer that applies op to what tr makes of a text
// value of type oid (tr nil: to the value as it is): the cast or prefix a
// statement asked the server for, computed on the token instead of the
// clear value. It keeps scratch space: it serves one column plan.
func PostOp(tr crypto.Transformer, op sqlinfo.PostOp, oid uint32) crypto.Transformer {
	return &postOpT{inner: tr, op: op, oid: oid}
}

type postOpT struct {
	inner   crypto.Transformer
	op      sqlinfo.PostOp
	oid     uint32
	scratch []byte
}

// Transform implements crypto.Transformer.
func (t *postOpT) Transform(dst, src []byte) ([]byte, error) {
	v := src
	if t.inner != nil {
		var err error
		if v, err = t.inner.Transform(t.scratch[:0], src); err != nil {
			return dst, err
		}
		t.scratch = v
	}
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
