/*
 * test_replay.c: the set of answered State tokens.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include "replay.h"

#define NOW	1700000000

/** Fill a nonce whose first four bytes (the hash) are bucket_bytes and the rest n. */
static void make_nonce(uint8_t nonce[TWOSTEP_STATE_NONCE_LEN], uint32_t bucket_bytes, uint32_t n)
{
	memset(nonce, 0, TWOSTEP_STATE_NONCE_LEN);
	memcpy(nonce, &bucket_bytes, sizeof(bucket_bytes));
	memcpy(nonce + 4, &n, sizeof(n));
}

static void test_replay_second_answer_seen(void **ctx)
{
	twostep_replay_cache_t	*cache = twostep_replay_cache_create(16);
	uint8_t			nonce[TWOSTEP_STATE_NONCE_LEN];

	(void) ctx;
	assert_non_null(cache);
	make_nonce(nonce, 1, 1);

	assert_int_equal(twostep_replay_mark(cache, nonce, NOW + 120, NOW), TWOSTEP_REPLAY_FIRST);
	assert_int_equal(twostep_replay_mark(cache, nonce, NOW + 120, NOW + 1), TWOSTEP_REPLAY_SEEN);
	assert_int_equal(twostep_replay_mark(cache, nonce, NOW + 120, NOW + 120), TWOSTEP_REPLAY_SEEN);
	assert_int_equal(twostep_replay_count(cache), 1);

	twostep_replay_cache_free(cache);
}

static void test_replay_other_nonce_first(void **ctx)
{
	twostep_replay_cache_t	*cache = twostep_replay_cache_create(16);
	uint8_t			a[TWOSTEP_STATE_NONCE_LEN], b[TWOSTEP_STATE_NONCE_LEN];

	(void) ctx;
	make_nonce(a, 7, 1);
	make_nonce(b, 7, 2);	/* same bucket, other nonce */

	assert_int_equal(twostep_replay_mark(cache, a, NOW + 120, NOW), TWOSTEP_REPLAY_FIRST);
	assert_int_equal(twostep_replay_mark(cache, b, NOW + 120, NOW), TWOSTEP_REPLAY_FIRST);
	assert_int_equal(twostep_replay_mark(cache, a, NOW + 120, NOW), TWOSTEP_REPLAY_SEEN);
	assert_int_equal(twostep_replay_mark(cache, b, NOW + 120, NOW), TWOSTEP_REPLAY_SEEN);

	twostep_replay_cache_free(cache);
}

static void test_replay_expired_entry_dropped(void **ctx)
{
	twostep_replay_cache_t	*cache = twostep_replay_cache_create(16);
	uint8_t			nonce[TWOSTEP_STATE_NONCE_LEN];

	(void) ctx;
	make_nonce(nonce, 3, 3);

	assert_int_equal(twostep_replay_mark(cache, nonce, NOW + 120, NOW), TWOSTEP_REPLAY_FIRST);
	/* One second past expiry the entry goes; the State itself is refused as expired by then. */
	assert_int_equal(twostep_replay_mark(cache, nonce, NOW + 240, NOW + 121), TWOSTEP_REPLAY_FIRST);
	assert_int_equal(twostep_replay_count(cache), 1);

	twostep_replay_cache_free(cache);
}

static void test_replay_full_fails_closed(void **ctx)
{
	twostep_replay_cache_t	*cache = twostep_replay_cache_create(4);
	uint8_t			nonce[TWOSTEP_STATE_NONCE_LEN];
	uint32_t		i;

	(void) ctx;
	for (i = 0; i < 4; i++) {
		make_nonce(nonce, i, i);
		assert_int_equal(twostep_replay_mark(cache, nonce, NOW + 120, NOW), TWOSTEP_REPLAY_FIRST);
	}

	make_nonce(nonce, 99, 99);
	assert_int_equal(twostep_replay_mark(cache, nonce, NOW + 120, NOW), TWOSTEP_REPLAY_FULL);

	/* A full set still recognises what it holds. */
	make_nonce(nonce, 2, 2);
	assert_int_equal(twostep_replay_mark(cache, nonce, NOW + 120, NOW), TWOSTEP_REPLAY_SEEN);

	/* Once the old entries expire there is room again. */
	make_nonce(nonce, 99, 99);
	assert_int_equal(twostep_replay_mark(cache, nonce, NOW + 300, NOW + 121), TWOSTEP_REPLAY_FIRST);
	assert_int_equal(twostep_replay_count(cache), 1);

	twostep_replay_cache_free(cache);
}

static void test_replay_ring_wraps(void **ctx)
{
	twostep_replay_cache_t	*cache = twostep_replay_cache_create(8);
	uint8_t			nonce[TWOSTEP_STATE_NONCE_LEN];
	uint32_t		i;

	(void) ctx;
	/* Many rounds through a small ring, all in one bucket, each expiring before the next. */
	for (i = 0; i < 100; i++) {
		make_nonce(nonce, 5, i);
		assert_int_equal(twostep_replay_mark(cache, nonce, NOW + i, NOW + i), TWOSTEP_REPLAY_FIRST);
		assert_int_equal(twostep_replay_mark(cache, nonce, NOW + i, NOW + i), TWOSTEP_REPLAY_SEEN);
		assert_true(twostep_replay_count(cache) <= 2);
	}

	twostep_replay_cache_free(cache);
}

