/*
 * state.h: the State token that carries a challenge from round 1 to round 2.
 *
 * The token is sealed with AES-256-GCM under a server key, so any radiusd that
 * holds the same key file can verify it, and the TOTP seed it carries stays
 * confidential. Layout, in bytes:
 *
 *   0..2   magic "2SV"            (the prefix that marks the State as ours)
 *   3      format version (1)
 *   4      key id (1..255)
 *   5..16  GCM nonce, random per token
 *   17..   ciphertext of the claims
 *   last16 GCM tag over bytes 0..16 (as AAD) and the ciphertext
 *
 * Claims, before encryption: method (1), issue time (8, big-endian seconds),
 * user name length (1) and bytes, DN length (1) and bytes, seed length (1) and
 * bytes, code hash length (1) and bytes, snapshot length (1, 0 or 25) and
 * the snapshot: flags (1), last step (8), fail count (4), last nonce (12),
 * integers big-endian. The whole token must fit in one RADIUS attribute
 * (253 bytes).
 *
 * This file has no FreeRADIUS dependency: unit tests and tools link it alone.
 */
#ifndef TWOSTEP_STATE_H
#define TWOSTEP_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TWOSTEP_STATE_MAGIC		"2SV"
#define TWOSTEP_STATE_MAGIC_LEN		3
#define TWOSTEP_STATE_VERSION		1
#define TWOSTEP_STATE_NONCE_LEN		12
#define TWOSTEP_STATE_TAG_LEN		16
#define TWOSTEP_STATE_HEADER_LEN	(TWOSTEP_STATE_MAGIC_LEN + 2 + TWOSTEP_STATE_NONCE_LEN)
#define TWOSTEP_STATE_MAX_LEN		253	//!< Largest value of one RADIUS attribute.
#define TWOSTEP_STATE_KEY_LEN		32	//!< AES-256 key length in bytes.
#define TWOSTEP_STATE_NAME_MAX		253	//!< Longest user name or DN a token can carry.
#define TWOSTEP_SEED_MAX		64	//!< Longest TOTP seed in bytes (HMAC-SHA1 uses 20).
#define TWOSTEP_STATE_CODE_HASH_MAX	32	//!< Longest keyed hash of an SMS code (HMAC-SHA256).

/** Second-factor method named in a token. */
typedef enum {
	TWOSTEP_METHOD_TOTP = 1,		//!< Code from an authenticator app.
	TWOSTEP_METHOD_SMS = 2			//!< Code sent by text message.
} twostep_method_t;

/** One State key, loaded from a key file. */
typedef struct {
	uint8_t		id;				//!< Key id written into tokens, 1..255.
	uint8_t		key[TWOSTEP_STATE_KEY_LEN];	//!< AES-256-GCM key.
} twostep_state_key_t;

/** Flags of a snapshot: which attributes the user's entry had in round 1. */
#define TWOSTEP_SNAPSHOT_LAST_STEP	0x01	//!< last_step is set.
#define TWOSTEP_SNAPSHOT_FAIL_COUNT	0x02	//!< fail_count is set.
#define TWOSTEP_SNAPSHOT_LAST_NONCE	0x04	//!< last_nonce is set.
#define TWOSTEP_SNAPSHOT_READ		0x80	//!< The entry was read; flags alone say which values it had.
#define TWOSTEP_STATE_SNAPSHOT_LEN	(1 + 8 + 4 + TWOSTEP_STATE_NONCE_LEN)	//!< Encoded size.

/** The replay and failure counters of the user's entry as round 1 read them.
 *
 * Round 2 writes new values with a compare-and-swap modify that deletes
 * exactly these, so it fails when any server changed them in between.
 */
typedef struct {
	uint8_t			flags;				//!< TWOSTEP_SNAPSHOT_* bits.
	uint64_t		last_step;			//!< Last accepted TOTP time step.
	uint32_t		fail_count;			//!< Consecutive wrong codes.
	uint8_t			last_nonce[TWOSTEP_STATE_NONCE_LEN];	//!< Nonce of the last answered challenge.
} twostep_state_snapshot_t;

