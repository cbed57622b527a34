/*
 * test_state.c: the AES-256-GCM State token and its key files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "state.h"

#define NOW		1700000000LL
#define LIFETIME	120

static twostep_state_key_t const key_a = {
	.id = 1,
	.key = { 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
		 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f }
};

/** Same id as key_a, other bytes. */
static twostep_state_key_t const key_a_other = {
	.id = 1,
	.key = { 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
		 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1e }
};

static twostep_state_key_t const key_b = {
	.id = 2,
	.key = { 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
		 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf }
};

static twostep_state_key_t const key_c = {
	.id = 255,
	.key = { 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8, 0xf7, 0xf6, 0xf5, 0xf4, 0xf3, 0xf2, 0xf1, 0xf0,
		 0xef, 0xee, 0xed, 0xec, 0xeb, 0xea, 0xe9, 0xe8, 0xe7, 0xe6, 0xe5, 0xe4, 0xe3, 0xe2, 0xe1, 0xe0 }
};

static void make_claims(twostep_state_claims_t *c, char const *user, char const *dn, size_t seed_len, int64_t issued)
{
	size_t i;

	memset(c, 0, sizeof(*c));
	c->method = TWOSTEP_METHOD_TOTP;
	c->issued = issued;
	snprintf(c->user, sizeof(c->user), "%s", user);
	snprintf(c->dn, sizeof(c->dn), "%s", dn);
	for (i = 0; i < seed_len; i++) c->seed[i] = (uint8_t)"1234567890"[i % 10];
	c->seed_len = seed_len;
}

static size_t mint(uint8_t *out, twostep_state_key_t const *key, twostep_state_claims_t const *c)
{
	size_t outlen = 0;

	assert_int_equal(twostep_state_create(out, &outlen, key, c), TWOSTEP_STATE_OK);
	assert_true(outlen <= TWOSTEP_STATE_MAX_LEN);
	return outlen;
}

static size_t mint_default(uint8_t *out, int64_t issued)
{
	twostep_state_claims_t c;

	make_claims(&c, "alice", "uid=alice,ou=people,dc=example,dc=org", 20, issued);
	return mint(out, &key_a, &c);
}

static twostep_state_rcode_t verify(uint8_t const *in, size_t inlen, twostep_state_key_t const *keys, size_t num_keys,
				    int64_t now, char const *user, twostep_state_claims_t *out)
{
	twostep_state_claims_t claims;

	memset(&claims, 0x5a, sizeof(claims));
	twostep_state_rcode_t rc = twostep_state_verify(&claims, in, inlen, keys, num_keys, now, LIFETIME, user);
	if (out) *out = claims;
	return rc;
}

static int is_zero(void const *p, size_t len)
{
	uint8_t const *b = p;
	size_t i;

	for (i = 0; i < len; i++) if (b[i]) return 0;
	return 1;
}

/** Seal arbitrary claim bytes, to reach the checks behind the tag. */
static size_t seal_raw(uint8_t *out, uint8_t version, twostep_state_key_t const *key,
		       uint8_t const *pt, size_t ptlen)
{
	EVP_CIPHER_CTX	*ctx = EVP_CIPHER_CTX_new();
	int		len;

	assert_non_null(ctx);
	assert_true(TWOSTEP_STATE_HEADER_LEN + ptlen + TWOSTEP_STATE_TAG_LEN <= 512);
	memcpy(out, TWOSTEP_STATE_MAGIC, 3);
	out[3] = version;
	out[4] = key->id;
	assert_int_equal(RAND_bytes(out + 5, TWOSTEP_STATE_NONCE_LEN), 1);
	assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key->key, out + 5), 1);
	assert_int_equal(EVP_EncryptUpdate(ctx, NULL, &len, out, TWOSTEP_STATE_HEADER_LEN), 1);
	assert_int_equal(EVP_EncryptUpdate(ctx, out + TWOSTEP_STATE_HEADER_LEN, &len, pt, (int)ptlen), 1);
	assert_int_equal(EVP_EncryptFinal_ex(ctx, out + TWOSTEP_STATE_HEADER_LEN + len, &len), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TWOSTEP_STATE_TAG_LEN,
					     out + TWOSTEP_STATE_HEADER_LEN + ptlen), 1);
	EVP_CIPHER_CTX_free(ctx);
	return TWOSTEP_STATE_HEADER_LEN + ptlen + TWOSTEP_STATE_TAG_LEN;
}

/*
 *	Round trips.
 */