static void test_replay_drop_middle_of_chain(void **ctx)
{
	twostep_replay_cache_t	*cache = twostep_replay_cache_create(8);
	uint8_t			a[TWOSTEP_STATE_NONCE_LEN], b[TWOSTEP_STATE_NONCE_LEN], c[TWOSTEP_STATE_NONCE_LEN];

	(void) ctx;
	make_nonce(a, 9, 1);
	make_nonce(b, 9, 2);
	make_nonce(c, 9, 3);

	/* a is the oldest and ends up last in its chain: dropping it must keep b and c. */
	assert_int_equal(twostep_replay_mark(cache, a, NOW + 10, NOW), TWOSTEP_REPLAY_FIRST);
	assert_int_equal(twostep_replay_mark(cache, b, NOW + 100, NOW), TWOSTEP_REPLAY_FIRST);
	assert_int_equal(twostep_replay_mark(cache, c, NOW + 100, NOW), TWOSTEP_REPLAY_FIRST);

	assert_int_equal(twostep_replay_mark(cache, b, NOW + 100, NOW + 11), TWOSTEP_REPLAY_SEEN);
	assert_int_equal(twostep_replay_mark(cache, c, NOW + 100, NOW + 11), TWOSTEP_REPLAY_SEEN);
	assert_int_equal(twostep_replay_mark(cache, a, NOW + 100, NOW + 11), TWOSTEP_REPLAY_FIRST);

	twostep_replay_cache_free(cache);
}

static void test_replay_grows_keeping_entries(void **ctx)
{
	twostep_replay_cache_t	*cache = twostep_replay_cache_create(5000);
	uint8_t			nonce[TWOSTEP_STATE_NONCE_LEN];
	uint32_t		i;

	(void) ctx;
	/* Past the initial ring of 1024, with the oldest entry not at index 0. */
	make_nonce(nonce, 0, 0);
	assert_int_equal(twostep_replay_mark(cache, nonce, NOW + 1, NOW), TWOSTEP_REPLAY_FIRST);
	for (i = 1; i <= 3000; i++) {
		make_nonce(nonce, i, i);
		assert_int_equal(twostep_replay_mark(cache, nonce, NOW + 120, NOW + 2), TWOSTEP_REPLAY_FIRST);
	}
	assert_int_equal(twostep_replay_count(cache), 3000);
	for (i = 1; i <= 3000; i++) {
		make_nonce(nonce, i, i);
		assert_int_equal(twostep_replay_mark(cache, nonce, NOW + 120, NOW + 2), TWOSTEP_REPLAY_SEEN);
	}

	/* The maximum still holds after growing. */
	for (i = 3001; i <= 5000; i++) {
		make_nonce(nonce, i, i);
		assert_int_equal(twostep_replay_mark(cache, nonce, NOW + 120, NOW + 2), TWOSTEP_REPLAY_FIRST);
	}
	make_nonce(nonce, 5001, 5001);
	assert_int_equal(twostep_replay_mark(cache, nonce, NOW + 120, NOW + 2), TWOSTEP_REPLAY_FULL);

	twostep_replay_cache_free(cache);
}

static void test_replay_create_limits(void **ctx)
{
	(void) ctx;
	assert_null(twostep_replay_cache_create(0));
	twostep_replay_cache_free(NULL);
}

#define RACE_THREADS	8
#define RACE_ROUNDS	200

typedef struct {
	twostep_replay_cache_t	*cache;
	uint32_t		round;
	pthread_barrier_t	*barrier;
	int			first;
} race_arg_t;

static void *race_worker(void *ptr)
{
	race_arg_t	*arg = ptr;
	uint8_t		nonce[TWOSTEP_STATE_NONCE_LEN];

	make_nonce(nonce, arg->round, arg->round);
	pthread_barrier_wait(arg->barrier);
	arg->first = (twostep_replay_mark(arg->cache, nonce, NOW + 120, NOW) == TWOSTEP_REPLAY_FIRST);
	return NULL;
}

static void test_replay_concurrent_one_first(void **ctx)
{
	twostep_replay_cache_t	*cache = twostep_replay_cache_create(RACE_ROUNDS * 2);
	pthread_barrier_t	barrier;
	pthread_t		threads[RACE_THREADS];
	race_arg_t		args[RACE_THREADS];
	uint32_t		round;
	int			i, firsts;

	(void) ctx;
	for (round = 0; round < RACE_ROUNDS; round++) {
		pthread_barrier_init(&barrier, NULL, RACE_THREADS);
		for (i = 0; i < RACE_THREADS; i++) {
			args[i] = (race_arg_t) { .cache = cache, .round = round, .barrier = &barrier };
			assert_int_equal(pthread_create(&threads[i], NULL, race_worker, &args[i]), 0);
		}
		firsts = 0;
		for (i = 0; i < RACE_THREADS; i++) {
			pthread_join(threads[i], NULL);
			firsts += args[i].first;
		}
		pthread_barrier_destroy(&barrier);
		assert_int_equal(firsts, 1);
	}

	twostep_replay_cache_free(cache);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replay_second_answer_seen),
		cmocka_unit_test(test_replay_other_nonce_first),
		cmocka_unit_test(test_replay_expired_entry_dropped),
		cmocka_unit_test(test_replay_full_fails_closed),
		cmocka_unit_test(test_replay_ring_wraps),
		cmocka_unit_test(test_replay_drop_middle_of_chain),
		cmocka_unit_test(test_replay_grows_keeping_entries),
		cmocka_unit_test(test_replay_create_limits),
		cmocka_unit_test(test_replay_concurrent_one_first),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
