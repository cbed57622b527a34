/*
 * test_smsutil.c: phone numbers, masking, SMS codes and their hash,
 * gateway request templates and the check of a gateway's response.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smsutil.h"

#define NUM(_a)	(sizeof(_a) / sizeof((_a)[0]))

/*
 *	Normalisation to E.164.
 */

typedef struct {
	char const	*name;
	char const	*in;
	char const	*default_cc;
	char const	*out;		//!< NULL when the number must be rejected.
} normalise_case_t;

static normalise_case_t const normalise_cases[] = {
	/* International with '+'. */
	{ "plus, digits only",			"+15550100200",		NULL,	"+15550100200" },
	{ "plus, spaces",			"+44 20 7946 0958",	NULL,	"+442079460958" },
	{ "plus, brackets and dashes",		"+1 (555) 010-0200",	NULL,	"+15550100200" },
	{ "plus, dots and slash",		"+49.30/1234-5678",	NULL,	"+493012345678" },
	{ "plus inside brackets",		"(+44) 20 7946 0958",	NULL,	"+442079460958" },
	{ "leading spaces before plus",		"  +44 20 7946 0958",	NULL,	"+442079460958" },
	{ "plus, default cc ignored",		"+15550100200",		"44",	"+15550100200" },
	{ "plus, then 0",			"+0442079460958",	NULL,	NULL },

	/* International with "00". */
	{ "00 prefix",				"0044 20 7946 0958",	NULL,	"+442079460958" },
	{ "00 prefix, default cc ignored",	"0033 1 23 45 67 89",	"44",	"+33123456789" },
	{ "00 prefix, then 0",			"000442079460958",	NULL,	NULL },
	{ "plus and 00",			"+0044 20 7946 0958",	NULL,	NULL },

	/* National. */
	{ "national, trunk 0",			"020 7946 0958",	"44",	"+442079460958" },
	{ "national, no trunk 0",		"20 7946 0958",		"44",	"+442079460958" },
	{ "national, brackets",			"(020) 7946-0958",	"44",	"+442079460958" },
	{ "national, 1-digit cc",		"(555) 010-0200",	"1",	"+15550100200" },
	{ "national, 3-digit cc",		"040 123 4567",		"358",	"+358401234567" },
	{ "national, no default cc",		"020 7946 0958",	NULL,	NULL },
	{ "national, empty default cc",		"020 7946 0958",	"",	NULL },
	{ "default cc of 4 digits",		"020 7946 0958",	"4444",	NULL },
	{ "default cc starting with 0",		"020 7946 0958",	"044",	NULL },
	{ "default cc with plus",		"020 7946 0958",	"+44",	NULL },
	{ "default cc with letters",		"020 7946 0958",	"uk",	NULL },
	{ "national, trunk 0 only",		"0",			"44",	NULL },
	{ "national, too short",		"0123 45",		"44",	NULL },
	{ "national, 15 digits with cc",	"0 1234 5678 9012 3",	"44",	"+441234567890123" },
	{ "national, 16 digits with cc",	"0 1234 5678 9012 34",	"44",	NULL },

	/* Length limits: 8 to 15 digits. */
	{ "7 digits",				"+1234567",		NULL,	NULL },
	{ "8 digits",				"+12345678",		NULL,	"+12345678" },
	{ "15 digits",				"+123456789012345",	NULL,	"+123456789012345" },
	{ "16 digits",				"+1234567890123456",	NULL,	NULL },
	{ "00 prefix, 15 digits",		"00123456789012345",	NULL,	"+123456789012345" },
	{ "00 prefix, 16 digits",		"001234567890123456",	NULL,	NULL },
	{ "30 digits",				"+123456789012345678901234567890", NULL, NULL },

	/* Characters that are not allowed. */
	{ "letters",				"+44 20 ABCD 0958",	NULL,	NULL },
	{ "vanity number",			"+1 800 FLOWERS",	NULL,	NULL },
	{ "extension",				"+44 20 7946 0958 x12",	NULL,	NULL },
	{ "plus in the middle",			"44+2079460958",	NULL,	NULL },
	{ "plus after digits",			"+44 20+79460958",	NULL,	NULL },
	{ "trailing plus",			"+442079460958+",	NULL,	NULL },
	{ "two pluses",				"++442079460958",	NULL,	NULL },
	{ "tab",				"+44\t2079460958",	NULL,	NULL },
	{ "newline",				"+442079460958\n",	NULL,	NULL },
	{ "UTF-8 digit look-alike",		"+44 20 7946 095\xd9\xa8", NULL, NULL },

	/* Nothing to normalise. */
	{ "empty",				"",			NULL,	NULL },
	{ "empty, default cc",			"",			"44",	NULL },
	{ "only punctuation",			" ()-./ ",		NULL,	NULL },
	{ "only punctuation, default cc",	" ()-./ ",		"44",	NULL },
	{ "only plus",				"+",			NULL,	NULL },
};

