/*
 * loadgen: a RADIUS load generator for whole two-step sign-ins.
 *
 * Each sign-in sends an Access-Request with User-Name, User-Password
 * (hidden as RFC 2865 section 5.2 describes) and Message-Authenticator
 * (RFC 3579). In two-round mode an Access-Challenge must come back. Its State
 * goes into a second Access-Request, whose User-Password is the user's
 * current TOTP code (RFC 6238, HMAC-SHA1, 30 s, 6 digits). In one-round mode
 * an Access-Accept, or an Access-Challenge with its State left unanswered,
 * completes the sign-in.
 *
 * Up to --concurrency sign-ins are outstanding at once, over non-blocking UDP
 * sockets driven by poll(). Sign-in slot i uses socket i / 128 and the
 * RADIUS identifiers 2 * (i % 128) and the next one, in turn, so identifiers
 * never collide. radiusd sends a reply before it has finished the request,
 * and a new request with the same identifier right after the reply can find
 * the old one still running ("Received conflicting packet"); alternating
 * the two identifiers avoids that. Every reply must
 * pass the Response Authenticator check, and its Message-Authenticator check
 * when it has one; a reply that fails either is counted and dropped.
 *
 * The run stops by itself: after --max-logins sign-ins have started and
 * ended, or --max-seconds after the start, whichever comes first. Requests
 * still outstanding then wait at most --timeout-ms more.
 *
 * Users come from a file ("name password base32-seed" per line) or from a
 * printf pattern and a count. With a pattern, user i is
 * sprintf(pattern, i), the password is sprintf(password_pattern, i), and
 * the seed is SHA-1("rlm_twostep bench seed:" + name), 20 bytes, which is
 * what tests/bench/gen-users.py stores in the directory.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <liboath/oath.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define RADIUS_HEADER_LEN	20
#define RADIUS_MAX_LEN		4096
#define AUTH_VECTOR_LEN		16

#define CODE_ACCESS_REQUEST	1
#define CODE_ACCESS_ACCEPT	2
#define CODE_ACCESS_REJECT	3
#define CODE_ACCESS_CHALLENGE	11

#define ATTR_USER_NAME		1
#define ATTR_USER_PASSWORD	2
#define ATTR_STATE		24
#define ATTR_MESSAGE_AUTHENTICATOR 80

#define SEED_PREFIX		"rlm_twostep bench seed:"
#define SEED_LEN		20
#define MAX_NAME_LEN		64
#define MAX_PASSWORD_LEN	128
#define MAX_STATE_LEN		253
#define SLOTS_PER_SOCKET	128

struct user {
	char name[MAX_NAME_LEN];
	char password[MAX_PASSWORD_LEN];
	unsigned char seed[SEED_LEN * 2];
	size_t seed_len;
};

enum slot_phase { SLOT_IDLE, SLOT_ROUND1, SLOT_ROUND2 };

/* One outstanding sign-in. */
struct slot {
	enum slot_phase phase;
	int socket_index;
	uint8_t id;
	size_t user_index;
	unsigned retransmits_left;
	uint64_t sent_us;		/* first transmission of this round */
	uint64_t deadline_us;		/* next retransmit or timeout */
	uint8_t vector[AUTH_VECTOR_LEN];
	uint8_t packet[RADIUS_MAX_LEN];
	size_t packet_len;
};

/* Latencies of one round, in microseconds. */
struct samples {
	uint32_t *values;
	size_t count;
	size_t capacity;
};

struct round_stats {
	uint64_t sent;
	uint64_t accept;
	uint64_t reject;
	uint64_t challenge;
	uint64_t timeout;
	uint64_t retransmits;
	struct samples latency;
};

struct options {
	const char *server;
	const char *secret;
	unsigned concurrency;
	uint64_t max_logins;
	double max_seconds;
	double rate;			/* sign-ins started per second, 0 = no limit */
	const char *users_file;
	const char *user_pattern;
	const char *password_pattern;
	size_t user_count;
	size_t first_user;
	int rounds;			/* 1 or 2 */
	unsigned timeout_ms;
	unsigned retries;
};

