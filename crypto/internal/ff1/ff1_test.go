package ff1

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"
)

const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"

func toNumerals(t *testing.T, s string) []byte {
	t.Helper()
	out := make([]byte, len(s))
	for i := range s {
		j := strings.IndexByte(alphabet, s[i])
		if j < 0 {
			t.Fatalf("bad numeral %q", s[i])
		}
		out[i] = byte(j)
	}
	return out
}

func fromNumerals(x []byte) string {
	var sb strings.Builder
	for _, d := range x {
		sb.WriteByte(alphabet[d])
	}
	return sb.String()
}

// TestNISTSamples runs the FF1 sample vectors published by NIST for
// SP 800-38G (FF1samples.pdf): samples 1-3 AES-128, 4-6 AES-192, 7-9 AES-256.
func TestNISTSamples(t *testing.T) {
	const (
		k128 = "2B7E151628AED2A6ABF7158809CF4F3C"
		k192 = k128 + "EF4359D8D580AA4F"
		k256 = k192 + "7F036D6F04FC6A94"
		tw10 = "39383736353433323130"
		tw36 = "3737373770717273373737"
		pt10 = "0123456789"
		pt36 = "0123456789abcdefghi"
	)
	cases := []struct {
		name, key, tweak, pt, ct string
		radix                    int
	}{
		{"sample1", k128, "", pt10, "2433477484", 10},
		{"sample2", k128, tw10, pt10, "6124200773", 10},
		{"sample3", k128, tw36, pt36, "a9tv40mll9kdu509eum", 36},
		{"sample4", k192, "", pt10, "2830668132", 10},
		{"sample5", k192, tw10, pt10, "2496655549", 10},
		{"sample6", k192, tw36, pt36, "xbj3kv35jrawxv32ysr", 36},
		{"sample7", k256, "", pt10, "6657667009", 10},
		{"sample8", k256, tw10, pt10, "1001623463", 10},
		{"sample9", k256, tw36, pt36, "xs8a0azh2avyalyzuwd", 36},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key, _ := hex.DecodeString(tc.key)
			tweak, _ := hex.DecodeString(tc.tweak)
			c, err := New(key, tc.radix)
			if err != nil {
				t.Fatal(err)
			}
			x := toNumerals(t, tc.pt)
			out := make([]byte, len(x))
			if err := c.Encrypt(out, x, tweak); err != nil {
				t.Fatal(err)
			}
			if got := fromNumerals(out); got != tc.ct {
				t.Fatalf("encrypt = %s, want %s", got, tc.ct)
			}
			// The big.Int path must agree with the uint64 path.
			slow := make([]byte, len(x))
			c.slow(slow, x, tweak, true, len(x)/2, len(x)-len(x)/2)
			if !bytes.Equal(slow, out) {
				t.Fatalf("slow path = %s, want %s", fromNumerals(slow), tc.ct)
			}
			if err := c.Decrypt(out, out, tweak); err != nil {
				t.Fatal(err)
			}
			if got := fromNumerals(out); got != tc.pt {
				t.Fatalf("decrypt = %s, want %s", got, tc.pt)
			}
		})
	}
}

func TestFastMatchesSlowAndRoundTrips(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	key := make([]byte, 32)
	for _, radix := range []int{2, 10, 16, 36, 256} {
		c, err := New(key, radix)
		if err != nil {
			t.Fatal(err)
		}
		for n := c.MinLen(); n < 80; n++ {
			x := make([]byte, n)
			for i := range x {
				x[i] = byte(rng.IntN(radix))
			}
			tweak := []byte("tw")
			got := make([]byte, n)
			if err := c.Encrypt(got, x, tweak); err != nil {
				t.Fatal(err)
			}
			want := make([]byte, n)
			c.slow(want, x, tweak, true, n/2, n-n/2)
			if !bytes.Equal(got, want) {
				t.Fatalf("radix %d n %d: fast != slow", radix, n)
			}
			back := make([]byte, n)
			if err := c.Decrypt(back, got, tweak); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back, x) {
				t.Fatalf("radix %d n %d: round trip failed", radix, n)
			}
		}
	}
}

func TestErrors(t *testing.T) {
	c, _ := New(make([]byte, 16), 10)
	if err := c.Encrypt(make([]byte, 1), []byte{1}, nil); err != ErrLength {
		t.Fatalf("len 1: %v", err)
	}
	if err := c.Encrypt(make([]byte, 6), []byte{1, 2, 3, 4, 5, 10}, nil); err != ErrNumeral {
		t.Fatalf("numeral: %v", err)
	}
	if _, err := New(make([]byte, 16), 1); err != ErrRadix {
		t.Fatalf("radix: %v", err)
	}
}

// TestMinimumDomain: domains below 10^6 values (NIST SP 800-38G Rev. 1,
// second public draft) are refused, by both APIs, for every radix.
func TestMinimumDomain(t *testing.T) {
	for _, tc := range []struct{ radix, minLen int }{{2, 20}, {10, 6}, {16, 5}, {36, 4}, {256, 3}} {
		c, err := New(make([]byte, 16), tc.radix)
		if err != nil {
			t.Fatal(err)
		}
		if c.MinLen() != tc.minLen {
			t.Errorf("radix %d: MinLen %d, want %d", tc.radix, c.MinLen(), tc.minLen)
		}
		short := make([]byte, tc.minLen-1)
		if err := c.Encrypt(make([]byte, len(short)), short, nil); err != ErrLength {
			t.Errorf("radix %d, %d numerals: %v, want ErrLength", tc.radix, len(short), err)
		}
		if err := c.Decrypt(make([]byte, len(short)), short, nil); err != ErrLength {
			t.Errorf("radix %d, %d numerals (decrypt): %v, want ErrLength", tc.radix, len(short), err)
		}
		if err := c.Encrypt(make([]byte, tc.minLen), make([]byte, tc.minLen), nil); err != nil {
			t.Errorf("radix %d, %d numerals: %v", tc.radix, tc.minLen, err)
		}
	}
	c, _ := New(make([]byte, 16), 2)
	if _, err := c.EncryptValue(1, 16, nil); err != ErrLength {
		t.Errorf("16-bit value (int2): %v, want ErrLength", err)
	}
	if _, err := c.EncryptValue(1, 20, nil); err != nil {
		t.Errorf("20-bit value: %v", err)
	}
}

func BenchmarkEncrypt64Bits(b *testing.B) {
	c, _ := New(make([]byte, 32), 2)
	x := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		_ = c.Encrypt(x, x, nil)
	}
}

func TestValueMatchesNumerals(t *testing.T) {
	c, _ := New(make([]byte, 32), 2)
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		x := rng.Uint64()
		nums := make([]byte, 64)
		for i := range nums {
			nums[i] = byte(x >> (63 - i) & 1)
		}
		if err := c.Encrypt(nums, nums, []byte("t")); err != nil {
			t.Fatal(err)
		}
		want := num(nums, 2)
		got, err := c.EncryptValue(x, 64, []byte("t"))
		if err != nil || got != want {
			t.Fatalf("EncryptValue = %x, %v; want %x", got, err, want)
		}
		back, _ := c.DecryptValue(got, 64, []byte("t"))
		if back != x {
			t.Fatal("DecryptValue round trip")
		}
	}
}

func BenchmarkEncryptValue64(b *testing.B) {
	c, _ := New(make([]byte, 32), 2)
	b.ReportAllocs()
	var x uint64
	for b.Loop() {
		x, _ = c.EncryptValue(x, 64, nil)
	}
}