static void test_normalise_table(void **state)
{
	size_t i;

	(void)state;

	for (i = 0; i < NUM(normalise_cases); i++) {
		normalise_case_t const	*c = &normalise_cases[i];
		char			out[TWOSTEP_PHONE_MAX + 1];
		int			ret;

		memset(out, 'X', sizeof(out));
		ret = twostep_phone_normalise(out, sizeof(out), c->in, c->default_cc);

		if (!c->out) {
			if (ret != -1 || out[0] != '\0') {
				fail_msg("case \"%s\": got %d \"%.*s\", want -1 \"\"",
					 c->name, ret, (int)sizeof(out), out);
			}
			continue;
		}
		if (ret != 0 || strcmp(out, c->out) != 0) {
			fail_msg("case \"%s\": got %d \"%.*s\", want 0 \"%s\"",
				 c->name, ret, (int)sizeof(out), out, c->out);
		}
	}
}

/** Exactly enough room works. One byte less fails with an empty output. */
static void test_normalise_sizes(void **state)
{
	size_t i;

	(void)state;

	for (i = 0; i < NUM(normalise_cases); i++) {
		normalise_case_t const	*c = &normalise_cases[i];
		size_t			need;
		char			*out;
		int			ret;

		if (!c->out) continue;

		need = strlen(c->out) + 1;
		out = test_malloc(need);	/* exact size, so an overrun is caught */
		memset(out, 'X', need);
		ret = twostep_phone_normalise(out, need, c->in, c->default_cc);
		if (ret != 0 || strcmp(out, c->out) != 0) {
			fail_msg("case \"%s\": exact buffer of %zu bytes: got %d", c->name, need, ret);
		}

		memset(out, 'X', need);
		ret = twostep_phone_normalise(out, need - 1, c->in, c->default_cc);
		if (ret != -1 || out[0] != '\0') {
			fail_msg("case \"%s\": buffer of %zu bytes (one short): got %d, out[0]=0x%02x",
				 c->name, need - 1, ret, (unsigned char)out[0]);
		}
		test_free(out);
	}
}

static void test_normalise_degenerate(void **state)
{
	char out[TWOSTEP_PHONE_MAX + 1] = "abc";

	(void)state;

	assert_int_equal(twostep_phone_normalise(out, 0, "+15550100200", NULL), -1);
	assert_string_equal(out, "abc");
	assert_int_equal(twostep_phone_normalise(NULL, sizeof(out), "+15550100200", NULL), -1);
	assert_int_equal(twostep_phone_normalise(out, sizeof(out), NULL, "44"), -1);
	assert_string_equal(out, "");
}

/*
 *	Country calling code length.
 */

typedef struct {
	char const	*e164;
	size_t		len;
} cc_len_case_t;

static cc_len_case_t const cc_len_cases[] = {
	{ "+15550100200",	1 },
	{ "+79161234567",	1 },
	{ "+201001234567",	2 },
	{ "+27821234567",	2 },
	{ "+28812345678",	3 },
	{ "+21212345678",	3 },
	{ "+30691234567",	2 },
	{ "+34612345678",	2 },
	{ "+35812345678",	3 },
	{ "+36201234567",	2 },
	{ "+37212345678",	3 },
	{ "+39312345678",	2 },
	{ "+42012345678",	3 },
	{ "+447700900123",	2 },
	{ "+4930123456",	2 },
	{ "+50212345678",	3 },
	{ "+51912345678",	2 },
	{ "+58412345678",	2 },
	{ "+59812345678",	3 },
	{ "+66812345678",	2 },
	{ "+67512345678",	3 },
	{ "+80012345678",	3 },
	{ "+81901234567",	2 },
	{ "+85212345678",	3 },
	{ "+86131234567",	2 },
	{ "+8801712345678",	3 },
	{ "+90532123456",	2 },
	{ "+95912345678",	2 },
	{ "+96612345678",	3 },
	{ "+98912123456",	2 },
	{ "+99312345678",	3 },
	{ "447700900123",	2 },	/* without '+' */
	{ "+4",			0 },	/* too few digits for a 2-digit code */
	{ "+21",		0 },	/* too few digits for a 3-digit code */
	{ "+212",		3 },
	{ "+1",			1 },
	{ "+0441234567",	0 },
	{ "+",			0 },
	{ "",			0 },
	{ "+ 44",		0 },
	{ "+a1",		0 },
};

static void test_cc_len_table(void **state)
{
	size_t i;

	(void)state;

	for (i = 0; i < NUM(cc_len_cases); i++) {
		size_t got = twostep_phone_cc_len(cc_len_cases[i].e164);

		if (got != cc_len_cases[i].len) {
			fail_msg("\"%s\": got %zu, want %zu", cc_len_cases[i].e164, got, cc_len_cases[i].len);
		}
	}
	assert_int_equal(twostep_phone_cc_len(NULL), 0);
}