static void test_round_trip(void **state)
{
	uint8_t			tok[TWOSTEP_STATE_MAX_LEN];
	size_t			len;
	twostep_state_claims_t	in, out;

	(void)state;

	make_claims(&in, "alice", "uid=alice,ou=people,dc=example,dc=org", 20, NOW - 5);
	in.method = TWOSTEP_METHOD_SMS;
	memset(in.code_hash, 0xab, TWOSTEP_STATE_CODE_HASH_MAX);
	in.code_hash_len = TWOSTEP_STATE_CODE_HASH_MAX;
	in.snapshot.flags = TWOSTEP_SNAPSHOT_LAST_STEP | TWOSTEP_SNAPSHOT_FAIL_COUNT | TWOSTEP_SNAPSHOT_LAST_NONCE;
	in.snapshot.last_step = 56789012345ULL;
	in.snapshot.fail_count = 7;
	memset(in.snapshot.last_nonce, 0x5a, TWOSTEP_STATE_NONCE_LEN);
	len = mint(tok, &key_a, &in);

	assert_int_equal(len, TWOSTEP_STATE_HEADER_LEN + 14 + 5 + 37 + 20 + 32 + TWOSTEP_STATE_SNAPSHOT_LEN + TWOSTEP_STATE_TAG_LEN);
	assert_memory_equal(tok, "2SV\x01\x01", 5);
	assert_true(twostep_state_is_ours(tok, len));

	assert_int_equal(verify(tok, len, &key_a, 1, NOW, "alice", &out), TWOSTEP_STATE_OK);
	assert_int_equal(out.method, TWOSTEP_METHOD_SMS);
	assert_int_equal(out.issued, NOW - 5);
	assert_string_equal(out.user, "alice");
	assert_string_equal(out.dn, "uid=alice,ou=people,dc=example,dc=org");
	assert_int_equal(out.seed_len, 20);
	assert_memory_equal(out.seed, "12345678901234567890", 20);
	assert_memory_equal(out.nonce, tok + TWOSTEP_STATE_MAGIC_LEN + 2, TWOSTEP_STATE_NONCE_LEN);
	assert_int_equal(out.code_hash_len, TWOSTEP_STATE_CODE_HASH_MAX);
	assert_memory_equal(out.code_hash, in.code_hash, TWOSTEP_STATE_CODE_HASH_MAX);
	assert_int_equal(out.snapshot.flags, in.snapshot.flags);
	assert_int_equal(out.snapshot.last_step, in.snapshot.last_step);
	assert_int_equal(out.snapshot.fail_count, in.snapshot.fail_count);
	assert_memory_equal(out.snapshot.last_nonce, in.snapshot.last_nonce, TWOSTEP_STATE_NONCE_LEN);

	/* TOTP, no seed, UTF-8 names, a key id of 255. */
	make_claims(&in, "J\xc3\xbcrgen", "cn=J\xc3\xbcrgen M\xc3\xbcller\\2c Jr.,dc=example,dc=org", 0, NOW);
	len = mint(tok, &key_c, &in);
	assert_int_equal(tok[4], 255);
	assert_int_equal(verify(tok, len, &key_c, 1, NOW, "J\xc3\xbcrgen", &out), TWOSTEP_STATE_OK);
	assert_int_equal(out.method, TWOSTEP_METHOD_TOTP);
	assert_int_equal(out.issued, NOW);
	assert_string_equal(out.user, in.user);
	assert_string_equal(out.dn, in.dn);
	assert_int_equal(out.seed_len, 0);

	/* Empty user and DN, the largest seed, an issue time before 1970. */
	make_claims(&in, "", "", TWOSTEP_SEED_MAX, -1000);
	len = mint(tok, &key_b, &in);
	assert_int_equal(twostep_state_verify(&out, tok, len, &key_b, 1, -990, LIFETIME, ""), TWOSTEP_STATE_OK);
	assert_int_equal(out.issued, -1000);
	assert_int_equal(out.seed_len, TWOSTEP_SEED_MAX);
	assert_memory_equal(out.seed, in.seed, TWOSTEP_SEED_MAX);
}

static void test_nonce_differs(void **state)
{
	uint8_t	t1[TWOSTEP_STATE_MAX_LEN], t2[TWOSTEP_STATE_MAX_LEN];
	size_t	l1, l2;

	(void)state;
	l1 = mint_default(t1, NOW);
	l2 = mint_default(t2, NOW);
	assert_int_equal(l1, l2);
	assert_memory_equal(t1, t2, 5);					/* same header prefix */
	assert_memory_not_equal(t1 + 5, t2 + 5, TWOSTEP_STATE_NONCE_LEN);	/* nonce */
	assert_memory_not_equal(t1 + TWOSTEP_STATE_HEADER_LEN, t2 + TWOSTEP_STATE_HEADER_LEN,
				l1 - TWOSTEP_STATE_HEADER_LEN);			/* ciphertext and tag */
}

/** The seed and names never appear in clear. */
static void test_confidential(void **state)
{
	uint8_t			tok[TWOSTEP_STATE_MAX_LEN];
	size_t			len;
	twostep_state_claims_t	c;

	(void)state;
	make_claims(&c, "alice", "uid=alice,dc=example,dc=org", 20, NOW);
	len = mint(tok, &key_a, &c);
	assert_null(memmem(tok, len, "alice", 5));
	assert_null(memmem(tok, len, "1234567890", 10));
}

/*
 *	Tampering.
 */
