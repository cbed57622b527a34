/*
 * sms.h: sending SMS codes through HTTP gateways, and the installation-wide
 * hourly limit.
 */
#ifndef TWOSTEP_SMS_H
#define TWOSTEP_SMS_H

RCSIDH(twostep_sms_h, "$Id$")

#include "rlm_twostep.h"

/** Result of a send. */
typedef enum {
	TWOSTEP_SMS_SENT = 0,		//!< A gateway accepted the message.
	TWOSTEP_SMS_FAILED		//!< Every gateway failed, or the send budget ran out.
} twostep_sms_rcode_t;

int twostep_sms_init(rlm_twostep_t *inst, CONF_SECTION *sms_cs);
void twostep_sms_free(rlm_twostep_t *inst);

twostep_sms_rcode_t twostep_sms_send(rlm_twostep_t const *inst, REQUEST *request, char const *e164,
				     char const *masked, char const *code);

bool twostep_sms_window_take(rlm_twostep_t const *inst, time_t now, time_t *retry_at);

#endif
