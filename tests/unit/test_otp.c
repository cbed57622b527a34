/*
 * test_otp.c: TOTP checks (RFC 6238 appendix B) and base32 seeds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <liboath/oath.h>

#include "crypto.h"
#include "otp.h"

/* RFC 6238 appendix B, SHA1 seed. */
static uint8_t const rfc_seed[] = "12345678901234567890";
#define RFC_SEED_LEN 20

typedef struct {
	int64_t		now;
	uint64_t	step;		/* floor(now / 30) */
	char const	*code8;		/* RFC 6238 appendix B */
	char const	*code6;		/* oathtool --totp -d 6 -N @now 3132...3930 */
	char const	*code7;		/* oathtool --totp -d 7 -N @now 3132...3930 */
} rfc_case_t;

static rfc_case_t const rfc_cases[] = {
	{ 59,		1,		"94287082", "287082", "4287082" },
	{ 1111111109,	37037036,	"07081804", "081804", "7081804" },
	{ 1111111111,	37037037,	"14050471", "050471", "4050471" },
	{ 1234567890,	41152263,	"89005924", "005924", "9005924" },
	{ 2000000000,	66666666,	"69279037", "279037", "9279037" },
	{ 20000000000LL, 666666666,	"65353130", "353130", "5353130" },
};
#define NUM_RFC_CASES (sizeof(rfc_cases) / sizeof(rfc_cases[0]))

static int setup(void **state)
{
	(void)state;
	return twostep_otp_init();
}

static int teardown(void **state)
{
	(void)state;
	oath_done();
	return 0;
}

static void check_one(char const *what, uint8_t const *seed, size_t seed_len, char const *code,
		      int64_t now, unsigned int time_step, unsigned int digits, unsigned int drift,
		      twostep_otp_rcode_t want, uint64_t want_step)
{
	uint64_t		step = UINT64_MAX;
	twostep_otp_rcode_t	rc;

	rc = twostep_totp_check(seed, seed_len, code, now, time_step, digits, drift, &step);
	if (rc != want) {
		fail_msg("%s: code \"%s\" at %lld, %u digits, drift %u: got rcode %d, want %d",
			 what, code, (long long)now, digits, drift, rc, want);
	}
	if (want == TWOSTEP_OTP_MATCH && step != want_step) {
		fail_msg("%s: code \"%s\" at %lld: got step %llu, want %llu",
			 what, code, (long long)now, (unsigned long long)step, (unsigned long long)want_step);
	}
	if (want != TWOSTEP_OTP_MATCH && step != UINT64_MAX) {
		fail_msg("%s: step written on a result other than MATCH", what);
	}
}

static void test_rfc6238_8_digits(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NUM_RFC_CASES; i++) {
		check_one("RFC 6238 8 digits", rfc_seed, RFC_SEED_LEN, rfc_cases[i].code8,
			  rfc_cases[i].now, 30, 8, 0, TWOSTEP_OTP_MATCH, rfc_cases[i].step);
		check_one("RFC 6238 8 digits, drift 1", rfc_seed, RFC_SEED_LEN, rfc_cases[i].code8,
			  rfc_cases[i].now, 30, 8, 1, TWOSTEP_OTP_MATCH, rfc_cases[i].step);
	}
}

static void test_rfc6238_6_and_7_digits(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NUM_RFC_CASES; i++) {
		check_one("6 digits", rfc_seed, RFC_SEED_LEN, rfc_cases[i].code6,
			  rfc_cases[i].now, 30, 6, 0, TWOSTEP_OTP_MATCH, rfc_cases[i].step);
		check_one("7 digits", rfc_seed, RFC_SEED_LEN, rfc_cases[i].code7,
			  rfc_cases[i].now, 30, 7, 0, TWOSTEP_OTP_MATCH, rfc_cases[i].step);

		/* A code of the right length for another setting is malformed. */
		check_one("8-digit code, 6 expected", rfc_seed, RFC_SEED_LEN, rfc_cases[i].code8,
			  rfc_cases[i].now, 30, 6, 1, TWOSTEP_OTP_MALFORMED, 0);
		check_one("6-digit code, 8 expected", rfc_seed, RFC_SEED_LEN, rfc_cases[i].code6,
			  rfc_cases[i].now, 30, 8, 1, TWOSTEP_OTP_MALFORMED, 0);
	}
}