static void test_every_byte_flipped(void **state)
{
	uint8_t			tok[TWOSTEP_STATE_MAX_LEN], bad[TWOSTEP_STATE_MAX_LEN];
	uint8_t const		masks[] = { 0x01, 0x80, 0xff };
	size_t			len, i, m;
	twostep_state_claims_t	out;

	(void)state;
	len = mint_default(tok, NOW);
	assert_int_equal(verify(tok, len, &key_a, 1, NOW, "alice", NULL), TWOSTEP_STATE_OK);

	for (i = 0; i < len; i++) {
		for (m = 0; m < sizeof(masks); m++) {
			twostep_state_rcode_t rc, want;

			memcpy(bad, tok, len);
			bad[i] ^= masks[m];

			if (i < TWOSTEP_STATE_MAGIC_LEN) want = TWOSTEP_STATE_NOT_OURS;
			else if (i == 3) want = TWOSTEP_STATE_MALFORMED;	/* version */
			else if (i == 4) want = TWOSTEP_STATE_UNKNOWN_KEY;	/* key id */
			else want = TWOSTEP_STATE_FORGED;			/* nonce, ciphertext, tag */

			rc = verify(bad, len, &key_a, 1, NOW, "alice", &out);
			if (rc != want) {
				fail_msg("byte %zu ^ 0x%02x: got %s (%d), want %s", i, masks[m],
					 twostep_state_strerror(rc), rc, twostep_state_strerror(want));
			}
			if (!is_zero(&out, sizeof(out))) fail_msg("byte %zu ^ 0x%02x: claims not wiped", i, masks[m]);
		}
	}
}

/** A key id changed to that of another configured key: the tag covers the header. */
static void test_key_id_swapped(void **state)
{
	uint8_t				tok[TWOSTEP_STATE_MAX_LEN];
	size_t				len;
	twostep_state_key_t const	keys[] = { key_a, key_b };

	(void)state;
	len = mint_default(tok, NOW);
	tok[4] = key_b.id;
	assert_int_equal(verify(tok, len, keys, 2, NOW, "alice", NULL), TWOSTEP_STATE_FORGED);
}

static void test_wrong_key(void **state)
{
	uint8_t			tok[TWOSTEP_STATE_MAX_LEN];
	size_t			len;
	twostep_state_claims_t	out;

	(void)state;
	len = mint_default(tok, NOW);
	assert_int_equal(verify(tok, len, &key_a_other, 1, NOW, "alice", &out), TWOSTEP_STATE_FORGED);
	assert_true(is_zero(&out, sizeof(out)));
}

static void test_unknown_key(void **state)
{
	uint8_t				tok[TWOSTEP_STATE_MAX_LEN];
	size_t				len;
	twostep_state_key_t const	keys[] = { key_b, key_c };
	twostep_state_claims_t		out;

	(void)state;
	len = mint_default(tok, NOW);
	assert_int_equal(verify(tok, len, keys, 2, NOW, "alice", &out), TWOSTEP_STATE_UNKNOWN_KEY);
	assert_true(is_zero(&out, sizeof(out)));
	assert_int_equal(verify(tok, len, NULL, 0, NOW, "alice", NULL), TWOSTEP_STATE_UNKNOWN_KEY);
	assert_int_equal(verify(tok, len, &key_a, 0, NOW, "alice", NULL), TWOSTEP_STATE_UNKNOWN_KEY);

	/* Key id 0 is never valid, even when a key claims it. */
	{
		twostep_state_key_t zero = key_a;

		zero.id = 0;
		tok[4] = 0;
		assert_int_equal(verify(tok, len, &zero, 1, NOW, "alice", NULL), TWOSTEP_STATE_UNKNOWN_KEY);
	}
}

static void test_rotation(void **state)
{
	uint8_t				tok[TWOSTEP_STATE_MAX_LEN];
	size_t				len;
	twostep_state_claims_t		c;
	twostep_state_key_t const	ab[] = { key_a, key_b };
	twostep_state_key_t const	ba[] = { key_b, key_a };
	twostep_state_key_t const	cab[] = { key_c, key_a, key_b };
	twostep_state_key_t const	dup[] = { key_a_other, key_a };

	(void)state;
	make_claims(&c, "alice", "uid=alice,dc=example,dc=org", 20, NOW);

	/* Token of the new key, verified by a list with the old key first. */
	len = mint(tok, &key_b, &c);
	assert_int_equal(verify(tok, len, ab, 2, NOW, "alice", NULL), TWOSTEP_STATE_OK);
	assert_int_equal(verify(tok, len, ba, 2, NOW, "alice", NULL), TWOSTEP_STATE_OK);
	assert_int_equal(verify(tok, len, cab, 3, NOW, "alice", NULL), TWOSTEP_STATE_OK);

	/* Token of the old key, the new key listed first. */
	len = mint(tok, &key_a, &c);
	assert_int_equal(verify(tok, len, ba, 2, NOW, "alice", NULL), TWOSTEP_STATE_OK);
	assert_int_equal(verify(tok, len, cab, 3, NOW, "alice", NULL), TWOSTEP_STATE_OK);

	/* Two keys sharing an id: each still verifies its own tokens. */
	assert_int_equal(verify(tok, len, dup, 2, NOW, "alice", NULL), TWOSTEP_STATE_OK);

	/* Old key dropped. */
	assert_int_equal(verify(tok, len, &key_b, 1, NOW, "alice", NULL), TWOSTEP_STATE_UNKNOWN_KEY);
}

/*
 *	Time and user.
 */
typedef struct {
	char const		*name;
	int64_t			issued;
	int64_t			now;
	twostep_state_rcode_t	want;
} time_case_t;

