package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Key layout, version 1. Every key a broker writes to its storage.Engine is
// described here; the layout version lives at LayoutVersionKey and a broker
// refuses to open an engine written with a layout it does not know.
//
//	\x00layout                         layout version (uvarint)
//	g <group u64> h                    Raft HardState (protobuf)
//	g <group u64> c                    Raft ConfState (protobuf)
//	g <group u64> t                    truncated state: index u64, term u64 of the
//	                                   entry before the first stored entry
//	g <group u64> a                    applied state of the group's state machine
//	g <group u64> l <index u64>        Raft log entry (see encodeEntry)
//	g <group u64> o <offset u64>       partition offset index: batch base offset →
//	                                   Raft index (see offsetIndexValue)
//	g <group u64> p <producer u64>     idempotent producer state
//	g <group u64> e <epoch u64>        leader epoch start: the first offset
//	                                   written in that epoch (u64)
//	g <group u64> s <name>             state-machine private keys (metadata group)
//
// All integers are big-endian so that keys sort numerically. Everything a
// group owns lies in [groupPrefix(id), groupPrefix(id+1)), so deleting a
// group is one range delete.
const LayoutVersion = 1

// LayoutVersionKey is where the engine's key layout version is stored.
var LayoutVersionKey = []byte("\x00layout")

const (
	suffixHardState  = 'h'
	suffixConfState  = 'c'
	suffixTruncated  = 't'
	suffixApplied    = 'a'
	suffixLog        = 'l'
	suffixOffset     = 'o'
	suffixProducer   = 'p'
	suffixPrivate    = 's'
	suffixEpoch      = 'e'
	groupPrefixByte  = 'g'
	groupPrefixLen   = 9
	groupKeyFixedLen = groupPrefixLen + 1
)

func groupPrefix(id uint64) []byte {
	k := make([]byte, groupPrefixLen, groupKeyFixedLen+8)
	k[0] = groupPrefixByte
	binary.BigEndian.PutUint64(k[1:], id)
	return k
}

// groupSpan returns the half-open key span holding everything of group id.
func groupSpan(id uint64) (start, end []byte) {
	start = groupPrefix(id)
	if id == ^uint64(0) {
		return start, []byte{groupPrefixByte + 1}
	}
	end = make([]byte, groupPrefixLen)
	end[0] = groupPrefixByte
	binary.BigEndian.PutUint64(end[1:], id+1)
	return start, end
}

func groupKey(id uint64, suffix byte) []byte {
	return append(groupPrefix(id), suffix)
}

func groupKeyU64(id uint64, suffix byte, n uint64) []byte {
	return binary.BigEndian.AppendUint64(append(groupPrefix(id), suffix), n)
}

func hardStateKey(id uint64) []byte { return groupKey(id, suffixHardState) }
func confStateKey(id uint64) []byte { return groupKey(id, suffixConfState) }
func truncatedKey(id uint64) []byte { return groupKey(id, suffixTruncated) }
func appliedKey(id uint64) []byte   { return groupKey(id, suffixApplied) }

func logKey(id, index uint64) []byte { return groupKeyU64(id, suffixLog, index) }

func offsetKey(id uint64, offset int64) []byte {
	return groupKeyU64(id, suffixOffset, uint64(offset))
}

func producerKey(id uint64, producerID int64) []byte {
	return groupKeyU64(id, suffixProducer, uint64(producerID))
}

func epochKey(id uint64, epoch uint64) []byte { return groupKeyU64(id, suffixEpoch, epoch) }

// PrivateKey returns a key in group id's private key space, for state
// machines (like the metadata group) that keep their own records.
func PrivateKey(id uint64, name string) []byte {
	return append(groupKey(id, suffixPrivate), name...)
}

// decodeU64Suffix returns the trailing big-endian u64 of a fixed-layout key.
func decodeU64Suffix(key []byte) (uint64, error) {
	if len(key) != groupKeyFixedLen+8 {
		return 0, fmt.Errorf("raftlog: malformed key %x", key)
	}
	return binary.BigEndian.Uint64(key[groupKeyFixedLen:]), nil
}

// Stored Raft log entries, format version 1:
//
//	[0]     format version (1)
//	[1]     raftpb.EntryType
//	[2:10]  term
//	[10:]   entry data
//
// The index is in the key. Data follows the header unchanged so that a
// partition's record batch can be served straight from the stored value.
const (
	entryFormatV1     = 1
	entryHeaderLen    = 10
	truncatedValueLen = 16
)

var errCorruptEntry = errors.New("raftlog: corrupt stored entry")

// putEntryValue writes the stored form of an entry into v, which is
// exactly entryHeaderLen+len(data) bytes: format version, entry type, term
// (big endian), data.
func putEntryValue(v []byte, typ byte, term uint64, data []byte) {
	v[0], v[1] = entryFormatV1, typ
	binary.BigEndian.PutUint64(v[2:entryHeaderLen], term)
	copy(v[entryHeaderLen:], data)
}

// decodeEntryValue splits a stored entry. data aliases v.
func decodeEntryValue(v []byte) (typ byte, term uint64, data []byte, err error) {
	if len(v) < entryHeaderLen || v[0] != entryFormatV1 {
		return 0, 0, nil, errCorruptEntry
	}
	return v[1], binary.BigEndian.Uint64(v[2:10]), v[entryHeaderLen:], nil
}