/** The first and last second of a step give the same step. */
static void test_step_edges(void **state)
{
	(void)state;

	/* 1111111109 and 1111111111 straddle the boundary at 1111111110. */
	check_one("last second of step", rfc_seed, RFC_SEED_LEN, "07081804", 1111111109, 30, 8, 0,
		  TWOSTEP_OTP_MATCH, 37037036);
	check_one("first second of next step", rfc_seed, RFC_SEED_LEN, "07081804", 1111111110, 30, 8, 0,
		  TWOSTEP_OTP_MISMATCH, 0);
	check_one("first second of next step, drift 1", rfc_seed, RFC_SEED_LEN, "07081804", 1111111110, 30, 8, 1,
		  TWOSTEP_OTP_MATCH, 37037036);
	check_one("first second of step", rfc_seed, RFC_SEED_LEN, "14050471", 1111111110, 30, 8, 0,
		  TWOSTEP_OTP_MATCH, 37037037);
}

/** Codes of steps T-2..T+2, generated independently with liboath's HOTP. */
static void make_codes(char codes[5][10], uint64_t t, unsigned int digits)
{
	int i, j;

	for (i = 0; i < 5; i++) {
		assert_int_equal(oath_hotp_generate((char const *)rfc_seed, RFC_SEED_LEN, t + (uint64_t)i - 2,
						    digits, false, OATH_HOTP_DYNAMIC_TRUNCATION, codes[i]), OATH_OK);
	}
	/* The test only means something if the five codes differ. */
	for (i = 0; i < 5; i++) for (j = i + 1; j < 5; j++) assert_string_not_equal(codes[i], codes[j]);
}

static void test_drift(void **state)
{
	int64_t const	now = 1700000015;	/* mid-step */
	uint64_t const	t = (uint64_t)now / 30;
	char		codes[5][10];
	unsigned int	digits;

	(void)state;

	for (digits = 6; digits <= 8; digits++) {
		make_codes(codes, t, digits);

		/* drift 0: only T */
		check_one("drift 0, T-1", rfc_seed, RFC_SEED_LEN, codes[1], now, 30, digits, 0, TWOSTEP_OTP_MISMATCH, 0);
		check_one("drift 0, T",   rfc_seed, RFC_SEED_LEN, codes[2], now, 30, digits, 0, TWOSTEP_OTP_MATCH, t);
		check_one("drift 0, T+1", rfc_seed, RFC_SEED_LEN, codes[3], now, 30, digits, 0, TWOSTEP_OTP_MISMATCH, 0);

		/* drift 1: T-1..T+1 */
		check_one("drift 1, T-2", rfc_seed, RFC_SEED_LEN, codes[0], now, 30, digits, 1, TWOSTEP_OTP_MISMATCH, 0);
		check_one("drift 1, T-1", rfc_seed, RFC_SEED_LEN, codes[1], now, 30, digits, 1, TWOSTEP_OTP_MATCH, t - 1);
		check_one("drift 1, T",   rfc_seed, RFC_SEED_LEN, codes[2], now, 30, digits, 1, TWOSTEP_OTP_MATCH, t);
		check_one("drift 1, T+1", rfc_seed, RFC_SEED_LEN, codes[3], now, 30, digits, 1, TWOSTEP_OTP_MATCH, t + 1);
		check_one("drift 1, T+2", rfc_seed, RFC_SEED_LEN, codes[4], now, 30, digits, 1, TWOSTEP_OTP_MISMATCH, 0);

		/* drift 2: T-2..T+2 */
		check_one("drift 2, T-2", rfc_seed, RFC_SEED_LEN, codes[0], now, 30, digits, 2, TWOSTEP_OTP_MATCH, t - 2);
		check_one("drift 2, T+2", rfc_seed, RFC_SEED_LEN, codes[4], now, 30, digits, 2, TWOSTEP_OTP_MATCH, t + 2);
	}
}