static time_case_t const time_cases[] = {
	{ "just issued",		NOW,				NOW,		TWOSTEP_STATE_OK },
	{ "half way",			NOW - LIFETIME / 2,		NOW,		TWOSTEP_STATE_OK },
	{ "exact lifetime",		NOW - LIFETIME,			NOW,		TWOSTEP_STATE_OK },
	{ "lifetime + 1",		NOW - LIFETIME - 1,		NOW,		TWOSTEP_STATE_EXPIRED },
	{ "a day old",			NOW - 86400,			NOW,		TWOSTEP_STATE_EXPIRED },
	{ "issued at 0",		0,				NOW,		TWOSTEP_STATE_EXPIRED },
	{ "skew edge",			NOW + TWOSTEP_STATE_MAX_SKEW,	NOW,		TWOSTEP_STATE_OK },
	{ "skew + 1",			NOW + TWOSTEP_STATE_MAX_SKEW + 1, NOW,		TWOSTEP_STATE_FUTURE },
	{ "a day ahead",		NOW + 86400,			NOW,		TWOSTEP_STATE_FUTURE },
	{ "INT64_MIN issued",		INT64_MIN,			NOW,		TWOSTEP_STATE_EXPIRED },
	{ "INT64_MAX issued",		INT64_MAX,			NOW,		TWOSTEP_STATE_FUTURE },
	{ "INT64_MIN, now INT64_MAX",	INT64_MIN,			INT64_MAX,	TWOSTEP_STATE_EXPIRED },
	{ "INT64_MAX, now INT64_MIN",	INT64_MAX,			INT64_MIN,	TWOSTEP_STATE_FUTURE },
	{ "INT64_MAX, now INT64_MAX",	INT64_MAX,			INT64_MAX,	TWOSTEP_STATE_OK },
	{ "negative times",		-100,				-100 + LIFETIME, TWOSTEP_STATE_OK },
};

static void test_times(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(time_cases) / sizeof(time_cases[0]); i++) {
		uint8_t			tok[TWOSTEP_STATE_MAX_LEN];
		size_t			len = mint_default(tok, time_cases[i].issued);
		twostep_state_claims_t	out;
		twostep_state_rcode_t	rc;

		rc = verify(tok, len, &key_a, 1, time_cases[i].now, "alice", &out);
		if (rc != time_cases[i].want) {
			fail_msg("case \"%s\": got %s, want %s", time_cases[i].name,
				 twostep_state_strerror(rc), twostep_state_strerror(time_cases[i].want));
		}
		/* The tag was good: the claims are there to log. */
		assert_string_equal(out.user, "alice");
		assert_int_equal(out.issued, time_cases[i].issued);
	}
}

static void test_wrong_user(void **state)
{
	char const *const	users[] = { "bob", "alic", "alicee", "Alice", "alice ", " alice", "" };
	uint8_t			tok[TWOSTEP_STATE_MAX_LEN];
	size_t			len, i;
	twostep_state_claims_t	out;

	(void)state;
	len = mint_default(tok, NOW);
	for (i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		if (verify(tok, len, &key_a, 1, NOW, users[i], &out) != TWOSTEP_STATE_WRONG_USER) {
			fail_msg("user \"%s\" accepted for a token of \"alice\"", users[i]);
		}
		assert_string_equal(out.user, "alice");
	}
	assert_int_equal(verify(tok, len, &key_a, 1, NOW, NULL, NULL), TWOSTEP_STATE_WRONG_USER);

	/* Expiry is checked before the user. */
	len = mint_default(tok, NOW - LIFETIME - 1);
	assert_int_equal(verify(tok, len, &key_a, 1, NOW, "bob", NULL), TWOSTEP_STATE_EXPIRED);
}

/*
 *	Lengths.
 */
static void test_truncated(void **state)
{
	uint8_t		tok[TWOSTEP_STATE_MAX_LEN];
	size_t		len, i;

	(void)state;
	len = mint_default(tok, NOW);
	for (i = 0; i < len; i++) {
		uint8_t			*copy = malloc(i ? i : 1);	/* exact size: ASan catches over-reads */
		twostep_state_rcode_t	rc, want;

		assert_non_null(copy);
		memcpy(copy, tok, i);
		rc = verify(copy, i, &key_a, 1, NOW, "alice", NULL);
		free(copy);

		if (i < TWOSTEP_STATE_MAGIC_LEN) want = TWOSTEP_STATE_NOT_OURS;
		else if (i < TWOSTEP_STATE_HEADER_LEN + 14 + TWOSTEP_STATE_TAG_LEN) want = TWOSTEP_STATE_MALFORMED;
		else want = TWOSTEP_STATE_FORGED;

		if (rc != want) {
			fail_msg("truncated to %zu of %zu bytes: got %s, want %s", i, len,
				 twostep_state_strerror(rc), twostep_state_strerror(want));
		}
	}

	/* Bytes appended: the tag is read from the wrong place. */
	tok[len] = 0;
	assert_int_equal(verify(tok, len + 1, &key_a, 1, NOW, "alice", NULL), TWOSTEP_STATE_FORGED);
}