/** Every two-digit start 10..99 against the ITU-T list, copied here from smsutil.h. */
static void test_cc_len_every_prefix(void **state)
{
	static unsigned int const two_digit[] = {
		20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49,
		51, 52, 53, 54, 55, 56, 57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86,
		90, 91, 92, 93, 94, 95, 98,
	};
	unsigned int prefix;

	(void)state;

	for (prefix = 10; prefix < 100; prefix++) {
		char	e164[16];
		size_t	want = 3, i;

		if ((prefix / 10 == 1) || (prefix / 10 == 7)) want = 1;
		for (i = 0; i < NUM(two_digit); i++) {
			if (two_digit[i] == prefix) want = 2;
		}

		snprintf(e164, sizeof(e164), "+%u123456789", prefix);
		if (twostep_phone_cc_len(e164) != want) {
			fail_msg("%s: got %zu, want %zu", e164, twostep_phone_cc_len(e164), want);
		}
	}
}

/*
 *	Country allow-list.
 */

typedef struct {
	char const	*name;
	char const	*e164;
	char const	*allowed[4];
	size_t		num_allowed;
	bool		want;
} allowed_case_t;

static allowed_case_t const allowed_cases[] = {
	{ "no list",				"+15550100200",		{ NULL },		0, true },
	{ "no list, invalid number",		"garbage",		{ NULL },		0, true },
	{ "listed, 1 digit",			"+15550100200",		{ "1", "44" },		2, true },
	{ "listed, 2 digits",			"+447700900123",	{ "1", "44" },		2, true },
	{ "not listed",				"+493012345678",	{ "1", "44" },		2, false },
	{ "listed, 3 digits",			"+358401234567",	{ "358" },		1, true },
	{ "prefix of code is not a match",	"+447700900123",	{ "4" },		1, false },
	{ "longer entry is not a match",	"+447700900123",	{ "447" },		1, false },
	{ "code is prefix of entry",		"+15550100200",		{ "15" },		1, false },
	{ "entry with plus",			"+447700900123",	{ "+44" },		1, true },
	{ "1 covers the whole NANP",		"+12425550123",		{ "1" },		1, true },
	{ "NULL entry skipped",			"+447700900123",	{ NULL, "44" },		2, true },
	{ "empty entry",			"+447700900123",	{ "" },			1, false },
	{ "invalid number, list set",		"+0447700900123",	{ "44" },		1, false },
	{ "empty number, list set",		"",			{ "44" },		1, false },
};

static void test_country_allowed_table(void **state)
{
	size_t i;

	(void)state;

	for (i = 0; i < NUM(allowed_cases); i++) {
		allowed_case_t const	*c = &allowed_cases[i];
		bool			got = twostep_phone_country_allowed(c->e164, c->allowed, c->num_allowed);

		if (got != c->want) fail_msg("case \"%s\": got %d, want %d", c->name, got, c->want);
	}

	assert_false(twostep_phone_country_allowed(NULL, allowed_cases[2].allowed, 2));
	assert_false(twostep_phone_country_allowed("+15550100200", NULL, 2));
	assert_true(twostep_phone_country_allowed("+15550100200", NULL, 0));
}

/*
 *	Masking.
 */

typedef struct {
	char const	*name;
	char const	*e164;
	char		mask;
	char const	*out;		//!< NULL when the call must fail.
} mask_case_t;

static mask_case_t const mask_cases[] = {
	{ "NANP, 6 masked",		"+15550100200",		'*',	"+1 *** *** 0200" },
	{ "UK mobile, 6 masked",	"+447700900123",	'*',	"+44 *** *** 0123" },
	{ "UK London, 6 masked",	"+442079460958",	'*',	"+44 *** *** 0958" },
	{ "Russia, 1-digit cc",		"+79161234567",		'*',	"+7 *** *** 4567" },
	{ "8 digits, 3 masked",		"+12345678",		'*',	"+1 *** 5678" },
	{ "national 5, 1 masked",	"+35812345",		'*',	"+358 * 2345" },
	{ "national 6, 2 masked",	"+358123456",		'*',	"+358 ** 3456" },
	{ "national 8, 4 masked",	"+4912345678",		'*',	"+49 *** * 5678" },
	{ "national 9, 5 masked",	"+44123456789",		'*',	"+44 *** ** 6789" },
	{ "3-digit cc, 6 masked",	"+8801712345678",	'*',	"+880 *** *** 5678" },
	{ "15 digits, 10 masked",	"+123456789012345",	'*',	"+1 *** *** *** * 2345" },
	{ "15 digits, 3-digit cc",	"+358123456789012",	'*',	"+358 *** *** ** 9012" },
	{ "mask character #",		"+15550100200",		'#',	"+1 ### ### 0200" },
	{ "mask character x",		"+447700900123",	'x',	"+44 xxx xxx 0123" },
	{ "no plus",			"15550100200",		'*',	NULL },
	{ "7 digits",			"+1234567",		'*',	NULL },
	{ "16 digits",			"+1234567890123456",	'*',	NULL },
	{ "leading 0",			"+0447700900123",	'*',	NULL },
	{ "not normalised",		"+1 555 010 0200",	'*',	NULL },
	{ "letters",			"+1555010020A",		'*',	NULL },
	{ "empty",			"",			'*',	NULL },
	{ "NUL mask",			"+15550100200",		'\0',	NULL },
};