static struct options opt = {
	.server = "127.0.0.1:1812",
	.secret = "testing123",
	.concurrency = 32,
	.max_logins = 10000,
	.max_seconds = 10,
	.user_pattern = "u%06zu",
	.password_pattern = "pw-%06zu",
	.user_count = 100000,
	.rounds = 2,
	.timeout_ms = 3000,
	.retries = 0,
};

static struct user *users;
static size_t user_total;
static int *sockets;
static unsigned socket_count;
static struct slot *slots;
static struct round_stats stats[2];
static uint64_t bad_replies;		/* failed authenticator checks, unknown ids */
static uint64_t late_replies;		/* replies to requests already given up */
static uint64_t unexpected_replies;	/* a code the round does not expect */
static uint64_t completed;
static uint64_t completed_in_window;	/* before sign-ins stopped being started */
static uint64_t window_end_us;
static uint64_t failed;
static uint64_t started;
static const EVP_MD *md5;

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void die(const char *message)
{
	fprintf(stderr, "loadgen: %s\n", message);
	exit(2);
}

static void samples_add(struct samples *samples, uint32_t value)
{
	if (samples->count == samples->capacity) {
		size_t capacity = samples->capacity ? samples->capacity * 2 : 65536;
		uint32_t *values = realloc(samples->values, capacity * sizeof(*values));

		if (!values) die("out of memory for latency samples");
		samples->values = values;
		samples->capacity = capacity;
	}
	samples->values[samples->count++] = value;
}

static int compare_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Return the nearest-rank percentile of sorted samples, in milliseconds. */
static double percentile_ms(const struct samples *samples, double p)
{
	size_t rank;

	if (samples->count == 0) return 0;
	rank = (size_t)(p / 100.0 * (double)samples->count + 0.999999);
	if (rank < 1) rank = 1;
	if (rank > samples->count) rank = samples->count;
	return samples->values[rank - 1] / 1000.0;
}

static void md5_digest(const void *a, size_t a_len, const void *b, size_t b_len, uint8_t out[16])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!ctx || !EVP_DigestInit_ex(ctx, md5, NULL) || !EVP_DigestUpdate(ctx, a, a_len) ||
	    !EVP_DigestUpdate(ctx, b, b_len) || !EVP_DigestFinal_ex(ctx, out, NULL))
		die("MD5 failed in OpenSSL");
	EVP_MD_CTX_free(ctx);
}

static void seed_from_name(const char *name, struct user *user)
{
	char input[sizeof(SEED_PREFIX) + MAX_NAME_LEN];
	unsigned int len = 0;
	int n = snprintf(input, sizeof(input), "%s%s", SEED_PREFIX, name);

	if (!EVP_Digest(input, (size_t)n, user->seed, &len, EVP_sha1(), NULL) || len != SEED_LEN)
		die("SHA-1 failed in OpenSSL");
	user->seed_len = len;
}

static void load_users_from_pattern(void)
{
	user_total = opt.user_count;
	users = calloc(user_total, sizeof(*users));
	if (!users) die("out of memory for users");

	for (size_t i = 0; i < user_total; i++) {
		int n = snprintf(users[i].name, sizeof(users[i].name), opt.user_pattern, i);
		int m = snprintf(users[i].password, sizeof(users[i].password), opt.password_pattern, i);

		if (n <= 0 || (size_t)n >= sizeof(users[i].name) || m <= 0 ||
		    (size_t)m >= sizeof(users[i].password))
			die("--user-pattern or --password-pattern gives an empty or too long value");
		seed_from_name(users[i].name, &users[i]);
	}
}

static void load_users_from_file(const char *path)
{
	FILE *file = fopen(path, "r");
	char line[1024];
	size_t capacity = 0;

	if (!file) {
		fprintf(stderr, "loadgen: cannot open users file %s: %s\n", path, strerror(errno));
		exit(2);
	}
	while (fgets(line, sizeof(line), file)) {
		char name[MAX_NAME_LEN], password[MAX_PASSWORD_LEN], seed[128];
		char *decoded = NULL;
		size_t decoded_len = 0;

		if (line[0] == '#' || line[0] == '\n') continue;
		if (sscanf(line, "%63s %127s %127s", name, password, seed) != 3) {
			fprintf(stderr, "loadgen: invalid line in %s, expected 'name password base32-seed': %s",
				path, line);
			exit(2);
		}
		if (user_total == capacity) {
			capacity = capacity ? capacity * 2 : 1024;
			users = realloc(users, capacity * sizeof(*users));
			if (!users) die("out of memory for users");
		}
		struct user *user = &users[user_total++];

		memset(user, 0, sizeof(*user));
		strcpy(user->name, name);
		strcpy(user->password, password);
		if (oath_base32_decode(seed, strlen(seed), &decoded, &decoded_len) != OATH_OK ||
		    decoded_len == 0 || decoded_len > sizeof(user->seed)) {
			fprintf(stderr, "loadgen: invalid base32 seed for user %s in %s\n", name, path);
			exit(2);
		}
		memcpy(user->seed, decoded, decoded_len);
		user->seed_len = decoded_len;
		free(decoded);
	}
	fclose(file);
	if (user_total == 0) die("the users file has no users");
}

