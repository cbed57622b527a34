#!/usr/bin/env python3
"""Write an LDIF of benchmark users for slapadd, after a base LDIF.

User i is uid=u%06d under ou=people, with password pw-%06d, the method
totp and a TOTP seed of 20 bytes: SHA-1 of "rlm_twostep bench seed:" and the
uid. tests/bench/loadgen.c derives the same names, passwords and seeds, so
the load generator needs no user file.
"""

import argparse
import base64
import hashlib
import sys

SEED_PREFIX = b"rlm_twostep bench seed:"


def seed_base32(uid: str) -> str:
    return base64.b32encode(hashlib.sha1(SEED_PREFIX + uid.encode()).digest()).decode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True,
                        help="LDIF with the suffix, ou=people and the policy, copied first")
    parser.add_argument("--count", type=int, default=100000, help="number of users (default 100000)")
    parser.add_argument("--suffix", default="dc=example,dc=org", help="directory suffix")
    args = parser.parse_args()
    if args.count < 1:
        parser.error(f"invalid --count {args.count}: expected at least 1")

    out = sys.stdout
    with open(args.base, encoding="utf-8") as base:
        out.write(base.read().rstrip("\n") + "\n")
    for i in range(args.count):
        uid = f"u{i:06d}"
        out.write(
            f"\ndn: uid={uid},ou=people,{args.suffix}\n"
            "objectClass: top\n"
            "objectClass: inetOrgPerson\n"
            "objectClass: twostepUser\n"
            f"uid: {uid}\n"
            f"cn: Bench User {i}\n"
            "sn: User\n"
            f"userPassword: pw-{i:06d}\n"
            "twostepMethod: totp\n"
            f"twostepTotpSecret: {seed_base32(uid)}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