static void test_mask_table(void **state)
{
	size_t i;

	(void)state;

	for (i = 0; i < NUM(mask_cases); i++) {
		mask_case_t const	*c = &mask_cases[i];
		char			out[64];
		ssize_t			ret;

		memset(out, 'X', sizeof(out));
		ret = twostep_phone_mask(out, sizeof(out), c->e164, c->mask);

		if (!c->out) {
			if (ret != -1 || out[0] != '\0') fail_msg("case \"%s\": got %zd, want -1 \"\"", c->name, ret);
			continue;
		}
		if (ret != (ssize_t)strlen(c->out) || strcmp(out, c->out) != 0) {
			fail_msg("case \"%s\": got %zd \"%s\", want %zu \"%s\"",
				 c->name, ret, ret >= 0 ? out : "", strlen(c->out), c->out);
		}
	}

	assert_int_equal(twostep_phone_mask(NULL, 64, "+15550100200", '*'), -1);
}

static void test_mask_sizes(void **state)
{
	size_t i;

	(void)state;

	for (i = 0; i < NUM(mask_cases); i++) {
		mask_case_t const	*c = &mask_cases[i];
		size_t			need;
		char			*out;
		ssize_t			ret;

		if (!c->out) continue;

		need = strlen(c->out) + 1;
		out = test_malloc(need);
		memset(out, 'X', need);
		ret = twostep_phone_mask(out, need, c->e164, c->mask);
		if (ret != (ssize_t)(need - 1) || strcmp(out, c->out) != 0) {
			fail_msg("case \"%s\": exact buffer of %zu bytes: got %zd", c->name, need, ret);
		}

		memset(out, 'X', need);
		ret = twostep_phone_mask(out, need - 1, c->e164, c->mask);
		if (ret != -1 || out[0] != '\0') {
			fail_msg("case \"%s\": buffer of %zu bytes (one short): got %zd, out[0]=0x%02x",
				 c->name, need - 1, ret, (unsigned char)out[0]);
		}
		test_free(out);
	}
}

/*
 *	Code generation.
 */

static void test_code_lengths(void **state)
{
	unsigned int digits;

	(void)state;

	for (digits = 4; digits <= TWOSTEP_CODE_MAX; digits++) {
		int draw;

		for (draw = 0; draw < 200; draw++) {
			char	*out = test_malloc(digits + 1);	/* exact size, so an overrun is caught */
			size_t	i;

			if (twostep_sms_code_generate(out, digits) != 0) fail_msg("%u digits: generation failed", digits);
			if (strlen(out) != digits) fail_msg("%u digits: got \"%s\"", digits, out);
			for (i = 0; i < digits; i++) {
				if (out[i] < '0' || out[i] > '9') fail_msg("%u digits: got \"%s\"", digits, out);
			}
			test_free(out);
		}
	}
}

static void test_code_out_of_range(void **state)
{
	static unsigned int const bad[] = { 0, 1, 3, TWOSTEP_CODE_MAX + 1, 20, (unsigned int)-1 };
	size_t i;

	(void)state;

	for (i = 0; i < NUM(bad); i++) {
		char out[64] = "X";

		if (twostep_sms_code_generate(out, bad[i]) != -1) fail_msg("%u digits: accepted", bad[i]);
		if (out[0] != '\0') fail_msg("%u digits: output not emptied", bad[i]);
	}
	assert_int_equal(twostep_sms_code_generate(NULL, 6), -1);
}

/*
 *	Chi-square bound for 10 bins (9 degrees of freedom). A uniform source
 *	exceeds 60 with probability about 1.3e-9, so the test does not flake,
 *	but one digit drawn 20% too often in 10,000 draws adds more than 40.
 */
#define DRAWS		10000
#define CHI_SQUARE_MAX	60.0

/** Draw DRAWS codes: every digit must appear at every position, and the first digit must look uniform. */
static void test_code_distribution(void **state)
{
	static unsigned int const lengths[] = { 4, 6, TWOSTEP_CODE_MAX };
	size_t j;

	(void)state;

	for (j = 0; j < NUM(lengths); j++) {
		unsigned int	digits = lengths[j];
		unsigned int	count[TWOSTEP_CODE_MAX][10];
		double		expected = DRAWS / 10.0, chi_square = 0;
		unsigned int	draw, pos, d;

		memset(count, 0, sizeof(count));
		for (draw = 0; draw < DRAWS; draw++) {
			char out[TWOSTEP_CODE_MAX + 1];

			assert_int_equal(twostep_sms_code_generate(out, digits), 0);
			for (pos = 0; pos < digits; pos++) count[pos][out[pos] - '0']++;
		}

		for (pos = 0; pos < digits; pos++) {
			for (d = 0; d < 10; d++) {
				if (count[pos][d] == 0) fail_msg("%u digits: digit %u never at position %u", digits, d, pos);
			}
		}

		for (d = 0; d < 10; d++) {
			double diff = count[0][d] - expected;

			chi_square += diff * diff / expected;
		}
		if (chi_square > CHI_SQUARE_MAX) {
			fail_msg("%u digits: first digit chi-square %.1f over %.1f", digits, chi_square, CHI_SQUARE_MAX);
		}
	}
}

