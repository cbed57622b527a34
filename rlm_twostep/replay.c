/*
 * replay.c: the set of answered State tokens.
 *
 * Entries sit in a ring in the order they were marked, so expired ones are
 * dropped from the oldest end, and in a chained hash table for lookup. The
 * ring starts small and doubles when full, so memory follows the number of
 * unexpired entries rather than the configured maximum. The
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
	size_t		capacity;	//!< Ring size now; doubles when full, up to max_entries.
	size_t		max_entries;	//!< Largest ring allowed.
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

/** Smallest ring, in entries. */
#define INITIAL_CAPACITY	1024

/** Allocate a ring of capacity entries and its buckets (about two entries a bucket when full). */
static int ring_alloc(twostep_replay_cache_t *cache, size_t capacity)
{
	size_t num_buckets = 1;

	while (num_buckets * 2 < capacity) num_buckets <<= 1;

	cache->entries = calloc(capacity, sizeof(*cache->entries));
	cache->buckets = malloc(num_buckets * sizeof(*cache->buckets));
	if (!cache->entries || !cache->buckets) {
		free(cache->entries);
		free(cache->buckets);
		cache->entries = NULL;
		cache->buckets = NULL;
		return -1;
	}
	memset(cache->buckets, 0xff, num_buckets * sizeof(*cache->buckets));
	cache->capacity = capacity;
	cache->mask = num_buckets - 1;
	cache->head = 0;
	cache->count = 0;
	return 0;
}

twostep_replay_cache_t *twostep_replay_cache_create(size_t max_entries)
{
	twostep_replay_cache_t *cache;

	if (max_entries == 0 || max_entries >= NO_ENTRY) return NULL;

	cache = calloc(1, sizeof(*cache));
	if (!cache) return NULL;

	cache->max_entries = max_entries;
	if (ring_alloc(cache, max_entries < INITIAL_CAPACITY ? max_entries : INITIAL_CAPACITY) < 0) {
		free(cache);
		return NULL;
	}
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

/** Double the ring, keeping every entry in order. @return 0, or -1 when at the maximum or out of memory. */
static int ring_grow(twostep_replay_cache_t *cache)
{
	replay_entry_t	*old_entries = cache->entries;
	uint32_t	*old_buckets = cache->buckets;
	size_t		old_capacity = cache->capacity, old_head = cache->head, old_count = cache->count;
	size_t		old_mask = cache->mask;
	size_t		capacity = cache->capacity * 2;

	if (cache->capacity >= cache->max_entries) return -1;
	if (capacity > cache->max_entries) capacity = cache->max_entries;
	if (ring_alloc(cache, capacity) < 0) {
		cache->entries = old_entries;
		cache->buckets = old_buckets;
		cache->capacity = old_capacity;
		cache->head = old_head;
		cache->count = old_count;
		cache->mask = old_mask;
		return -1;
	}

	for (size_t i = 0; i < old_count; i++) {
		replay_entry_t const	*entry = &old_entries[(old_head + i) % old_capacity];
		size_t			bucket = bucket_of(cache, entry->nonce);

		cache->entries[i] = *entry;
		cache->entries[i].next = cache->buckets[bucket];
		cache->buckets[bucket] = (uint32_t) i;
	}
	cache->count = old_count;
	free(old_entries);
	free(old_buckets);
	return 0;
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
	if (cache->count == cache->capacity && ring_grow(cache) < 0) {
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