static void test_oversized(void **state)
{
	uint8_t		big[600];
	size_t const	sizes[] = { 254, 255, 300, 600 };
	size_t		i, len;

	(void)state;
	memset(big, 0, sizeof(big));
	len = mint_default(big, NOW);
	(void)len;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		assert_int_equal(verify(big, sizes[i], &key_a, 1, NOW, "alice", NULL), TWOSTEP_STATE_MALFORMED);
	}

	/* Without our prefix, an oversized value is simply not ours. */
	big[0] = 'X';
	assert_int_equal(verify(big, 300, &key_a, 1, NOW, "alice", NULL), TWOSTEP_STATE_NOT_OURS);
}

static void test_too_long(void **state)
{
	uint8_t			tok[TWOSTEP_STATE_MAX_LEN];
	size_t			len = 99;
	twostep_state_claims_t	c;
	char			dn[TWOSTEP_STATE_NAME_MAX + 1];

	(void)state;

	/* A DN of the longest length a field allows does not fit the token. */
	memset(dn, 'a', TWOSTEP_STATE_NAME_MAX);
	dn[TWOSTEP_STATE_NAME_MAX] = '\0';
	make_claims(&c, "alice", dn, 20, NOW);
	assert_int_equal(twostep_state_create(tok, &len, &key_a, &c), TWOSTEP_STATE_TOO_LONG);
	assert_int_equal(len, 0);

	/*
	 *	Exactly 253 bytes: 17 header + 14 fixed claims + 16 tag = 47,
	 *	leaving 206 for user (8) + seed (20) + DN (178).
	 */
	memset(dn, 'd', 178);
	dn[178] = '\0';
	make_claims(&c, "user0001", dn, 20, NOW);
	len = mint(tok, &key_a, &c);
	assert_int_equal(len, TWOSTEP_STATE_MAX_LEN);
	assert_int_equal(verify(tok, len, &key_a, 1, NOW, "user0001", NULL), TWOSTEP_STATE_OK);

	/* One byte more. */
	dn[178] = 'd';
	dn[179] = '\0';
	make_claims(&c, "user0001", dn, 20, NOW);
	assert_int_equal(twostep_state_create(tok, &len, &key_a, &c), TWOSTEP_STATE_TOO_LONG);

	/* A seed longer than its field. */
	make_claims(&c, "alice", "dc=org", 20, NOW);
	c.seed_len = TWOSTEP_SEED_MAX + 1;
	assert_int_equal(twostep_state_create(tok, &len, &key_a, &c), TWOSTEP_STATE_TOO_LONG);

	/* A user name that fills its array without a terminating NUL. */
	make_claims(&c, "alice", "dc=org", 20, NOW);
	memset(c.user, 'u', sizeof(c.user));
	assert_int_equal(twostep_state_create(tok, &len, &key_a, &c), TWOSTEP_STATE_TOO_LONG);
}

static void test_realistic_ad_dn(void **state)
{
	uint8_t			tok[TWOSTEP_STATE_MAX_LEN];
	size_t			len;
	twostep_state_claims_t	c, out;
	char const		*dn = "CN=Whitfield-Henderson\\, Jonathan,OU=Engineering,OU=Users,OU=London,DC=corp,DC=example,DC=com";

	(void)state;
	assert_true(strlen(dn) >= 85 && strlen(dn) <= 100);
	make_claims(&c, "jonathan.whitfield-henderson@corp.example.com", dn, 20, NOW);
	len = mint(tok, &key_a, &c);
	assert_true(len <= TWOSTEP_STATE_MAX_LEN);
	print_message("realistic AD token: DN %zu bytes, user %zu bytes, token %zu of %d bytes\n",
		      strlen(dn), strlen(c.user), len, TWOSTEP_STATE_MAX_LEN);
	assert_int_equal(verify(tok, len, &key_a, 1, NOW, c.user, &out), TWOSTEP_STATE_OK);
	assert_string_equal(out.dn, dn);
}

static void test_not_ours(void **state)
{
	uint8_t	buf[TWOSTEP_STATE_MAX_LEN];
	size_t	len;
	int	i;

	(void)state;

	for (i = 0; i < 200; i++) {
		assert_int_equal(RAND_bytes(buf, sizeof(buf)), 1);
		if (buf[0] == '2') buf[0] = '3';
		len = (size_t)(buf[1] % (sizeof(buf) + 1));
		assert_false(twostep_state_is_ours(buf, len));
		assert_int_equal(verify(buf, len, &key_a, 1, NOW, "alice", NULL), TWOSTEP_STATE_NOT_OURS);
	}

	assert_int_equal(verify((uint8_t const *)"2SW", 3, &key_a, 1, NOW, "alice", NULL), TWOSTEP_STATE_NOT_OURS);
	assert_int_equal(verify((uint8_t const *)"2sv", 3, &key_a, 1, NOW, "alice", NULL), TWOSTEP_STATE_NOT_OURS);
	assert_int_equal(verify((uint8_t const *)"2S", 2, &key_a, 1, NOW, "alice", NULL), TWOSTEP_STATE_NOT_OURS);
	assert_int_equal(verify(NULL, 0, &key_a, 1, NOW, "alice", NULL), TWOSTEP_STATE_NOT_OURS);
	assert_int_equal(verify((uint8_t const *)"2SV", 3, &key_a, 1, NOW, "alice", NULL), TWOSTEP_STATE_MALFORMED);
	assert_true(twostep_state_is_ours((uint8_t const *)"2SV", 3));
	assert_false(twostep_state_is_ours((uint8_t const *)"2SV", 2));
}

