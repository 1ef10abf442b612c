package proxy

import (
	"sync"

	"github.com/pgpseudo/pgpseudo/crypto"
)

// transformerKey identifies a built transformer: the same spec on the
// same type and format with the same keyset gives the same transformer.
type transformerKey struct {
	spec   crypto.Spec
	oid    uint32
	format int16
	ks     *crypto.Keyset
}

// transformerCache keeps built transformers (which derive subkeys and
// expand AES keys) across column plans: a plan is built per result, often
// for one-row statements. Transformers are safe for concurrent use. A new
// keyset (rotation, reload) gives new keys; the cache starts over when full.
type transformerCache struct {
	mu    sync.Mutex
	max   int
	items map[transformerKey]crypto.Transformer
}

func newTransformerCache(max int) *transformerCache {
	return &transformerCache{max: max, items: map[transformerKey]crypto.Transformer{}}
}

// get returns the transformer for spec, building it on a miss.
func (c *transformerCache) get(spec crypto.Spec, ks *crypto.Keyset, oid uint32, format int16) (crypto.Transformer, error) {
	k := transformerKey{spec: spec, oid: oid, format: format, ks: ks}
	c.mu.Lock()
	tr, ok := c.items[k]
	c.mu.Unlock()
	if ok {
		return tr, nil
	}
	tr, err := crypto.New(spec, ks, oid, format)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.items) >= c.max {
		c.items = make(map[transformerKey]crypto.Transformer, c.max)
	}
	c.items[k] = tr
	c.mu.Unlock()
	return tr, nil
}