/** Claims a token makes about a pending challenge. */
typedef struct {
	twostep_method_t	method;				//!< Method the challenge asked for.
	int64_t			issued;				//!< Issue time, seconds since the epoch.
	char			user[TWOSTEP_STATE_NAME_MAX + 1];	//!< User-Name of round 1.
	char			dn[TWOSTEP_STATE_NAME_MAX + 1];	//!< DN of the user's entry.
	uint8_t			seed[TWOSTEP_SEED_MAX];	//!< TOTP seed (raw bytes), may be empty.
	size_t			seed_len;			//!< Bytes used in seed.
	uint8_t			code_hash[TWOSTEP_STATE_CODE_HASH_MAX];	//!< Keyed hash of the SMS code sent.
	size_t			code_hash_len;			//!< Bytes used in code_hash, 0 for TOTP.
	uint8_t			nonce[TWOSTEP_STATE_NONCE_LEN];	//!< Token nonce, set by verify only.
	twostep_state_snapshot_t	snapshot;		//!< The entry's counters when round 1 read it.
} twostep_state_claims_t;

/** Result of creating or verifying a token. */
typedef enum {
	TWOSTEP_STATE_OK = 0,		//!< Token created, or verified and every check passed.
	TWOSTEP_STATE_NOT_OURS,		//!< No "2SV" prefix: another module may own this State.
	TWOSTEP_STATE_MALFORMED,	//!< Our prefix, but bad version, length or claims layout.
	TWOSTEP_STATE_UNKNOWN_KEY,	//!< Our prefix, but the key id matches no configured key.
	TWOSTEP_STATE_FORGED,		//!< GCM tag check failed: tampered, truncated or wrong key.
	TWOSTEP_STATE_EXPIRED,		//!< Older than the challenge lifetime.
	TWOSTEP_STATE_FUTURE,		//!< Issued more than the allowed clock skew ahead of now.
	TWOSTEP_STATE_WRONG_USER,	//!< Issued for another User-Name.
	TWOSTEP_STATE_TOO_LONG,		//!< Creating: the token would not fit in 253 bytes.
	TWOSTEP_STATE_ERROR		//!< The crypto library or the random source failed.
} twostep_state_rcode_t;

/** Seconds a token's issue time may lie ahead of the verifier's clock. */
#define TWOSTEP_STATE_MAX_SKEW		30

/** Return a short, stable, lowercase reason for a result, for log lines. */
char const *twostep_state_strerror(twostep_state_rcode_t rcode);

/** Return 1 when the bytes start with our prefix (magic), else 0. */
int twostep_state_is_ours(uint8_t const *in, size_t inlen);

/** Seal claims into a token with a fresh random nonce.
 *
 * @param[out] out	Buffer of at least TWOSTEP_STATE_MAX_LEN bytes.
 * @param[out] outlen	Token length.
 * @param[in] key	Key that signs (the first configured key).
 * @param[in] claims	What the token asserts.
 * @return TWOSTEP_STATE_OK, TWOSTEP_STATE_TOO_LONG (also for a user, DN or
 *	   seed longer than its field allows) or TWOSTEP_STATE_ERROR.
 */
twostep_state_rcode_t twostep_state_create(uint8_t *out, size_t *outlen,
					   twostep_state_key_t const *key,
					   twostep_state_claims_t const *claims);

/** Open a token and check its key, tag, format, age and user.
 *
 * Checks run in this order: prefix, version and length, key id, tag,
 * claims layout, issue time against now, user name.
 *
 * @param[out] claims	Filled on TWOSTEP_STATE_OK, and also on EXPIRED, FUTURE
 *			and WRONG_USER (the tag was good) so callers can log the user.
 *			Wiped on every other result.
 * @param[in] in	State attribute value.
 * @param[in] inlen	Its length.
 * @param[in] keys	Keys that verify, any order.
 * @param[in] num_keys	Entries in keys.
 * @param[in] now	Current time, seconds since the epoch.
 * @param[in] lifetime	Seconds a token stays valid after its issue time.
 * @param[in] user	User-Name of the request, compared exactly.
 */
twostep_state_rcode_t twostep_state_verify(twostep_state_claims_t *claims,
					   uint8_t const *in, size_t inlen,
					   twostep_state_key_t const *keys, size_t num_keys,
					   int64_t now, unsigned int lifetime, char const *user);

/** Load a key file.
 *
 * The file contains one line: a key id (decimal, 1..255), white space, and 64
 * hexadecimal digits (32 bytes). Lines starting with '#' and blank lines are
 * ignored.
 *
 * @param[out] key	Loaded key.
 * @param[in] path	File to read.
 * @param[out] err	Buffer for a message naming the file and the problem.
 * @param[in] errlen	Size of err.
 * @return 0 on success, -1 on error (err is filled).
 */
int twostep_state_key_load(twostep_state_key_t *key, char const *path, char *err, size_t errlen);

#endif
