"""The password policy and password hashes.

Policy (ASVS 2.1): 12 to 128 characters, any characters, and not one of the 20,000 most common
passwords. The list is Django 5.2.8's ``common-passwords.txt.gz`` (Royce Williams' list, lower
case), shipped unchanged as package data; like Django, a password is compared in lower case.

Hashes: Argon2id through argon2-cffi at OWASP's first recommended setting (19 MiB of memory,
2 iterations, 1 lane). Accounts made before it hold werkzeug scrypt hashes (``scrypt:...``);
those still verify, and ``needs_rehash`` tells the login to store an Argon2id hash in their
place once the password is known to be right.
"""

from __future__ import annotations

import functools
import gzip
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from werkzeug.security import check_password_hash

from recsys_web.inputs import InvalidInput

MIN_LENGTH, MAX_LENGTH = 12, 128
COMMON_PASSWORDS = "common-passwords.txt.gz"
LEGACY_SCRYPT = "scrypt:"

HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def check_policy(password: str) -> str:
    """The password if the policy accepts it; else an InvalidInput saying why."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise InvalidInput(f"a password is {MIN_LENGTH} to {MAX_LENGTH} characters")
    if password.lower() in common_passwords():
        raise InvalidInput("that password is one of the most common ones; choose another")
    return password


@functools.cache
def common_passwords() -> frozenset[str]:
    data = resources.files("recsys_web").joinpath("data", COMMON_PASSWORDS).read_bytes()
    return frozenset(line.strip() for line in gzip.decompress(data).decode().splitlines())


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify(stored_hash: str, password: str) -> bool:
    if stored_hash.startswith(LEGACY_SCRYPT):
        return check_password_hash(stored_hash, password)
    try:
        return HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True for a legacy scrypt hash, or an Argon2 hash made with other parameters."""
    return stored_hash.startswith(LEGACY_SCRYPT) or HASHER.check_needs_rehash(stored_hash)


@functools.cache
def dummy_hash() -> str:
    """Verified against when the email is unknown, so that a login takes as long either way."""
    return hash_password("not anybody's password")
