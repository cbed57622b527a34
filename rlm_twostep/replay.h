/*
 * replay.h: the set of State tokens that have been answered, so that each
 * challenge can be answered once.
 *
 * Entries are kept in memory until their token expires. The set is local to
 * one radiusd process: a token answered at one server of a cluster is not
 * known to the others.
 *
 * No FreeRADIUS dependency: unit tests link this file alone.
 */
#ifndef TWOSTEP_REPLAY_H
#define TWOSTEP_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "state.h"

typedef struct twostep_replay_cache twostep_replay_cache_t;

/** Result of marking a token as answered. */
typedef enum {
	TWOSTEP_REPLAY_FIRST = 0,	//!< Not seen before: now marked, go on.
	TWOSTEP_REPLAY_SEEN,		//!< Answered before: reject.
	TWOSTEP_REPLAY_FULL		//!< No room left for an unexpired entry: reject.
} twostep_replay_rcode_t;

/** Create an empty set for at most max_entries unexpired tokens.
 *
 * @return the set, or NULL when max_entries is 0 or memory is short.
 */
twostep_replay_cache_t *twostep_replay_cache_create(size_t max_entries);

/** Free a set. NULL is accepted. */
void twostep_replay_cache_free(twostep_replay_cache_t *cache);

/** Mark a token as answered, atomically: of two threads that mark the same
 * nonce, exactly one gets TWOSTEP_REPLAY_FIRST.
 *
 * Entries whose expiry time has passed are dropped first, oldest first.
 *
 * @param[in] cache	The set.
 * @param[in] nonce	The token's nonce, unique to each token.
 * @param[in] expires	Time after which the token is refused anyway (issue time plus lifetime).
 * @param[in] now	Current time, seconds since the epoch.
 */
twostep_replay_rcode_t twostep_replay_mark(twostep_replay_cache_t *cache,
					   uint8_t const nonce[TWOSTEP_STATE_NONCE_LEN],
					   int64_t expires, int64_t now);

/** Number of entries held, for tests and statistics. */
size_t twostep_replay_count(twostep_replay_cache_t *cache);

#endif
