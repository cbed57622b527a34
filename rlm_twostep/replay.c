/*
 * replay.c: the set of answered State tokens.
 *
 * Entries sit in a ring in the order they were marked, so expired ones are
 * dropped from the oldest end, and in a chained hash table for lookup. The
 * nonces are random and authenticated by the token's tag, so their first
 * bytes are a good hash that a client cannot choose. One mutex guards it all.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"

#define NO_ENTRY	UINT32_MAX

/** One answered token. */
typedef struct {
	uint8_t		nonce[TWOSTEP_STATE_NONCE_LEN];	//!< Token nonce.
	uint32_t	next;		//!< Next entry in the same bucket, or NO_ENTRY.
	int64_t		expires;	//!< When the token expires anyway.
} replay_entry_t;

struct twostep_replay_cache {
	pthread_mutex_t	mutex;		//!< Guards every field below.
	replay_entry_t	*entries;	//!< Ring of capacity entries.
	size_t		capacity;	//!< Ring size.
	size_t		head;		//!< Index of the oldest entry.
	size_t		count;		//!< Entries in use.
	uint32_t	*buckets;	//!< First entry of each hash chain, or NO_ENTRY.
	size_t		mask;		//!< Number of buckets minus one (a power of two).
};

static size_t bucket_of(twostep_replay_cache_t const *cache, uint8_t const *nonce)
{
	uint32_t hash;

	memcpy(&hash, nonce, sizeof(hash));
	return hash & cache->mask;
}

twostep_replay_cache_t *twostep_replay_cache_create(size_t max_entries)
{
	twostep_replay_cache_t	*cache;
	size_t			num_buckets = 1;

	if (max_entries == 0 || max_entries >= NO_ENTRY) return NULL;

	cache = calloc(1, sizeof(*cache));
	if (!cache) return NULL;

	/* About two entries a bucket when the set is full. */
	while (num_buckets * 2 < max_entries) num_buckets <<= 1;

	/* calloc leaves the pages unmapped until used, so a large capacity costs little until filled. */
	cache->entries = calloc(max_entries, sizeof(*cache->entries));
	cache->buckets = malloc(num_buckets * sizeof(*cache->buckets));
	if (!cache->entries || !cache->buckets) {
		twostep_replay_cache_free(cache);
		return NULL;
	}
	memset(cache->buckets, 0xff, num_buckets * sizeof(*cache->buckets));
	cache->capacity = max_entries;
	cache->mask = num_buckets - 1;
	pthread_mutex_init(&cache->mutex, NULL);

	return cache;
}

void twostep_replay_cache_free(twostep_replay_cache_t *cache)
{
	if (!cache) return;
	if (cache->capacity) pthread_mutex_destroy(&cache->mutex);
	free(cache->entries);
	free(cache->buckets);
	free(cache);
}

/** Unlink the oldest entry from its hash chain and the ring. */
static void drop_oldest(twostep_replay_cache_t *cache)
{
	uint32_t	index = (uint32_t) cache->head;
	uint32_t	*link = &cache->buckets[bucket_of(cache, cache->entries[index].nonce)];

	while (*link != index) link = &cache->entries[*link].next;
	*link = cache->entries[index].next;

	cache->head = (cache->head + 1) % cache->capacity;
	cache->count--;
}

static bool contains(twostep_replay_cache_t const *cache, uint8_t const *nonce)
{
	uint32_t index;

	for (index = cache->buckets[bucket_of(cache, nonce)]; index != NO_ENTRY; index = cache->entries[index].next) {
		if (memcmp(cache->entries[index].nonce, nonce, TWOSTEP_STATE_NONCE_LEN) == 0) return true;
	}
	return false;
}

twostep_replay_rcode_t twostep_replay_mark(twostep_replay_cache_t *cache,
					   uint8_t const nonce[TWOSTEP_STATE_NONCE_LEN],
					   int64_t expires, int64_t now)
{
	twostep_replay_rcode_t	rcode;
	size_t			tail, bucket;

	pthread_mutex_lock(&cache->mutex);

	while (cache->count > 0 && cache->entries[cache->head].expires < now) drop_oldest(cache);

	if (contains(cache, nonce)) {
		rcode = TWOSTEP_REPLAY_SEEN;
		goto done;
	}
	if (cache->count == cache->capacity) {
		rcode = TWOSTEP_REPLAY_FULL;
		goto done;
	}

	tail = (cache->head + cache->count) % cache->capacity;
	bucket = bucket_of(cache, nonce);
	memcpy(cache->entries[tail].nonce, nonce, TWOSTEP_STATE_NONCE_LEN);
	cache->entries[tail].expires = expires;
	cache->entries[tail].next = cache->buckets[bucket];
	cache->buckets[bucket] = (uint32_t) tail;
	cache->count++;
	rcode = TWOSTEP_REPLAY_FIRST;

done:
	pthread_mutex_unlock(&cache->mutex);
	return rcode;
}

size_t twostep_replay_count(twostep_replay_cache_t *cache)
{
	size_t count;

	pthread_mutex_lock(&cache->mutex);
	count = cache->count;
	pthread_mutex_unlock(&cache->mutex);
	return count;
}