static void test_code_draws_differ(void **state)
{
	char a[TWOSTEP_CODE_MAX + 1], b[TWOSTEP_CODE_MAX + 1];

	(void)state;

	/* Equal by chance with probability 10^-10. */
	assert_int_equal(twostep_sms_code_generate(a, TWOSTEP_CODE_MAX), 0);
	assert_int_equal(twostep_sms_code_generate(b, TWOSTEP_CODE_MAX), 0);
	assert_string_not_equal(a, b);
}

/*
 *	Code hash.
 */

static uint8_t const hash_key[32] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};

#define HASH_DN		"uid=alice,ou=people,dc=example,dc=org"

/*
 *	Computed with OpenSSL 3.0:
 *	printf '%s\0%s' 'uid=alice,ou=people,dc=example,dc=org' 123456 |
 *	    openssl dgst -sha256 -mac HMAC -macopt hexkey:000102...1f
 */
static uint8_t const hash_vector[TWOSTEP_CODE_HASH_LEN] = {
	0x47, 0x3c, 0x68, 0xec, 0x0a, 0x8c, 0x92, 0xae, 0x3b, 0x4a, 0x9b, 0xfe, 0x01, 0x10, 0x7b, 0xbc,
	0x30, 0xe0, 0x6b, 0xd1, 0x75, 0xa8, 0x6a, 0xcc, 0xb1, 0xc1, 0x83, 0x7a, 0xb7, 0xf7, 0x34, 0xb6,
};

static void test_hash_vector(void **state)
{
	uint8_t out[TWOSTEP_CODE_HASH_LEN];

	(void)state;

	assert_int_equal(twostep_sms_code_hash(out, hash_key, sizeof(hash_key), HASH_DN, "123456"), 0);
	assert_memory_equal(out, hash_vector, sizeof(out));
}

static void test_hash_inputs(void **state)
{
	uint8_t base[TWOSTEP_CODE_HASH_LEN], other[TWOSTEP_CODE_HASH_LEN];
	uint8_t key2[sizeof(hash_key)];

	(void)state;

	assert_int_equal(twostep_sms_code_hash(base, hash_key, sizeof(hash_key), HASH_DN, "123456"), 0);

	/* Same inputs, same hash. */
	assert_int_equal(twostep_sms_code_hash(other, hash_key, sizeof(hash_key), HASH_DN, "123456"), 0);
	assert_memory_equal(base, other, sizeof(base));

	/* Another user. */
	assert_int_equal(twostep_sms_code_hash(other, hash_key, sizeof(hash_key),
					       "uid=bob,ou=people,dc=example,dc=org", "123456"), 0);
	assert_memory_not_equal(base, other, sizeof(base));

	/* Another code. */
	assert_int_equal(twostep_sms_code_hash(other, hash_key, sizeof(hash_key), HASH_DN, "123457"), 0);
	assert_memory_not_equal(base, other, sizeof(base));

	/* Another key. */
	memcpy(key2, hash_key, sizeof(key2));
	key2[31] ^= 0x01;
	assert_int_equal(twostep_sms_code_hash(other, key2, sizeof(key2), HASH_DN, "123456"), 0);
	assert_memory_not_equal(base, other, sizeof(base));
}

/** The 0x00 between DN and code keeps "uid=a" + "1234" apart from "uid=a1" + "234". */
static void test_hash_separator(void **state)
{
	uint8_t a[TWOSTEP_CODE_HASH_LEN], b[TWOSTEP_CODE_HASH_LEN];

	(void)state;

	assert_int_equal(twostep_sms_code_hash(a, hash_key, sizeof(hash_key), "uid=a", "1234"), 0);
	assert_int_equal(twostep_sms_code_hash(b, hash_key, sizeof(hash_key), "uid=a1", "234"), 0);
	assert_memory_not_equal(a, b, sizeof(a));
}

static void test_hash_invalid(void **state)
{
	uint8_t out[TWOSTEP_CODE_HASH_LEN];

	(void)state;

	assert_int_equal(twostep_sms_code_hash(out, NULL, 32, HASH_DN, "123456"), -1);
	assert_int_equal(twostep_sms_code_hash(out, hash_key, 0, HASH_DN, "123456"), -1);
	assert_int_equal(twostep_sms_code_hash(out, hash_key, sizeof(hash_key), NULL, "123456"), -1);
	assert_int_equal(twostep_sms_code_hash(out, hash_key, sizeof(hash_key), HASH_DN, NULL), -1);
	assert_int_equal(twostep_sms_code_hash(NULL, hash_key, sizeof(hash_key), HASH_DN, "123456"), -1);
}

