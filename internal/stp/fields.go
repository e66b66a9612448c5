package stp

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Field numbers shared by STPSimple and STPSimpleGroup (draft §2.3).
const (
	fAmpType            protoreflect.FieldNumber = 1
	fAmpVersion         protoreflect.FieldNumber = 2
	fSequenceNumber     protoreflect.FieldNumber = 3
	fMessageSentMiliUTC protoreflect.FieldNumber = 4
	fRandomNonce        protoreflect.FieldNumber = 5
	fSender             protoreflect.FieldNumber = 6
	fDestination        protoreflect.FieldNumber = 7
	fDestinationType    protoreflect.FieldNumber = 8
	fSignature          protoreflect.FieldNumber = 9
	fIV                 protoreflect.FieldNumber = 12
	fEasymBlock         protoreflect.FieldNumber = 13 // keySlots in STPSimpleGroup
	fEasymBlockVersion  protoreflect.FieldNumber = 14
	fEsymBlock          protoreflect.FieldNumber = 15
	fEsymBlockVersion   protoreflect.FieldNumber = 16
	fHMAC               protoreflect.FieldNumber = 17
	fEncKey             protoreflect.FieldNumber = 19 // [VIRTUAL]
	fMacKey             protoreflect.FieldNumber = 20 // [VIRTUAL]
	fPayload            protoreflect.FieldNumber = 21 // [VIRTUAL] except in STPSimpleAuth
	fProtocolType       protoreflect.FieldNumber = 22 // [VIRTUAL]
	fProtocolVersion    protoreflect.FieldNumber = 23 // [VIRTUAL]
)

// The fields each signature and HMAC covers, in the draft's listed order.
// The covered bytes are the deterministic protobuf serialisation of a
// message holding only these fields, which orders them by field number; the
// list order documents the draft and does not change the bytes.
var (
	// §2.3: sig = SIGN(protocolType:protocolVersion:ampType:ampVersion:
	// sequenceNumber:randomNonce:sender:destination:destinationType:iv:
	// encKey01:macKey01:messagePayload).
	simpleSigV1 = []protoreflect.FieldNumber{
		fProtocolType, fProtocolVersion, fAmpType, fAmpVersion, fSequenceNumber,
		fRandomNonce, fSender, fDestination, fDestinationType, fIV,
		fEncKey, fMacKey, fPayload,
	}
	// §2.3 "Update v2: signature now includes messageSentMiliUTC".
	simpleSigV2 = append([]protoreflect.FieldNumber{fMessageSentMiliUTC}, simpleSigV1...)

	// §2.3: hmac = HMAC(macKey01, protocolType:protocolVersion:ampType:
	// ampVersion:sequenceNumber:randomNonce:sender:destination:
	// destinationType:iv:encKey01:macKey01:easymBlock:easymBlockVersion:
	// esymBlock:esymBlockVersion). The prose also says "+ signature field";
	// the list and the formula do not, and they are followed here.
	simpleMACV1 = []protoreflect.FieldNumber{
		fProtocolType, fProtocolVersion, fAmpType, fAmpVersion, fSequenceNumber,
		fRandomNonce, fSender, fDestination, fDestinationType, fIV,
		fEncKey, fMacKey, fEasymBlock, fEasymBlockVersion, fEsymBlock, fEsymBlockVersion,
	}
	// §2.3 "Update v2: hmac now includes messageSentMiliUTC".
	simpleMACV2 = append([]protoreflect.FieldNumber{fMessageSentMiliUTC}, simpleMACV1...)

	// §2.5: STPSimpleAuth's signature.
	authSig = []protoreflect.FieldNumber{
		fProtocolType, fProtocolVersion, fAmpType, fAmpVersion, fSequenceNumber,
		fMessageSentMiliUTC, fRandomNonce, fSender, fDestination, fDestinationType,
		fPayload,
	}

	// STPSimpleGroup follows STPSimple v2; field 13 holds the key slots and
	// there is no field 14.
	groupSig = simpleSigV2
	// STPSimpleGroup v2 also signs the key slots (field 13): in v1 only the
	// HMAC covers them, and every recipient knows the MAC key.
	groupSigV2 = append(append([]protoreflect.FieldNumber{}, simpleSigV2...), fEasymBlock)
	groupMAC   = []protoreflect.FieldNumber{
		fMessageSentMiliUTC, fProtocolType, fProtocolVersion, fAmpType, fAmpVersion,
		fSequenceNumber, fRandomNonce, fSender, fDestination, fDestinationType, fIV,
		fEncKey, fMacKey, fEasymBlock, fEsymBlock, fEsymBlockVersion,
	}
)

// virtualFields are the draft's [VIRTUAL] fields: filled in only to compute
// or check a signature or HMAC, never sent.
type virtualFields struct {
	encKey, macKey, payload []byte
	protocol                Protocol
}

// coveredBytes returns the bytes a signature or HMAC covers: a message of
// src's type holding src's fields in list (as present in src, so a field
// set to zero is included and an absent one is not) and the virtual fields
// in list taken from v, serialised deterministically.
func coveredBytes(src proto.Message, list []protoreflect.FieldNumber, v *virtualFields) ([]byte, error) {
	sm := src.ProtoReflect()
	dm := sm.Type().New()
	fds := sm.Descriptor().Fields()
	for _, n := range list {
		fd := fds.ByNumber(n)
		switch n {
		case fEncKey:
			dm.Set(fd, protoreflect.ValueOfBytes(nonNil(v.encKey)))
		case fMacKey:
			dm.Set(fd, protoreflect.ValueOfBytes(nonNil(v.macKey)))
		case fPayload:
			dm.Set(fd, protoreflect.ValueOfBytes(nonNil(v.payload)))
		case fProtocolType:
			dm.Set(fd, protoreflect.ValueOfInt32(v.protocol.Type))
		case fProtocolVersion:
			dm.Set(fd, protoreflect.ValueOfInt32(v.protocol.Version))
		default:
			if sm.Has(fd) {
				dm.Set(fd, sm.Get(fd))
			}
		}
	}
	return deterministic.Marshal(dm.Interface())
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