static size_t put_attr(uint8_t *packet, size_t offset, uint8_t type, const void *value, size_t len)
{
	if (len > 253 || offset + 2 + len > RADIUS_MAX_LEN) die("attribute does not fit in the packet");
	packet[offset] = type;
	packet[offset + 1] = (uint8_t)(len + 2);
	memcpy(packet + offset + 2, value, len);
	return offset + 2 + len;
}

/* Hide a password as RFC 2865 section 5.2 describes. */
static size_t hide_password(const char *password, const uint8_t vector[AUTH_VECTOR_LEN], uint8_t *out)
{
	size_t len = strlen(password);
	size_t padded = len == 0 ? 16 : (len + 15) / 16 * 16;
	const uint8_t *previous = vector;
	size_t secret_len = strlen(opt.secret);

	if (padded > 128) die("password longer than 128 bytes");
	memset(out, 0, padded);
	memcpy(out, password, len);
	for (size_t block = 0; block < padded; block += 16) {
		uint8_t digest[16];

		md5_digest(opt.secret, secret_len, previous, AUTH_VECTOR_LEN, digest);
		for (int i = 0; i < 16; i++) out[block + i] ^= digest[i];
		previous = out + block;
	}
	return padded;
}

static void build_request(struct slot *slot, const char *password, const uint8_t *state, size_t state_len)
{
	uint8_t *packet = slot->packet;
	uint8_t hidden[128];
	uint8_t zero[16] = { 0 };
	size_t offset = RADIUS_HEADER_LEN, ma_offset, hidden_len;
	unsigned int mac_len = 0;
	const struct user *user = &users[slot->user_index];

	if (RAND_bytes(slot->vector, AUTH_VECTOR_LEN) != 1) die("RAND_bytes failed");
	slot->id ^= 1;
	packet[0] = CODE_ACCESS_REQUEST;
	packet[1] = slot->id;
	memcpy(packet + 4, slot->vector, AUTH_VECTOR_LEN);

	ma_offset = offset;
	offset = put_attr(packet, offset, ATTR_MESSAGE_AUTHENTICATOR, zero, sizeof(zero));
	offset = put_attr(packet, offset, ATTR_USER_NAME, user->name, strlen(user->name));
	hidden_len = hide_password(password, slot->vector, hidden);
	offset = put_attr(packet, offset, ATTR_USER_PASSWORD, hidden, hidden_len);
	if (state) offset = put_attr(packet, offset, ATTR_STATE, state, state_len);
	packet[2] = (uint8_t)(offset >> 8);
	packet[3] = (uint8_t)offset;

	if (!HMAC(md5, opt.secret, (int)strlen(opt.secret), packet, offset, packet + ma_offset + 2, &mac_len))
		die("HMAC-MD5 failed in OpenSSL");
	slot->packet_len = offset;
}

static void transmit(struct slot *slot)
{
	ssize_t n = send(sockets[slot->socket_index], slot->packet, slot->packet_len, 0);

	/* A full socket buffer or a refused port counts as a lost packet: the
	 * timeout handles it like any other loss. */
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNREFUSED && errno != ENOBUFS) {
		fprintf(stderr, "loadgen: send to %s failed: %s\n", opt.server, strerror(errno));
		exit(2);
	}
}