/*
 *	Templates.
 */

#define NONE	TWOSTEP_ENCODE_NONE
#define URL	TWOSTEP_ENCODE_URL
#define FORM	TWOSTEP_ENCODE_FORM
#define JSON	TWOSTEP_ENCODE_JSON

#define PHONE	"+15550100200"
#define CODE	"042917"

/** A message with every character that one of the encodings must change. */
#define HOSTILE	"Say \"hi\" \\ a&b=c+d 100% ok\nJ\xc3\xbcrgen {code}"

typedef struct {
	char const		*name;
	char const		*tmpl;
	twostep_encoding_t	encoding;
	char const		*phone;
	char const		*message;
	char const		*code;
	char const		*out;	//!< NULL when rendering must fail.
} template_case_t;

static template_case_t const template_cases[] = {
	/* Message text. */
	{ "message text",		"Your sign-in code is {code}.",	NONE,	NULL,	NULL,	CODE,
	  "Your sign-in code is 042917." },
	{ "none keeps hostile value",	"{message}",			NONE,	NULL,	HOSTILE, NULL,
	  HOSTILE },

	/* URL query. */
	{ "url, hostile message",	"https://sms.example/send?to={phone}&text={message}", URL, PHONE, HOSTILE, CODE,
	  "https://sms.example/send?to=%2B15550100200&text="
	  "Say%20%22hi%22%20%5C%20a%26b%3Dc%2Bd%20100%25%20ok%0AJ%C3%BCrgen%20%7Bcode%7D" },
	{ "url, unreserved kept",	"{message}",			URL,	NULL,	"AZaz09-._~", NULL,
	  "AZaz09-._~" },
	{ "url, reserved encoded",	"{message}",			URL,	NULL,	"!*'();:@$,/?#[]", NULL,
	  "%21%2A%27%28%29%3B%3A%40%24%2C%2F%3F%23%5B%5D" },
	{ "url, control and high bytes", "{message}",			URL,	NULL,	"\x01\x7f\xff", NULL,
	  "%01%7F%FF" },

	/* Form body. */
	{ "form, hostile message",	"to={phone}&text={message}",	FORM,	PHONE,	HOSTILE, CODE,
	  "to=%2B15550100200&text=Say+%22hi%22+%5C+a%26b%3Dc%2Bd+100%25+ok%0AJ%C3%BCrgen+%7Bcode%7D" },
	{ "form, plus and space",	"{message}",			FORM,	NULL,	"a+b c", NULL,
	  "a%2Bb+c" },

	/* JSON body. */
	{ "json, hostile message",	"{\"to\": \"{phone}\", \"text\": \"{message}\"}", JSON, PHONE, HOSTILE, CODE,
	  "{\"to\": \"+15550100200\", \"text\": "
	  "\"Say \\\"hi\\\" \\\\ a&b=c+d 100% ok\\nJ\xc3\xbcrgen {code}\"}" },
	{ "json, control bytes",	"\"{message}\"",		JSON,	NULL,	"\x01\x1f\t\r\b\f\x7f", NULL,
	  "\"\\u0001\\u001F\\t\\r\\b\\f\x7f\"" },
	{ "json, nested braces",	"{\"sms\": {\"to\": [\"{phone}\"], \"code\": \"{code}\"}}", JSON, PHONE, NULL, CODE,
	  "{\"sms\": {\"to\": [\"+15550100200\"], \"code\": \"042917\"}}" },

	/* Text that looks like a placeholder but is not one. */
	{ "empty braces",		"{}",				NONE,	PHONE,	NULL,	NULL,	"{}" },
	{ "space inside",		"{ phone}",			NONE,	PHONE,	NULL,	NULL,	"{ phone}" },
	{ "upper case",			"{PHONE}",			NONE,	PHONE,	NULL,	NULL,	"{PHONE}" },
	{ "unclosed",			"{phone",			NONE,	PHONE,	NULL,	NULL,	"{phone" },
	{ "unopened",			"phone}",			NONE,	PHONE,	NULL,	NULL,	"phone}" },
	{ "longer name",		"{codes}",			NONE,	NULL,	NULL,	CODE,	"{codes}" },
	{ "unknown name",		"{user}",			NONE,	NULL,	NULL,	NULL,	"{user}" },
	{ "stray braces",		"}{",				NONE,	NULL,	NULL,	NULL,	"}{" },
	{ "doubled braces",		"{{phone}}",			NONE,	PHONE,	NULL,	NULL,
	  "{+15550100200}" },
	{ "brace before placeholder",	"{{code}",			NONE,	NULL,	NULL,	CODE,	"{042917" },

	/* Values and placeholders. */
	{ "placeholder twice",		"{code}-{code}",		NONE,	NULL,	NULL,	CODE,	"042917-042917" },
	{ "all three",			"{phone} {message} {code}",	NONE,	PHONE,	"hi",	CODE,
	  "+15550100200 hi 042917" },
	{ "value not expanded",		"{message}",			NONE,	PHONE,	"{phone} {code}", CODE,
	  "{phone} {code}" },
	{ "empty value",		"[{message}]",			URL,	NULL,	"",	NULL,	"[]" },
	{ "empty template",		"",				JSON,	PHONE,	"hi",	CODE,	"" },
	{ "unused value may be NULL",	"no placeholders",		NONE,	NULL,	NULL,	NULL,
	  "no placeholders" },
	{ "missing phone",		"to={phone}",			URL,	NULL,	"hi",	CODE,	NULL },
	{ "missing message",		"{code} {message}",		NONE,	PHONE,	NULL,	CODE,	NULL },
	{ "missing code",		"{\"code\": \"{code}\"}",	JSON,	PHONE,	"hi",	NULL,	NULL },
	{ "invalid encoding",		"{code}",	(twostep_encoding_t)9,	NULL,	NULL,	CODE,	NULL },
};

