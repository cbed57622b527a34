# rlm_twostep: build, test and demo.
#
#   make          build build/rlm_twostep.so
#   make run      install what is missing, build, start the demo in the foreground
#   make test     install what is missing, build, run unit and integration tests
#   make install  install the module and its config (honours DESTDIR)

BUILD		:= build
FR_INCLUDE	:= $(BUILD)/include
FR_STAMP	:= $(FR_INCLUDE)/.version

CC		?= cc
OPTFLAGS	?= -O2 -g
WARNFLAGS	:= -Wall -Wextra -Werror
CFLAGS_COMMON	:= -std=gnu11 $(OPTFLAGS) $(WARNFLAGS) -D_GNU_SOURCE
# A server built with -DNDEBUG lays out REQUEST without its magic field: the
# module must match, or it reads request->number at the wrong offset.
FR_NDEBUG	:= $(shell grep -qs 'define WITH_NDEBUG 1' /usr/include/freeradius/features.h && echo -DNDEBUG)
MODULE_CFLAGS	:= $(CFLAGS_COMMON) $(FR_NDEBUG) -fPIC -I$(FR_INCLUDE) -include freeradius-devel/build.h
MODULE_LIBS	:= -lldap -llber -loath -lcurl -lcrypto -lpthread

# Files with no FreeRADIUS dependency, shared by the module, the unit tests and the tools.
PURE_SRCS	:= rlm_twostep/state.c rlm_twostep/otp.c rlm_twostep/escape.c rlm_twostep/crypto.c \
		   rlm_twostep/replay.c rlm_twostep/policy.c rlm_twostep/smsutil.c rlm_twostep/username.c
MODULE_SRCS	:= rlm_twostep/rlm_twostep.c rlm_twostep/signin.c rlm_twostep/challenge.c rlm_twostep/sms.c \
		   rlm_twostep/ldap.c rlm_twostep/directory.c \
		   $(PURE_SRCS)
MODULE_OBJS	:= $(patsubst rlm_twostep/%.c,$(BUILD)/obj/%.o,$(MODULE_SRCS))
HEADERS		:= $(wildcard rlm_twostep/*.h)

# Unit tests run with AddressSanitizer and UndefinedBehaviorSanitizer.
SANFLAGS	:= -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
UNIT_SRCS	:= $(wildcard tests/unit/test_*.c)
UNIT_BINS	:= $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))
TOOL_BINS	:= $(BUILD)/twostep-state

# Where FreeRADIUS looks for modules and its config, for 'make install'.
FR_LIBDIR	?= /usr/lib/freeradius
FR_RADDB	?= /etc/freeradius/3.0

.PHONY: all deps headers module tools unit integration test run install clean bench

all: module tools

deps:
	@./scripts/deps.sh

$(FR_STAMP): scripts/fetch-headers.sh
	@./scripts/fetch-headers.sh $(BUILD)

headers: $(FR_STAMP)

module: $(BUILD)/rlm_twostep.so

$(BUILD)/obj/%.o: rlm_twostep/%.c $(HEADERS) $(FR_STAMP) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(MODULE_CFLAGS) -c $< -o $@

$(BUILD)/rlm_twostep.so: $(MODULE_OBJS)
	$(CC) -shared -o $@ $(MODULE_OBJS) $(MODULE_LIBS)

tools: $(TOOL_BINS)

$(BUILD)/twostep-state: tests/tools/state_tool.c $(PURE_SRCS) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -Irlm_twostep -o $@ tests/tools/state_tool.c $(PURE_SRCS) -loath -lcrypto

$(BUILD)/unit/%: tests/unit/%.c $(PURE_SRCS) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(SANFLAGS) -Irlm_twostep -o $@ $< $(PURE_SRCS) -lcmocka -loath -lcrypto -lpthread

unit: $(UNIT_BINS)
	@./tests/unit/run.sh $(UNIT_BINS)

integration: all
	@./tests/integration/run.sh

test: deps
	@$(MAKE) --no-print-directory all
	@./tests/run-all.sh

run: deps
	@$(MAKE) --no-print-directory all
	@./scripts/demo.sh

# make bench: throughput and CPU per sign-in against stock modules, written to
# docs/performance.md (tests/bench/run.sh). make bench SOAK=1: the soak test.
bench: all $(BUILD)/bench/loadgen
	@if [ "$(SOAK)" = 1 ]; then ./tests/bench/soak.sh; else ./tests/bench/run.sh; fi

$(BUILD)/bench/loadgen: tests/bench/loadgen.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ $< -loath -lcrypto

install: module
	install -d $(DESTDIR)$(FR_LIBDIR) $(DESTDIR)$(FR_RADDB)/mods-available $(DESTDIR)$(FR_RADDB)/sites-available
	install -d -m 0750 $(DESTDIR)$(FR_RADDB)/mods-config/twostep
	install -m 0644 $(BUILD)/rlm_twostep.so $(DESTDIR)$(FR_LIBDIR)/rlm_twostep.so
	install -m 0640 raddb/mods-available/twostep $(DESTDIR)$(FR_RADDB)/mods-available/twostep
	install -m 0640 raddb/sites-available/twostep $(DESTDIR)$(FR_RADDB)/sites-available/twostep

clean:
	rm -rf $(BUILD)/obj $(BUILD)/unit $(BUILD)/rlm_twostep.so $(TOOL_BINS) $(BUILD)/test $(BUILD)/demo
