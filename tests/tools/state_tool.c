/*
 * state_tool.c: mint and check State tokens from the command line, for tests.
 *
 *   twostep-state create KEYFILE USER DN SEED_BASE32 ISSUED_UNIX_TIME
 *	Prints the token as 0x followed by lowercase hex (the form radclient
 *	takes for State). SEED_BASE32 may be "" for a token without a seed.
 *	The method is always TOTP.
 *
 *   twostep-state verify KEYFILE HEX USER NOW LIFETIME
 *	Prints the result name: OK, NOT_OURS, MALFORMED, UNKNOWN_KEY, FORGED,
 *	EXPIRED, FUTURE, WRONG_USER, TOO_LONG or ERROR. HEX may carry a 0x
 *	prefix. NOW may be "now" for the current time. On OK the claims follow
 *	on further lines (method, issued, user, dn, seed_len), for debugging.
 *
 * Exit status: 0 when created or verified OK, 1 when verify gives another
 * result or create fails, 2 on a usage or input error.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "otp.h"
#include "state.h"

static char const *rcode_name(twostep_state_rcode_t rcode)
{
	switch (rcode) {
	case TWOSTEP_STATE_OK:		return "OK";
	case TWOSTEP_STATE_NOT_OURS:	return "NOT_OURS";
	case TWOSTEP_STATE_MALFORMED:	return "MALFORMED";
	case TWOSTEP_STATE_UNKNOWN_KEY:	return "UNKNOWN_KEY";
	case TWOSTEP_STATE_FORGED:	return "FORGED";
	case TWOSTEP_STATE_EXPIRED:	return "EXPIRED";
	case TWOSTEP_STATE_FUTURE:	return "FUTURE";
	case TWOSTEP_STATE_WRONG_USER:	return "WRONG_USER";
	case TWOSTEP_STATE_TOO_LONG:	return "TOO_LONG";
	case TWOSTEP_STATE_ERROR:	return "ERROR";
	}
	return "UNKNOWN_RESULT";
}

static void usage(void)
{
	fprintf(stderr,
		"usage: twostep-state create KEYFILE USER DN SEED_BASE32 ISSUED_UNIX_TIME\n"
		"       twostep-state verify KEYFILE HEX USER NOW LIFETIME\n");
	exit(2);
}

static int parse_int64(int64_t *out, char const *s, char const *what)
{
	char		*end;
	long long	v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (!*s || *end || errno) {
		fprintf(stderr, "twostep-state: %s: not a decimal integer: \"%s\"\n", what, s);
		return -1;
	}
	*out = (int64_t)v;
	return 0;
}

static int load_key(twostep_state_key_t *key, char const *path)
{
	char err[512];

	if (twostep_state_key_load(key, path, err, sizeof(err)) < 0) {
		fprintf(stderr, "twostep-state: %s\n", err);
		return -1;
	}
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

static int do_create(int argc, char **argv)
{
	twostep_state_key_t	key;
	twostep_state_claims_t	claims;
	twostep_state_rcode_t	rc;
	uint8_t			tok[TWOSTEP_STATE_MAX_LEN];
	size_t			len = 0, i;

	if (argc != 7) usage();

	memset(&claims, 0, sizeof(claims));
	claims.method = TWOSTEP_METHOD_TOTP;

	if (strlen(argv[3]) > TWOSTEP_STATE_NAME_MAX || strlen(argv[4]) > TWOSTEP_STATE_NAME_MAX) {
		fprintf(stderr, "twostep-state: USER and DN must be at most %d bytes\n", TWOSTEP_STATE_NAME_MAX);
		return 2;
	}
	strcpy(claims.user, argv[3]);
	strcpy(claims.dn, argv[4]);

	if (argv[5][0]) {
		claims.seed_len = sizeof(claims.seed);
		if (twostep_base32_decode(claims.seed, &claims.seed_len, argv[5]) < 0) {
			fprintf(stderr, "twostep-state: SEED_BASE32 is not valid base32, or longer than %d bytes\n",
				TWOSTEP_SEED_MAX);
			return 2;
		}
	}
	if (parse_int64(&claims.issued, argv[6], "ISSUED_UNIX_TIME") < 0) return 2;
	if (load_key(&key, argv[2]) < 0) return 2;

	rc = twostep_state_create(tok, &len, &key, &claims);
	twostep_wipe(&key, sizeof(key));
	twostep_wipe(&claims, sizeof(claims));
	if (rc != TWOSTEP_STATE_OK) {
		fprintf(stderr, "twostep-state: cannot create token: %s\n", twostep_state_strerror(rc));
		printf("%s\n", rcode_name(rc));
		return 1;
	}

	printf("0x");
	for (i = 0; i < len; i++) printf("%02x", tok[i]);
	printf("\n");
	return 0;
}

static int do_verify(int argc, char **argv)
{
	twostep_state_key_t	key;
	twostep_state_claims_t	claims;
	twostep_state_rcode_t	rc;
	uint8_t			tok[1024];
	char const		*hex;
	size_t			hexlen, len, i;
	int64_t			now, lifetime;

	if (argc != 7) usage();

	hex = argv[3];
	if (hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X')) hex += 2;
	hexlen = strlen(hex);
	if (hexlen % 2 || hexlen / 2 > sizeof(tok)) {
		fprintf(stderr, "twostep-state: HEX must be an even number of hex digits, at most %zu bytes\n",
			sizeof(tok));
		return 2;
	}
	len = hexlen / 2;
	for (i = 0; i < len; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			fprintf(stderr, "twostep-state: HEX contains a non-hex character\n");
			return 2;
		}
		tok[i] = (uint8_t)((hi << 4) | lo);
	}

	if (strcmp(argv[5], "now") == 0) {
		now = (int64_t)time(NULL);
	} else if (parse_int64(&now, argv[5], "NOW") < 0) {
		return 2;
	}
	if (parse_int64(&lifetime, argv[6], "LIFETIME") < 0) return 2;
	if (lifetime < 0 || lifetime > UINT_MAX) {
		fprintf(stderr, "twostep-state: LIFETIME out of range\n");
		return 2;
	}
	if (load_key(&key, argv[2]) < 0) return 2;

	rc = twostep_state_verify(&claims, tok, len, &key, 1, now, (unsigned int)lifetime, argv[4]);
	twostep_wipe(&key, sizeof(key));

	printf("%s\n", rcode_name(rc));
	if (rc == TWOSTEP_STATE_OK) {
		printf("method=%d\nissued=%" PRId64 "\nuser=%s\ndn=%s\nseed_len=%zu\n",
		       (int)claims.method, claims.issued, claims.user, claims.dn, claims.seed_len);
	}
	twostep_wipe(&claims, sizeof(claims));

	return rc == TWOSTEP_STATE_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc < 2) usage();
	if (twostep_otp_init() < 0) {
		fprintf(stderr, "twostep-state: liboath initialisation failed\n");
		return 2;
	}

	if (strcmp(argv[1], "create") == 0) return do_create(argc, argv);
	if (strcmp(argv[1], "verify") == 0) return do_verify(argc, argv);
	usage();
	return 2;
}