static void test_template_table(void **state)
{
	size_t i;

	(void)state;

	for (i = 0; i < NUM(template_cases); i++) {
		template_case_t const	*c = &template_cases[i];
		char			out[512];
		ssize_t			ret;

		memset(out, 'X', sizeof(out));
		ret = twostep_template_render(out, sizeof(out), c->tmpl, c->encoding, c->phone, c->message, c->code);

		if (!c->out) {
			if (ret != -1 || out[0] != '\0') fail_msg("case \"%s\": got %zd, want -1 \"\"", c->name, ret);
			continue;
		}
		if (ret != (ssize_t)strlen(c->out) || strcmp(out, c->out) != 0) {
			fail_msg("case \"%s\": got %zd \"%s\", want %zu \"%s\"",
				 c->name, ret, ret >= 0 ? out : "", strlen(c->out), c->out);
		}
	}
}

/** Exactly enough room works. One byte less fails, empties the output and leaves no trace of the code. */
static void test_template_sizes(void **state)
{
	size_t i;

	(void)state;

	for (i = 0; i < NUM(template_cases); i++) {
		template_case_t const	*c = &template_cases[i];
		size_t			need;
		char			*out;
		ssize_t			ret;

		if (!c->out) continue;

		need = strlen(c->out) + 1;
		out = test_malloc(need);
		memset(out, 'X', need);
		ret = twostep_template_render(out, need, c->tmpl, c->encoding, c->phone, c->message, c->code);
		if (ret != (ssize_t)(need - 1) || strcmp(out, c->out) != 0) {
			fail_msg("case \"%s\": exact buffer of %zu bytes: got %zd", c->name, need, ret);
		}

		if (need > 1) {
			memset(out, 'X', need);
			ret = twostep_template_render(out, need - 1, c->tmpl, c->encoding,
						      c->phone, c->message, c->code);
			if (ret != -1 || out[0] != '\0') {
				fail_msg("case \"%s\": buffer of %zu bytes (one short): got %zd, out[0]=0x%02x",
					 c->name, need - 1, ret, (unsigned char)out[0]);
			}
			if (c->code && memmem(out, need - 1, c->code, strlen(c->code))) {
				fail_msg("case \"%s\": code left in the buffer after failure", c->name);
			}
		}
		test_free(out);
	}
}

static void test_template_degenerate(void **state)
{
	char out[16] = "abc";

	(void)state;

	assert_int_equal(twostep_template_render(out, 0, "{code}", NONE, NULL, NULL, CODE), -1);
	assert_string_equal(out, "abc");
	assert_int_equal(twostep_template_render(NULL, sizeof(out), "{code}", NONE, NULL, NULL, CODE), -1);
	assert_int_equal(twostep_template_render(out, sizeof(out), NULL, NONE, NULL, NULL, CODE), -1);
	assert_string_equal(out, "");

	/* Empty template into a one-byte buffer. */
	assert_int_equal(twostep_template_render(out, 1, "", NONE, NULL, NULL, NULL), 0);
	assert_string_equal(out, "");
}

/*
 *	Gateway response.
 */

typedef struct {
	char const	*name;
	long		status;
	char const	*body;
	size_t		body_len;
	char const	*must_contain;
	char const	*must_not_contain;
	bool		want;
} gateway_case_t;

/** A body literal and its length, NUL bytes inside included. */
#define BODY(_s)	_s, sizeof(_s) - 1