static void send_round(struct slot *slot, int round, const uint8_t *state, size_t state_len, uint64_t now)
{
	const struct user *user = &users[slot->user_index];
	char code[16];

	if (round == 1) {
		build_request(slot, user->password, NULL, 0);
		slot->phase = SLOT_ROUND1;
	} else {
		int rc = oath_totp_generate((const char *)user->seed, user->seed_len, time(NULL),
					    OATH_TOTP_DEFAULT_TIME_STEP_SIZE, OATH_TOTP_DEFAULT_START_TIME,
					    6, code);

		if (rc != OATH_OK) die("oath_totp_generate failed");
		build_request(slot, code, state, state_len);
		slot->phase = SLOT_ROUND2;
	}
	slot->retransmits_left = opt.retries;
	slot->sent_us = now;
	slot->deadline_us = now + (uint64_t)opt.timeout_ms * 1000u;
	stats[round - 1].sent++;
	transmit(slot);
}

static void start_login(struct slot *slot, uint64_t now)
{
	slot->user_index = (size_t)((opt.first_user + started) % user_total);
	started++;
	send_round(slot, 1, NULL, 0, now);
}

/* Check the Response Authenticator and, when present, the
 * Message-Authenticator of a reply to SLOT's current request. */
static bool reply_is_authentic(const struct slot *slot, uint8_t *reply, size_t len)
{
	uint8_t expected[16], saved[16];
	size_t secret_len = strlen(opt.secret);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok;

	memcpy(saved, reply + 4, 16);
	memcpy(reply + 4, slot->vector, 16);
	ok = ctx && EVP_DigestInit_ex(ctx, md5, NULL) && EVP_DigestUpdate(ctx, reply, len) &&
	     EVP_DigestUpdate(ctx, opt.secret, secret_len) && EVP_DigestFinal_ex(ctx, expected, NULL);
	EVP_MD_CTX_free(ctx);
	if (!ok || CRYPTO_memcmp(expected, saved, 16) != 0) {
		memcpy(reply + 4, saved, 16);
		return false;
	}

	/* The Message-Authenticator is computed with the request's vector in
	 * the authenticator field and its own value zeroed. */
	for (size_t offset = RADIUS_HEADER_LEN; offset + 2 <= len;) {
		uint8_t attr_len = reply[offset + 1];

		if (attr_len < 2 || offset + attr_len > len) break;
		if (reply[offset] == ATTR_MESSAGE_AUTHENTICATOR && attr_len == 18) {
			uint8_t received[16], mac[EVP_MAX_MD_SIZE];
			unsigned int mac_len = 0;

			memcpy(received, reply + offset + 2, 16);
			memset(reply + offset + 2, 0, 16);
			ok = HMAC(md5, opt.secret, (int)secret_len, reply, len, mac, &mac_len) &&
			     CRYPTO_memcmp(mac, received, 16) == 0;
			memcpy(reply + offset + 2, received, 16);
			break;
		}
		offset += attr_len;
	}
	memcpy(reply + 4, saved, 16);
	return ok;
}

static void finish_login(struct slot *slot, bool success)
{
	if (success) {
		completed++;
		if (now_us() < window_end_us) completed_in_window++;
	} else
		failed++;
	slot->phase = SLOT_IDLE;
}