/** Another step length: 60 seconds. */
static void test_time_step_60(void **state)
{
	int64_t const	now = 1700000059;
	uint64_t const	t = (uint64_t)now / 60;
	char		codes[5][10];

	(void)state;
	make_codes(codes, t, 6);
	check_one("step 60, T",   rfc_seed, RFC_SEED_LEN, codes[2], now, 60, 6, 0, TWOSTEP_OTP_MATCH, t);
	check_one("step 60, T+1", rfc_seed, RFC_SEED_LEN, codes[3], now, 60, 6, 1, TWOSTEP_OTP_MATCH, t + 1);
	check_one("step 60, T+1, drift 0", rfc_seed, RFC_SEED_LEN, codes[3], now, 60, 6, 0, TWOSTEP_OTP_MISMATCH, 0);
}

/** Near the epoch, steps below zero do not exist. */
static void test_near_epoch(void **state)
{
	char codes[5][10];

	(void)state;
	make_codes(codes, 2, 6);	/* steps 0..4 */
	check_one("epoch, step 0", rfc_seed, RFC_SEED_LEN, codes[0], 10, 30, 6, 1, TWOSTEP_OTP_MATCH, 0);
	check_one("epoch, step 1", rfc_seed, RFC_SEED_LEN, codes[1], 10, 30, 6, 1, TWOSTEP_OTP_MATCH, 1);
	check_one("epoch, step 2", rfc_seed, RFC_SEED_LEN, codes[2], 10, 30, 6, 1, TWOSTEP_OTP_MISMATCH, 0);
	check_one("before the epoch", rfc_seed, RFC_SEED_LEN, codes[0], -1, 30, 6, 1, TWOSTEP_OTP_ERROR, 0);
}

static void test_mismatch(void **state)
{
	(void)state;
	check_one("wrong code", rfc_seed, RFC_SEED_LEN, "000000", 1111111111, 30, 6, 1, TWOSTEP_OTP_MISMATCH, 0);
	check_one("off by one", rfc_seed, RFC_SEED_LEN, "050472", 1111111111, 30, 6, 1, TWOSTEP_OTP_MISMATCH, 0);
	check_one("other seed", (uint8_t const *)"12345678901234567891", 20, "050471", 1111111111, 30, 6, 1,
		  TWOSTEP_OTP_MISMATCH, 0);
	check_one("one year later", rfc_seed, RFC_SEED_LEN, "050471", 1111111111 + 31536000, 30, 6, 1,
		  TWOSTEP_OTP_MISMATCH, 0);
}

typedef struct {
	char const	*name;
	char const	*code;
	unsigned int	digits;
} malformed_case_t;

static malformed_case_t const malformed_cases[] = {
	{ "empty",			"",		6 },
	{ "5 digits",			"12345",	6 },
	{ "7 digits, 6 expected",	"0504710",	6 },
	{ "5 digits, 8 expected",	"12345",	8 },
	{ "9 digits, 8 expected",	"140504710",	8 },
	{ "letters",			"abcdef",	6 },
	{ "one letter",			"05047a",	6 },
	{ "inner space",		"050 471",	6 },
	{ "inner space, same length",	"050 47",	6 },
	{ "leading space",		" 050471",	6 },
	{ "trailing space",		"050471 ",	6 },
	{ "trailing newline",		"050471\n",	6 },
	{ "5 digits and newline",	"12345\n",	6 },
	{ "sign",			"+50471",	6 },
	{ "minus",			"-50471",	6 },
	{ "hex",			"0x1234",	6 },
	{ "full-width digits",		"\xef\xbc\x90\xef\xbc\x95", 6 },
	{ "superscript digits",		"\xc2\xb2\xc2\xb3\xc2\xb9", 6 },
	{ "tab",			"05047\t",	6 },
};