/*
 *	Claims layout behind a good tag.
 */
typedef struct {
	char const	*name;
	uint8_t		version;
	uint8_t		pt[96];
	size_t		ptlen;
	twostep_state_rcode_t want;
} layout_case_t;

#define ISSUED_BYTES	0x00, 0x00, 0x00, 0x00, 0x65, 0x53, 0xf1, 0x00	/* 1700000000 */

static layout_case_t const layout_cases[] = {
	{ "good",		1, { 1, ISSUED_BYTES, 5, 'a','l','i','c','e', 2, 'd','n', 1, 'S', 0, 0 },	22, TWOSTEP_STATE_OK },
	{ "good, SMS",		1, { 2, ISSUED_BYTES, 5, 'a','l','i','c','e', 0, 0, 2, 'H','H', 0 },	21, TWOSTEP_STATE_OK },
	{ "good, snapshot",	1, { 1, ISSUED_BYTES, 5, 'a','l','i','c','e', 0, 1, 'S', 0, 25, 1,
				     0,0,0,0,0,0,0,9, 0,0,0,2, 'N','N','N','N','N','N','N','N','N','N','N','N' },	45, TWOSTEP_STATE_OK },
	{ "version 2",		2, { 1, ISSUED_BYTES, 5, 'a','l','i','c','e', 2, 'd','n', 1, 'S', 0, 0 },	22, TWOSTEP_STATE_MALFORMED },
	{ "version 0",		0, { 1, ISSUED_BYTES, 5, 'a','l','i','c','e', 2, 'd','n', 1, 'S', 0, 0 },	22, TWOSTEP_STATE_MALFORMED },
	{ "method 0",		1, { 0, ISSUED_BYTES, 5, 'a','l','i','c','e', 2, 'd','n', 1, 'S', 0, 0 },	22, TWOSTEP_STATE_MALFORMED },
	{ "method 3",		1, { 3, ISSUED_BYTES, 5, 'a','l','i','c','e', 2, 'd','n', 1, 'S', 0, 0 },	22, TWOSTEP_STATE_MALFORMED },
	{ "trailing byte",	1, { 1, ISSUED_BYTES, 5, 'a','l','i','c','e', 2, 'd','n', 1, 'S', 0, 0, 0 },	23, TWOSTEP_STATE_MALFORMED },
	{ "seed length short",	1, { 1, ISSUED_BYTES, 5, 'a','l','i','c','e', 2, 'd','n', 3, 'S', 0, 0 },	22, TWOSTEP_STATE_MALFORMED },
	{ "seed length missing", 1, { 1, ISSUED_BYTES, 5, 'a','l','i','c','e', 2, 'd','n' },		18, TWOSTEP_STATE_MALFORMED },
	{ "hash length missing", 1, { 1, ISSUED_BYTES, 5, 'a','l','i','c','e', 2, 'd','n', 1, 'S' },	20, TWOSTEP_STATE_MALFORMED },
	{ "hash length short",	1, { 2, ISSUED_BYTES, 5, 'a','l','i','c','e', 0, 0, 3, 'H','H', 0 },	21, TWOSTEP_STATE_MALFORMED },
	{ "snapshot missing",	1, { 1, ISSUED_BYTES, 5, 'a','l','i','c','e', 2, 'd','n', 1, 'S', 0 },	21, TWOSTEP_STATE_MALFORMED },
	{ "snapshot length 24",	1, { 1, ISSUED_BYTES, 5, 'a','l','i','c','e', 0, 1, 'S', 0, 24, 1,
				     0,0,0,0,0,0,0,9, 0,0,0,2, 'N','N','N','N','N','N','N','N','N','N','N' },	44, TWOSTEP_STATE_MALFORMED },
	{ "snapshot flags 0",	1, { 1, ISSUED_BYTES, 5, 'a','l','i','c','e', 0, 1, 'S', 0, 25, 0,
				     0,0,0,0,0,0,0,9, 0,0,0,2, 'N','N','N','N','N','N','N','N','N','N','N','N' },	44, TWOSTEP_STATE_MALFORMED },
	{ "DN length long",	1, { 1, ISSUED_BYTES, 5, 'a','l','i','c','e', 9, 'd','n', 1, 'S', 0, 0 },	22, TWOSTEP_STATE_MALFORMED },
	{ "user length long",	1, { 1, ISSUED_BYTES, 200, 'a','l','i','c','e', 2, 'd','n', 1, 'S', 0, 0 },	22, TWOSTEP_STATE_MALFORMED },
	{ "user length short",	1, { 1, ISSUED_BYTES, 4, 'a','l','i','c','e', 2, 'd','n', 1, 'S', 0, 0 },	22, TWOSTEP_STATE_MALFORMED },
	{ "NUL in user",	1, { 1, ISSUED_BYTES, 5, 'a','l', 0, 'c','e', 2, 'd','n', 1, 'S', 0, 0 },	22, TWOSTEP_STATE_MALFORMED },
	{ "NUL in DN",		1, { 1, ISSUED_BYTES, 5, 'a','l','i','c','e', 2, 0, 'n', 1, 'S', 0, 0 },	22, TWOSTEP_STATE_MALFORMED },
	{ "fixed part only",	1, { 1, ISSUED_BYTES, 0, 0, 0, 0 },					13, TWOSTEP_STATE_MALFORMED },
	{ "seed over 64",	1, { 1, ISSUED_BYTES, 5, 'a','l','i','c','e', 0, 65,
				     'S','S','S','S','S','S','S','S','S','S','S','S','S','S','S','S',
				     'S','S','S','S','S','S','S','S','S','S','S','S','S','S','S','S',
				     'S','S','S','S','S','S','S','S','S','S','S','S','S','S','S','S',
				     'S','S','S','S','S','S','S','S','S','S','S','S','S','S','S','S', 'S', 0, 0 },	84, TWOSTEP_STATE_MALFORMED },
	{ "hash over 32",	1, { 2, ISSUED_BYTES, 5, 'a','l','i','c','e', 0, 0, 33,
				     'H','H','H','H','H','H','H','H','H','H','H','H','H','H','H','H',
				     'H','H','H','H','H','H','H','H','H','H','H','H','H','H','H','H', 'H', 0 },	52, TWOSTEP_STATE_MALFORMED },
};