static void handle_reply(int socket_index, uint8_t *reply, size_t len, uint64_t now)
{
	size_t declared, slot_index;
	struct slot *slot;
	struct round_stats *round;
	const uint8_t *state = NULL;
	size_t state_len = 0;

	if (len < RADIUS_HEADER_LEN) { bad_replies++; return; }
	declared = (size_t)reply[2] << 8 | reply[3];
	if (declared < RADIUS_HEADER_LEN || declared > len) { bad_replies++; return; }
	len = declared;

	slot_index = (size_t)socket_index * SLOTS_PER_SOCKET + reply[1] / 2u;
	if (slot_index >= opt.concurrency) { bad_replies++; return; }
	slot = &slots[slot_index];
	if (slot->phase == SLOT_IDLE || slot->id != reply[1]) { late_replies++; return; }
	if (!reply_is_authentic(slot, reply, len)) {
		/* Most often a late reply to an earlier request of this slot. */
		late_replies++;
		return;
	}

	round = &stats[slot->phase == SLOT_ROUND1 ? 0 : 1];
	samples_add(&round->latency, (uint32_t)(now - slot->sent_us));

	for (size_t offset = RADIUS_HEADER_LEN; offset + 2 <= len;) {
		uint8_t attr_len = reply[offset + 1];

		if (attr_len < 2 || offset + attr_len > len) break;
		if (reply[offset] == ATTR_STATE) {
			state = reply + offset + 2;
			state_len = attr_len - 2u;
		}
		offset += attr_len;
	}

	switch (reply[0]) {
	case CODE_ACCESS_ACCEPT:
		round->accept++;
		if (slot->phase == SLOT_ROUND1 && opt.rounds == 2) unexpected_replies++;
		finish_login(slot, slot->phase == SLOT_ROUND2 || opt.rounds == 1);
		break;
	case CODE_ACCESS_REJECT:
		round->reject++;
		finish_login(slot, false);
		break;
	case CODE_ACCESS_CHALLENGE:
		round->challenge++;
		if (slot->phase == SLOT_ROUND1 && opt.rounds == 2 && state) {
			uint8_t copy[MAX_STATE_LEN];

			memcpy(copy, state, state_len);
			send_round(slot, 2, copy, state_len, now);
		} else if (slot->phase == SLOT_ROUND1 && opt.rounds == 1) {
			/* One-round mode against a two-step server: round 1
			 * passed, and the challenge is not answered. */
			finish_login(slot, true);
		} else {
			unexpected_replies++;
			finish_login(slot, false);
		}
		break;
	default:
		unexpected_replies++;
		finish_login(slot, false);
		break;
	}
}

static void check_deadlines(uint64_t now)
{
	for (unsigned i = 0; i < opt.concurrency; i++) {
		struct slot *slot = &slots[i];
		struct round_stats *round;

		if (slot->phase == SLOT_IDLE || now < slot->deadline_us) continue;
		round = &stats[slot->phase == SLOT_ROUND1 ? 0 : 1];
		if (slot->retransmits_left > 0) {
			/* The same packet again, so radiusd resends its cached
			 * reply if the first one was lost. */
			slot->retransmits_left--;
			slot->deadline_us = now + (uint64_t)opt.timeout_ms * 1000u;
			round->retransmits++;
			transmit(slot);
			continue;
		}
		round->timeout++;
		finish_login(slot, false);
	}
}

static void open_sockets(void)
{
	char host[64];
	const char *colon = strrchr(opt.server, ':');
	struct sockaddr_in address = { .sin_family = AF_INET };
	long port;

	if (!colon || (size_t)(colon - opt.server) >= sizeof(host)) die("--server must be IPV4:PORT");
	memcpy(host, opt.server, (size_t)(colon - opt.server));
	host[colon - opt.server] = '\0';
	port = strtol(colon + 1, NULL, 10);
	if (inet_pton(AF_INET, host, &address.sin_addr) != 1 || port < 1 || port > 65535)
		die("--server must be IPV4:PORT, such as 127.0.0.1:1812");
	address.sin_port = htons((uint16_t)port);

	socket_count = (opt.concurrency + SLOTS_PER_SOCKET - 1) / SLOTS_PER_SOCKET;
	sockets = calloc(socket_count, sizeof(*sockets));
	if (!sockets) die("out of memory for sockets");
	for (unsigned i = 0; i < socket_count; i++) {
		int buffer = 4 * 1024 * 1024;

		sockets[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (sockets[i] < 0) die("socket() failed");
		setsockopt(sockets[i], SOL_SOCKET, SO_RCVBUF, &buffer, sizeof(buffer));
		if (connect(sockets[i], (struct sockaddr *)&address, sizeof(address)) != 0)
			die("connect() of the UDP socket failed");
	}
}

static void print_round(const char *name, struct round_stats *round)
{
	qsort(round->latency.values, round->latency.count, sizeof(uint32_t), compare_u32);
	printf("%s: sent=%" PRIu64 " accept=%" PRIu64 " challenge=%" PRIu64 " reject=%" PRIu64
	       " timeout=%" PRIu64 " retransmits=%" PRIu64 " p50_ms=%.3f p95_ms=%.3f p99_ms=%.3f\n",
	       name, round->sent, round->accept, round->challenge, round->reject, round->timeout,
	       round->retransmits, percentile_ms(&round->latency, 50), percentile_ms(&round->latency, 95),
	       percentile_ms(&round->latency, 99));
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: loadgen [options]\n"
		"  --server IPV4:PORT        RADIUS server (default 127.0.0.1:1812)\n"
		"  --secret SECRET           shared secret (default testing123)\n"
		"  --rounds 1|2              1: send round 1 only, and count Access-Accept or\n"
		"                            Access-Challenge as success; 2: answer the\n"
		"                            Access-Challenge with the TOTP code (default 2)\n"
		"  --concurrency N           sign-ins outstanding at once (default 32)\n"
		"  --max-logins N            sign-ins to start, at most (default 10000)\n"
		"  --max-seconds S           stop starting sign-ins after S seconds (default 10)\n"
		"  --rate R                  start at most R sign-ins per second (default: no limit)\n"
		"  --users-file FILE         users, one 'name password base32-seed' per line\n"
		"  --user-pattern FMT        printf format of user i's name (default u%%06zu)\n"
		"  --password-pattern FMT    printf format of user i's password (default pw-%%06zu)\n"
		"  --user-count N            users in the pattern set, indexes 0..N-1 (default 100000)\n"
		"  --first-user I            start at user I of the set, then go on in order and\n"
		"                            wrap around (default 0)\n"
		"  --timeout-ms MS           wait for a reply, per transmission (default 3000)\n"
		"  --retries N               retransmissions after a timeout (default 0)\n"
		"Output: one 'round1:' and one 'round2:' line, then 'result:' with\n"
		"logins_per_s, completed, failed and the reply anomalies.\n");
}