static void test_malformed(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(malformed_cases) / sizeof(malformed_cases[0]); i++) {
		check_one(malformed_cases[i].name, rfc_seed, RFC_SEED_LEN, malformed_cases[i].code,
			  1111111111, 30, malformed_cases[i].digits, 1, TWOSTEP_OTP_MALFORMED, 0);
	}
	assert_int_equal(twostep_totp_check(rfc_seed, RFC_SEED_LEN, NULL, 1111111111, 30, 6, 1, NULL),
			 TWOSTEP_OTP_MALFORMED);
}

static void test_bad_parameters(void **state)
{
	(void)state;
	check_one("5 digits configured", rfc_seed, RFC_SEED_LEN, "71111", 1111111111, 30, 5, 1, TWOSTEP_OTP_ERROR, 0);
	check_one("9 digits configured", rfc_seed, RFC_SEED_LEN, "714050471", 1111111111, 30, 9, 1, TWOSTEP_OTP_ERROR, 0);
	check_one("0 digits configured", rfc_seed, RFC_SEED_LEN, "", 1111111111, 30, 0, 1, TWOSTEP_OTP_ERROR, 0);
	check_one("time step 0", rfc_seed, RFC_SEED_LEN, "050471", 1111111111, 0, 6, 1, TWOSTEP_OTP_ERROR, 0);
	check_one("empty seed", rfc_seed, 0, "050471", 1111111111, 30, 6, 1, TWOSTEP_OTP_ERROR, 0);
	check_one("NULL seed", NULL, 20, "050471", 1111111111, 30, 6, 1, TWOSTEP_OTP_ERROR, 0);

	/* step may be NULL */
	assert_int_equal(twostep_totp_check(rfc_seed, RFC_SEED_LEN, "050471", 1111111111, 30, 6, 0, NULL),
			 TWOSTEP_OTP_MATCH);
}

typedef struct {
	char const	*name;
	char const	*in;
	size_t		outsize;
	int		ret;
	char const	*out;
	size_t		outlen;
} b32_case_t;

static b32_case_t const b32_cases[] = {
	{ "RFC 6238 seed",		"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",		64, 0, "12345678901234567890", 20 },
	{ "lower case",			"gezdgnbvgy3tqojqgezdgnbvgy3tqojq",		64, 0, "12345678901234567890", 20 },
	{ "mixed case",			"GezdGNBVgy3tQOJQgezdgnbvGY3TQOJQ",		64, 0, "12345678901234567890", 20 },
	{ "spaces in groups of 4",	"GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ",	64, 0, "12345678901234567890", 20 },
	{ "lower case and spaces",	"gezd gnbv gy3t qojq gezd gnbv gy3t qojq",	64, 0, "12345678901234567890", 20 },
	{ "leading and trailing space",	"  GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ ",	64, 0, "12345678901234567890", 20 },
	{ "exact buffer",		"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",		20, 0, "12345678901234567890", 20 },
	{ "buffer one short",		"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",		19, -1, NULL, 0 },
	{ "padding",			"MZXW6===",					64, 0, "foo", 3 },
	{ "missing padding",		"MZXW6",					64, 0, "foo", 3 },
	{ "digit 1 is not base32",	"GEZDGNBVGY3TQOJ1",				64, -1, NULL, 0 },
	{ "digit 0 is not base32",	"GEZDGNBVGY3TQOJ0",				64, -1, NULL, 0 },
	{ "digit 8 is not base32",	"GEZDGNBVGY3TQOJ8",				64, -1, NULL, 0 },
	{ "punctuation",		"GEZDGNBV!Y3TQOJQ",				64, -1, NULL, 0 },
	{ "hyphen",			"GEZD-GNBV",					64, -1, NULL, 0 },
	{ "tab",			"GEZD\tGNBV",					64, -1, NULL, 0 },
	{ "impossible length",		"GEZ",						64, -1, NULL, 0 },
	{ "empty",			"",						64, -1, NULL, 0 },
	{ "only spaces",		"    ",						64, -1, NULL, 0 },
};