static void test_layout(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(layout_cases) / sizeof(layout_cases[0]); i++) {
		layout_case_t const	*c = &layout_cases[i];
		uint8_t			tok[512];
		size_t			len = seal_raw(tok, c->version, &key_a, c->pt, c->ptlen);
		twostep_state_claims_t	out;
		twostep_state_rcode_t	rc;

		rc = verify(tok, len, &key_a, 1, NOW, "alice", &out);
		if (rc != c->want) {
			fail_msg("case \"%s\": got %s, want %s", c->name,
				 twostep_state_strerror(rc), twostep_state_strerror(c->want));
		}
		if (rc != TWOSTEP_STATE_OK && !is_zero(&out, sizeof(out))) {
			fail_msg("case \"%s\": claims not wiped", c->name);
		}
	}
}

static void test_bad_create_args(void **state)
{
	uint8_t			tok[TWOSTEP_STATE_MAX_LEN];
	size_t			len;
	twostep_state_claims_t	c;
	twostep_state_key_t	zero = key_a;

	(void)state;
	make_claims(&c, "alice", "dc=org", 20, NOW);
	c.method = (twostep_method_t)7;
	assert_int_equal(twostep_state_create(tok, &len, &key_a, &c), TWOSTEP_STATE_ERROR);

	make_claims(&c, "alice", "dc=org", 20, NOW);
	zero.id = 0;
	assert_int_equal(twostep_state_create(tok, &len, &zero, &c), TWOSTEP_STATE_ERROR);
	assert_int_equal(twostep_state_create(NULL, &len, &key_a, &c), TWOSTEP_STATE_ERROR);
	assert_int_equal(twostep_state_create(tok, NULL, &key_a, &c), TWOSTEP_STATE_ERROR);
	assert_int_equal(twostep_state_create(tok, &len, NULL, &c), TWOSTEP_STATE_ERROR);
	assert_int_equal(twostep_state_create(tok, &len, &key_a, NULL), TWOSTEP_STATE_ERROR);
}

static void test_strerror(void **state)
{
	int i, j;

	(void)state;
	for (i = TWOSTEP_STATE_OK; i <= TWOSTEP_STATE_ERROR; i++) {
		char const *s = twostep_state_strerror((twostep_state_rcode_t)i);

		assert_non_null(s);
		assert_true(strlen(s) > 0);
		for (j = 0; j < i; j++) assert_string_not_equal(s, twostep_state_strerror((twostep_state_rcode_t)j));
	}
}

/*
 *	Key files.
 */
static char tmpdir[64];

static int setup_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/twostep-test-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmpdir(void **state)
{
	char cmd[128];

	(void)state;
	if (!tmpdir[0]) return 0;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static char const *write_file(char const *name, char const *content)
{
	static char	path[128];
	FILE		*fp;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(content, 1, strlen(content), fp), strlen(content));
	assert_int_equal(fclose(fp), 0);
	return path;
}

#define HEX64 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

typedef struct {
	char const	*name;
	char const	*content;
	int		ret;
	int		id;		/* on success */
	char const	*err;		/* expected in the message, on failure */
} keyfile_case_t;

