package coordinator

import "unicode/utf16"

// OffsetsTopic is the internal topic that holds committed offsets and
// group metadata, as in Kafka.
const OffsetsTopic = "__consumer_offsets"

// PartitionFor returns the __consumer_offsets partition of group when the
// topic has n partitions, as Kafka computes it: Utils.abs of the Java
// String.hashCode of the group id, modulo n. Clients never compute it, but
// keeping Kafka's mapping keeps a migrated topic's groups where they are.
func PartitionFor(group string, n int) int32 {
	if n <= 0 {
		return 0
	}
	return int32(javaAbs(javaStringHash(group)) % int32(n))
}

// javaStringHash is Java's String.hashCode: s[0]*31^(n-1) + ... + s[n-1]
// over the UTF-16 code units, in int32 arithmetic that wraps.
func javaStringHash(s string) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(s)) {
		h = 31*h + int32(u)
	}
	return h
}

// javaAbs is Kafka's Utils.abs: the absolute value, with MinInt32 mapped
// to 0 instead of itself.
func javaAbs(n int32) int32 {
	if n == -1<<31 {
		return 0
	}
	if n < 0 {
		return -n
	}
	return n
}