static void test_base32(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(b32_cases) / sizeof(b32_cases[0]); i++) {
		b32_case_t const	*c = &b32_cases[i];
		uint8_t			*out = test_malloc(c->outsize ? c->outsize : 1);
		size_t			outlen = c->outsize;
		int			ret;

		ret = twostep_base32_decode(out, &outlen, c->in);
		if (ret != c->ret) fail_msg("case \"%s\": got %d, want %d", c->name, ret, c->ret);
		if (ret == 0) {
			if (outlen != c->outlen || memcmp(out, c->out, outlen) != 0) {
				fail_msg("case \"%s\": decoded %zu bytes, want %zu", c->name, outlen, c->outlen);
			}
		}
		test_free(out);
	}
}

static void test_base32_null(void **state)
{
	uint8_t	out[8];
	size_t	outlen = sizeof(out);

	(void)state;
	assert_int_equal(twostep_base32_decode(out, &outlen, NULL), -1);
	assert_int_equal(twostep_base32_decode(NULL, &outlen, "MZXW6"), -1);
	assert_int_equal(twostep_base32_decode(out, NULL, "MZXW6"), -1);
}

/** A decoded seed checks codes: the round trip the module performs. */
static void test_base32_then_totp(void **state)
{
	uint8_t	seed[64];
	size_t	seed_len = sizeof(seed);
	uint64_t step = 0;

	(void)state;
	assert_int_equal(twostep_base32_decode(seed, &seed_len, "gezd gnbv gy3t qojq gezd gnbv gy3t qojq"), 0);
	assert_int_equal(twostep_totp_check(seed, seed_len, "279037", 2000000000, 30, 6, 1, &step), TWOSTEP_OTP_MATCH);
	assert_int_equal(step, 66666666);
}

/** The comparator behind the code check (crypto.c). */
static void test_const_equal(void **state)
{
	uint8_t buf[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	(void)state;
	assert_int_equal(twostep_const_equal("123456", 6, "123456", 6), 1);
	assert_int_equal(twostep_const_equal("123456", 6, "123457", 6), 0);
	assert_int_equal(twostep_const_equal("923456", 6, "123456", 6), 0);
	assert_int_equal(twostep_const_equal("12345", 5, "123456", 6), 0);	/* prefix */
	assert_int_equal(twostep_const_equal("123456", 6, "12345", 5), 0);
	assert_int_equal(twostep_const_equal("123456", 6, "123456", 7), 0);	/* same bytes, other length */
	assert_int_equal(twostep_const_equal("", 0, "", 0), 1);
	assert_int_equal(twostep_const_equal(NULL, 0, NULL, 0), 1);
	assert_int_equal(twostep_const_equal("", 0, "1", 1), 0);

	twostep_wipe(buf, sizeof(buf));
	assert_memory_equal(buf, "\0\0\0\0\0\0\0\0", 8);
	twostep_wipe(NULL, 0);
}

int main(void)
{
	struct CMUnitTest const tests[] = {
		cmocka_unit_test(test_rfc6238_8_digits),
		cmocka_unit_test(test_rfc6238_6_and_7_digits),
		cmocka_unit_test(test_step_edges),
		cmocka_unit_test(test_drift),
		cmocka_unit_test(test_time_step_60),
		cmocka_unit_test(test_near_epoch),
		cmocka_unit_test(test_mismatch),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_bad_parameters),
		cmocka_unit_test(test_base32),
		cmocka_unit_test(test_base32_null),
		cmocka_unit_test(test_base32_then_totp),
		cmocka_unit_test(test_const_equal),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