static keyfile_case_t const keyfile_cases[] = {
	{ "plain",		"1 " HEX64 "\n",					0, 1, NULL },
	{ "no newline",		"1 " HEX64,						0, 1, NULL },
	{ "comments",		"# State key\n\n  # indented comment\n7\t" HEX64 "\n\n# end\n", 0, 7, NULL },
	{ "CRLF",		"# key\r\n255 " HEX64 "\r\n",				0, 255, NULL },
	{ "upper case hex",	"3 000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F\n", 0, 3, NULL },
	{ "surrounding blanks",	"  12 \t " HEX64 "  \n",				0, 12, NULL },
	{ "id 0",		"0 " HEX64 "\n",					-1, 0, "key id" },
	{ "id 256",		"256 " HEX64 "\n",					-1, 0, "key id" },
	{ "id 1000",		"1000 " HEX64 "\n",					-1, 0, "key id" },
	{ "id negative",	"-1 " HEX64 "\n",					-1, 0, "key id" },
	{ "id not a number",	"abc " HEX64 "\n",					-1, 0, "key id" },
	{ "id glued to key",	"1" HEX64 "\n",						-1, 0, "key id" },
	{ "no id",		HEX64 "\n",						-1, 0, "key id" },
	{ "hex 63",		"1 " "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1\n", -1, 0, "64 hexadecimal digits" },
	{ "hex 65",		"1 " HEX64 "0\n",					-1, 0, "64 hexadecimal digits" },
	{ "hex 32",		"1 000102030405060708090a0b0c0d0e0f\n",			-1, 0, "64 hexadecimal digits" },
	{ "id only",		"1\n",							-1, 0, "key id" },
	{ "id and blank",	"1 \n",							-1, 0, "64 hexadecimal digits" },
	{ "not hex",		"1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g\n", -1, 0, "hexadecimal" },
	{ "trailing text",	"1 " HEX64 " extra\n",					-1, 0, "after the key" },
	{ "two keys",		"1 " HEX64 "\n2 " HEX64 "\n",				-1, 0, "more than one key line" },
	{ "two keys, comments",	"# a\n1 " HEX64 "\n# b\n1 " HEX64 "\n",			-1, 0, "line 4: more than one key line" },
	{ "empty file",		"",							-1, 0, "no key line" },
	{ "comments only",	"# nothing here\n\n",					-1, 0, "no key line" },
};

static void test_key_files(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(keyfile_cases) / sizeof(keyfile_cases[0]); i++) {
		keyfile_case_t const	*c = &keyfile_cases[i];
		char			name[32], err[512];
		char const		*path;
		twostep_state_key_t	key;
		int			ret;

		snprintf(name, sizeof(name), "key-%zu", i);
		path = write_file(name, c->content);
		memset(&key, 0xee, sizeof(key));
		memset(err, 'X', sizeof(err) - 1);
		err[sizeof(err) - 1] = '\0';

		ret = twostep_state_key_load(&key, path, err, sizeof(err));
		if (ret != c->ret) fail_msg("case \"%s\": got %d, want %d (%s)", c->name, ret, c->ret, err);
		if (ret == 0) {
			if (key.id != c->id) fail_msg("case \"%s\": id %d, want %d", c->name, key.id, c->id);
			assert_memory_equal(key.key, key_a.key, TWOSTEP_STATE_KEY_LEN);
		} else {
			print_message("  %-20s -> %s\n", c->name, err);
			if (!strstr(err, path)) fail_msg("case \"%s\": message does not name the file: %s", c->name, err);
			if (!strstr(err, c->err)) fail_msg("case \"%s\": message lacks \"%s\": %s", c->name, c->err, err);
			/* The output key is left alone. */
			assert_int_equal(key.id, 0xee);
		}
	}
}

static void test_key_file_missing(void **state)
{
	char			path[128], err[256];
	twostep_state_key_t	key;

	(void)state;
	snprintf(path, sizeof(path), "%s/does-not-exist.key", tmpdir);
	assert_int_equal(twostep_state_key_load(&key, path, err, sizeof(err)), -1);
	print_message("  missing file -> %s\n", err);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file"));

	/* A directory is not a key file. */
	assert_int_equal(twostep_state_key_load(&key, tmpdir, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a regular file"));

	/* A small error buffer truncates, never overflows. */
	assert_int_equal(twostep_state_key_load(&key, path, err, 8), -1);
	assert_int_equal(strlen(err), 7);
	assert_int_equal(twostep_state_key_load(&key, path, NULL, 0), -1);
}

/** A loaded key seals and opens tokens. */
static void test_key_file_use(void **state)
{
	twostep_state_key_t	key;
	char			err[256];
	uint8_t			tok[TWOSTEP_STATE_MAX_LEN];
	size_t			len;
	twostep_state_claims_t	c;

	(void)state;
	assert_int_equal(twostep_state_key_load(&key, write_file("use.key", "1 " HEX64 "\n"), err, sizeof(err)), 0);
	make_claims(&c, "alice", "dc=org", 20, NOW);
	len = mint(tok, &key, &c);
	assert_int_equal(verify(tok, len, &key_a, 1, NOW, "alice", NULL), TWOSTEP_STATE_OK);
}

int main(void)
{
	struct CMUnitTest const tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_nonce_differs),
		cmocka_unit_test(test_confidential),
		cmocka_unit_test(test_every_byte_flipped),
		cmocka_unit_test(test_key_id_swapped),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_rotation),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_wrong_user),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_realistic_ad_dn),
		cmocka_unit_test(test_not_ours),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_bad_create_args),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_key_files),
		cmocka_unit_test(test_key_file_missing),
		cmocka_unit_test(test_key_file_use),
	};

	return cmocka_run_group_tests(tests, setup_tmpdir, teardown_tmpdir);
}
