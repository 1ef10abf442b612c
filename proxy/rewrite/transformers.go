package rewrite

import (
	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/internal/lru"
)

// transformerKey identifies a built transformer: the same spec on the
// same type and format with the same keyset gives the same transformer.
type transformerKey struct {
	spec   crypto.Spec
	oid    uint32
	format int16
	ks     *crypto.Keyset
}

// Transformers keeps built transformers (which derive subkeys and expand
// AES keys) across column plans: a plan is built per result, often for
// one-row statements. Transformers are safe for concurrent use. A new
// keyset (rotation, reload) is part of the key, so it gets new
// transformers; old ones age out.
type Transformers struct {
	items *lru.Cache[transformerKey, crypto.Transformer]
}

// NewTransformers returns a cache of at most max transformers.
func NewTransformers(max int) *Transformers {
	// A transformer holds a few expanded keys: about 4 KiB.
	return &Transformers{items: lru.New[transformerKey, crypto.Transformer](max, int64(max)*4096,
		func(transformerKey, crypto.Transformer) int64 { return 4096 })}
}

// Get returns the transformer for spec, building it on a miss.
func (c *Transformers) Get(spec crypto.Spec, ks *crypto.Keyset, oid uint32, format int16) (crypto.Transformer, error) {
	k := transformerKey{spec: spec, oid: oid, format: format, ks: ks}
	if tr, ok := c.items.Get(k); ok {
		return tr, nil
	}
	tr, err := crypto.New(spec, ks, oid, format)
	if err != nil {
		return nil, err
	}
	c.items.Put(k, tr)
	return tr, nil
}

// CacheStats reports the cache's size and counters, for metrics.
func (c *Transformers) CacheStats() lru.Stats { return c.items.Stats() }