static double parse_number(const char *name, const char *value, double min, double max)
{
	char *end;
	double number = strtod(value, &end);

	if (*value == '\0' || *end != '\0' || number < min || number > max) {
		fprintf(stderr, "loadgen: invalid %s '%s': expected a number in %g..%g\n", name, value, min, max);
		exit(2);
	}
	return number;
}

static void parse_options(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "server", required_argument, NULL, 's' },
		{ "secret", required_argument, NULL, 'S' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "max-logins", required_argument, NULL, 'n' },
		{ "max-seconds", required_argument, NULL, 't' },
		{ "rate", required_argument, NULL, 'R' },
		{ "users-file", required_argument, NULL, 'f' },
		{ "user-pattern", required_argument, NULL, 'u' },
		{ "password-pattern", required_argument, NULL, 'p' },
		{ "user-count", required_argument, NULL, 'N' },
		{ "first-user", required_argument, NULL, 'F' },
		{ "timeout-ms", required_argument, NULL, 'T' },
		{ "retries", required_argument, NULL, 'x' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		switch (c) {
		case 's': opt.server = optarg; break;
		case 'S': opt.secret = optarg; break;
		case 'r': opt.rounds = (int)parse_number("--rounds", optarg, 1, 2); break;
		case 'c': opt.concurrency = (unsigned)parse_number("--concurrency", optarg, 1, 65536); break;
		case 'n': opt.max_logins = (uint64_t)parse_number("--max-logins", optarg, 1, 1e12); break;
		case 't': opt.max_seconds = parse_number("--max-seconds", optarg, 0.1, 86400); break;
		case 'R': opt.rate = parse_number("--rate", optarg, 0, 1e7); break;
		case 'f': opt.users_file = optarg; break;
		case 'u': opt.user_pattern = optarg; break;
		case 'p': opt.password_pattern = optarg; break;
		case 'N': opt.user_count = (size_t)parse_number("--user-count", optarg, 1, 1e8); break;
		case 'F': opt.first_user = (size_t)parse_number("--first-user", optarg, 0, 1e9); break;
		case 'T': opt.timeout_ms = (unsigned)parse_number("--timeout-ms", optarg, 1, 60000); break;
		case 'x': opt.retries = (unsigned)parse_number("--retries", optarg, 0, 10); break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind != argc) {
		usage(stderr);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	uint64_t start, stop_starting, hard_stop, last_scan = 0, now;
	struct pollfd *fds;
	bool stopped_early = false;

	parse_options(argc, argv);
	if (oath_init() != OATH_OK) die("oath_init failed");
	md5 = EVP_md5();
	if (opt.users_file)
		load_users_from_file(opt.users_file);
	else
		load_users_from_pattern();
	if (opt.first_user >= user_total) die("--first-user must be below the number of users");

	open_sockets();
	slots = calloc(opt.concurrency, sizeof(*slots));
	fds = calloc(socket_count, sizeof(*fds));
	if (!slots || !fds) die("out of memory for slots");
	for (unsigned i = 0; i < opt.concurrency; i++) {
		slots[i].socket_index = (int)(i / SLOTS_PER_SOCKET);
		slots[i].id = (uint8_t)(2 * (i % SLOTS_PER_SOCKET));
	}
	for (unsigned i = 0; i < socket_count; i++) {
		fds[i].fd = sockets[i];
		fds[i].events = POLLIN;
	}

	start = now_us();
	stop_starting = start + (uint64_t)(opt.max_seconds * 1e6);
	window_end_us = stop_starting;
	/* Requests outstanding at the stop get one full timeout, per
	 * retransmission, and no more. */
	hard_stop = stop_starting + (uint64_t)opt.timeout_ms * 1000u * (opt.retries + 1) + 100000u;

	for (;;) {
		bool active = false;
		int wait_ms = 10;

		now = now_us();
		if (now >= hard_stop) {
			stopped_early = true;
			break;
		}

		/* Start sign-ins in idle slots, within the rate and the limits. */
		for (unsigned i = 0; i < opt.concurrency; i++) {
			if (slots[i].phase != SLOT_IDLE) {
				active = true;
				continue;
			}
			if (started >= opt.max_logins || now >= stop_starting) continue;
			if (opt.rate > 0) {
				uint64_t due = start + (uint64_t)((double)started * 1e6 / opt.rate);

				if (due > now) {
					uint64_t wait = (due - now + 999) / 1000;

					if (wait < (uint64_t)wait_ms) wait_ms = (int)wait;
					continue;
				}
			}
			start_login(&slots[i], now);
			active = true;
		}
		if (!active && (started >= opt.max_logins || now >= stop_starting)) break;

		if (poll(fds, socket_count, wait_ms) < 0 && errno != EINTR) die("poll() failed");
		now = now_us();
		for (unsigned s = 0; s < socket_count; s++) {
			if (!(fds[s].revents & POLLIN)) continue;
			for (int batch = 0; batch < 256; batch++) {
				uint8_t reply[RADIUS_MAX_LEN];
				ssize_t n = recv(sockets[s], reply, sizeof(reply), 0);

				if (n < 0) break;
				handle_reply((int)s, reply, (size_t)n, now);
			}
		}
		if (now - last_scan >= 10000) {
			check_deadlines(now);
			last_scan = now;
		}
	}

	now = now_us();
	{
		double elapsed = (double)(now - start) / 1e6;
		/* Throughput counts the sign-ins completed while new ones were
		 * still being started, so the drain at the end does not dilute
		 * it. */
		double active_seconds = (double)((now < stop_starting ? now : stop_starting) - start) / 1e6;
		uint64_t unfinished = 0;
		struct rusage usage;
		double cpu_seconds = 0;

		if (getrusage(RUSAGE_SELF, &usage) == 0)
			cpu_seconds = (double)usage.ru_utime.tv_sec + (double)usage.ru_stime.tv_sec +
				      ((double)usage.ru_utime.tv_usec + (double)usage.ru_stime.tv_usec) / 1e6;

		for (unsigned i = 0; i < opt.concurrency; i++)
			if (slots[i].phase != SLOT_IDLE) unfinished++;
		if (active_seconds <= 0) active_seconds = elapsed;

		printf("config: server=%s rounds=%d concurrency=%u rate=%g timeout_ms=%u retries=%u users=%zu\n",
		       opt.server, opt.rounds, opt.concurrency, opt.rate, opt.timeout_ms, opt.retries, user_total);
		print_round("round1", &stats[0]);
		print_round("round2", &stats[1]);
		printf("result: logins_per_s=%.1f completed=%" PRIu64 " failed=%" PRIu64 " started=%" PRIu64
		       " unfinished=%" PRIu64 " elapsed_s=%.3f unexpected=%" PRIu64 " late=%" PRIu64
		       " bad=%" PRIu64 " stopped_at_hard_limit=%d loadgen_cpu_s=%.2f\n",
		       (double)completed_in_window / active_seconds, completed, failed, started, unfinished, elapsed,
		       unexpected_replies, late_replies, bad_replies, stopped_early ? 1 : 0, cpu_seconds);
	}
	return 0;
}