static gateway_case_t const gateway_cases[] = {
	/* Status only. */
	{ "199",			199,	BODY("{\"status\":\"ok\"}"),	NULL,	NULL,	false },
	{ "200",			200,	BODY("{\"status\":\"ok\"}"),	NULL,	NULL,	true },
	{ "204, empty body",		204,	BODY(""),			NULL,	NULL,	true },
	{ "299",			299,	BODY("{\"status\":\"ok\"}"),	NULL,	NULL,	true },
	{ "300",			300,	BODY("{\"status\":\"ok\"}"),	NULL,	NULL,	false },
	{ "500",			500,	BODY("{\"status\":\"ok\"}"),	NULL,	NULL,	false },
	{ "0, no response",		0,	BODY(""),			NULL,	NULL,	false },
	{ "negative",			-1,	BODY(""),			NULL,	NULL,	false },

	/* Must contain. */
	{ "must, present",		200,	BODY("{\"status\":\"ok\"}"),	"\"status\":\"ok\"", NULL, true },
	{ "must, absent",		200,	BODY("{\"status\":\"queued\"}"), "\"status\":\"ok\"", NULL, false },
	{ "must, at start",		200,	BODY("OK 12345"),		"OK",	NULL,	true },
	{ "must, at end",		200,	BODY("id=12345 OK"),		"OK",	NULL,	true },
	{ "must, case differs",		200,	BODY("ok"),			"OK",	NULL,	false },
	{ "must, longer than body",	200,	BODY("OK"),			"OK 1",	NULL,	false },
	{ "must, cut by body_len",	200,	"OK", 1,			"OK",	NULL,	false },
	{ "must, empty body",		200,	BODY(""),			"OK",	NULL,	false },
	{ "must, 500 with pattern",	500,	BODY("OK"),			"OK",	NULL,	false },
	{ "must, regex characters",	200,	BODY("sent: a.*b"),		"a.*b",	NULL,	true },
	{ "must, regex not applied",	200,	BODY("sent: axxb"),		"a.*b",	NULL,	false },

	/* Must not contain. */
	{ "must not, present",		200,	BODY("{\"error\":\"quota\"}"),	NULL,	"error", false },
	{ "must not, absent",		200,	BODY("{\"status\":\"ok\"}"),	NULL,	"error", true },
	{ "must not, empty body",	200,	BODY(""),			NULL,	"error", true },

	/* Both. */
	{ "both pass",			200,	BODY("{\"status\":\"ok\"}"),	"ok",	"error", true },
	{ "both present",		200,	BODY("ok, error"),		"ok",	"error", false },
	{ "neither present",		200,	BODY("queued"),			"ok",	"error", false },

	/* NUL bytes in the body. */
	{ "NUL before must",		200,	BODY("x\0{\"status\":\"ok\"}"),	"\"status\":\"ok\"", NULL, true },
	{ "NUL before must not",	200,	BODY("x\0{\"error\":\"quota\"}"), NULL,	"error", false },
	{ "NUL then both",		200,	BODY("\0\0ok\0error"),		"ok",	"error", false },

	/* Empty patterns are no patterns. */
	{ "empty must",			200,	BODY("anything"),		"",	NULL,	true },
	{ "empty must not",		200,	BODY("anything"),		NULL,	"",	true },
};

static void test_gateway_table(void **state)
{
	size_t i;

	(void)state;

	for (i = 0; i < NUM(gateway_cases); i++) {
		gateway_case_t const	*c = &gateway_cases[i];
		char			*body;
		bool			got;

		/* A copy of exactly body_len bytes, so a read past the end is caught. */
		body = test_malloc(c->body_len ? c->body_len : 1);
		memcpy(body, c->body, c->body_len);
		got = twostep_gateway_success(c->status, body, c->body_len, c->must_contain, c->must_not_contain);
		test_free(body);

		if (got != c->want) fail_msg("case \"%s\": got %d, want %d", c->name, got, c->want);
	}
}

static void test_gateway_null_body(void **state)
{
	(void)state;

	assert_true(twostep_gateway_success(200, NULL, 0, NULL, NULL));
	assert_false(twostep_gateway_success(200, NULL, 0, "OK", NULL));
	assert_true(twostep_gateway_success(200, NULL, 0, NULL, "error"));
	assert_false(twostep_gateway_success(200, NULL, 10, "OK", NULL));
}

int main(void)
{
	struct CMUnitTest const tests[] = {
		cmocka_unit_test(test_normalise_table),
		cmocka_unit_test(test_normalise_sizes),
		cmocka_unit_test(test_normalise_degenerate),
		cmocka_unit_test(test_cc_len_table),
		cmocka_unit_test(test_cc_len_every_prefix),
		cmocka_unit_test(test_country_allowed_table),
		cmocka_unit_test(test_mask_table),
		cmocka_unit_test(test_mask_sizes),
		cmocka_unit_test(test_code_lengths),
		cmocka_unit_test(test_code_out_of_range),
		cmocka_unit_test(test_code_distribution),
		cmocka_unit_test(test_code_draws_differ),
		cmocka_unit_test(test_hash_vector),
		cmocka_unit_test(test_hash_inputs),
		cmocka_unit_test(test_hash_separator),
		cmocka_unit_test(test_hash_invalid),
		cmocka_unit_test(test_template_table),
		cmocka_unit_test(test_template_sizes),
		cmocka_unit_test(test_template_degenerate),
		cmocka_unit_test(test_gateway_table),
		cmocka_unit_test(test_gateway_null_body),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
