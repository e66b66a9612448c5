// Package sdk is the public Go API of a PhoneX device: enroll or log in to a
// home cluster, open the device profile, manage contacts, send and receive
// end-to-end encrypted messages, and make ZRTP-secured voice calls: to a
// person through the home cluster ([Device.Call], [Device.Answer]) or
// direct to a SIP address ([NewPhone]).
// The phonex command is built on this package alone.
//
// # Security properties
//
// Every key that protects content is made on the device and never leaves it:
// the cluster certifies public keys and stores ciphertext it cannot read.
//
//   - The password itself never leaves the device. It is stretched with scrypt,
//     PBKDF2 and HKDF and hardened by an OPRF evaluation (RFC 9497) that only
//     the home cluster can perform and that it counts and throttles, so a
//     stolen profile directory cannot be attacked offline.
//   - The profile holds a PKCS#12 keystore and an SQLCipher database, both
//     keyed from that chain; [Open] tells a wrong password
//     ([ErrWrongPassword]) from a damaged or tampered profile ([ErrTampered]).
//   - Every request after enrollment runs over mutual TLS pinned to the
//     cluster's CA ([EnrollConfig.CAFile] or [EnrollConfig.CAFingerprint]).
//   - Messages are encrypted and signed per recipient device (PQXDH with
//     ML-KEM-768 and the Double Ratchet between ec-suite devices). Contact
//     device keys are pinned on first use; a change is reported
//     ([ContactDevice.KeyChanged], [EventKeyChanged]).
//   - Calls key SRTP with ZRTP (RFC 6189) and never send media in the clear.
//     Through the cluster, the cluster relays only the signalling, and rings
//     nobody for a caller who is not a mutual contact ([ErrNotContact]).
//     The short authentication string ([SecureInfo.SAS]) must be compared
//     aloud to rule out a man in the middle; [Call.ConfirmSAS] records that.
//
// # Use
//
// A program enrolls once with [Enroll] (first device, activation code) or
// [Login] (further device, password), and afterwards unlocks the profile with
// [Open]. The returned [Device] is not safe for concurrent use: call one of
// its methods at a time ([Device.Listen] included, which runs until its
// context ends), and close it with [Device.Close], which forgets the keys. Calls need no profile: [NewPhone] makes a SIP user agent.
//
// Errors wrap the sentinel values of this package ([ErrWrongPassword],
// [ErrUnreachable], [ErrNotAllowed], ...) so callers branch with [errors.Is].
package sdk
