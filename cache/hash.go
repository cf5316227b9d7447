package cache

// hashFunc picks a bucket for a key; both functions reproduce uWSGI's
// core/hash.c bit for bit, including its use of signed char.
type hashFunc func(key string) uint32

// Hash names accepted by the hash= key and reported in stats.
const (
	HashDJB33X  = "djb33x"
	HashMurmur2 = "murmur2"
)

func hashByName(name string) (hashFunc, bool) {
	switch name {
	case HashDJB33X:
		return djb33x, true
	case HashMurmur2:
		return murmur2, true
	}
	return nil, false
}

// signed widens a byte the way C widens a (signed) char on x86 and arm64
// Linux builds of uWSGI, so bytes >= 0x80 hash as uWSGI hashes them.
func signed(b byte) uint32 { return uint32(int32(int8(b))) }

// djb33x is Bernstein's hash with xor, as uWSGI's djb33x_hash.
func djb33x(key string) uint32 {
	h := uint32(5381)
	for i := 0; i < len(key); i++ {
		h = (h<<5 + h) ^ signed(key[i])
	}
	return h
}

// murmur2 is 32-bit MurmurHash2 with seed 0, as uWSGI's murmur2_hash
// (adapted from nginx). Two quirks of that code are kept so keys land in
// the same buckets: the tail bytes are read as signed chars, and they are
// read from the start of the key (its char pointer is never advanced), so
// it equals reference MurmurHash2 only for keys of up to 3 bytes or a
// multiple of 4.
func murmur2(key string) uint32 {
	const m = 0x5bd1e995
	h := uint32(len(key))
	i := 0
	for ; len(key)-i >= 4; i += 4 {
		k := uint32(key[i]) | uint32(key[i+1])<<8 | uint32(key[i+2])<<16 | uint32(key[i+3])<<24
		k *= m
		k ^= k >> 24
		k *= m
		h *= m
		h ^= k
	}
	switch len(key) - i {
	case 3:
		h ^= signed(key[2]) << 16
		fallthrough
	case 2:
		h ^= signed(key[1]) << 8
		fallthrough
	case 1:
		h ^= signed(key[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
