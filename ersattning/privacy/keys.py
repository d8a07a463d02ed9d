"""The pseudonym key: where it lives and how it is made.

The key lives outside the store (an environment variable or a private key file),
so a copy of the store is not a copy of the key.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
import stat
import time
from typing import Protocol

ENV_KEY = "ERSATTNING_PSEUDONYM_KEY"
ENV_KEY_FILE = "ERSATTNING_PSEUDONYM_KEY_FILE"
DEFAULT_KEY_FILE = "~/.config/ersattning/pseudonym.key"

MIN_KEY_BYTES = 16
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")
# How long to wait for a key file another process has just created but not yet written.
_RACE_WAIT_SECONDS = 2.0


class PseudonymKeyError(Exception):
    """A problem with the pseudonym key that the user can fix; the message names the file or variable."""


class KeyMismatch(PseudonymKeyError):
    """The store was written with another pseudonym key than the one given; nothing was written."""


# --------------------------------------------------------------------------- key


def load_key(key_file: str | os.PathLike[str] | None = None, *, create: bool = True) -> bytes:
    """The secret key for pseudonyms, kept outside the store.

    Order: the environment variable ``ERSATTNING_PSEUDONYM_KEY`` (its UTF-8
    bytes, at least 16); else the key file (``key_file``, else
    ``ERSATTNING_PSEUDONYM_KEY_FILE``, else ``~/.config/ersattning/pseudonym.key``),
    which must be private (no group/other permissions) and hold 64 hex
    characters. A missing file is created with a fresh random key when
    ``create`` is true: losing or changing the key changes every pseudonym.
    """
    env_key = os.environ.get(ENV_KEY)
    if env_key:
        key = env_key.encode("utf-8")
        if len(key) < MIN_KEY_BYTES:
            raise PseudonymKeyError(
                f"environment variable {ENV_KEY} is too short: {len(key)} bytes, need at least {MIN_KEY_BYTES}"
            )
        return key

    if key_file is None:
        key_file = os.environ.get(ENV_KEY_FILE) or DEFAULT_KEY_FILE
    path = os.path.expanduser(os.fspath(key_file))

    if os.path.exists(path):
        return _read_key_file(path)
    if not create:
        raise PseudonymKeyError(
            f"pseudonym key file {path} does not exist; create it, set {ENV_KEY_FILE} to another file, or set {ENV_KEY}"
        )
    return _create_key_file(path)


def _create_key_file(path: str) -> bytes:
    """Create the key file atomically (O_EXCL, mode 0600); if another process won the race, read its key."""
    parent = os.path.dirname(path)
    try:
        if parent:
            os.makedirs(parent, mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key_file(path, wait_for_content=True)
    except OSError as exc:
        raise PseudonymKeyError(f"cannot create pseudonym key file {path}: {exc.strerror or exc}") from exc

    key_hex = secrets.token_hex(32)
    try:
        data = (key_hex + "\n").encode("ascii")
        while data:
            data = data[os.write(fd, data) :]
        os.fsync(fd)  # a key lost in a crash would silently change every pseudonym
    except OSError as exc:
        os.close(fd)
        _unlink_quietly(path)  # never leave an empty or partial key behind
        raise PseudonymKeyError(f"cannot write pseudonym key file {path}: {exc.strerror or exc}") from exc
    os.close(fd)
    return bytes.fromhex(key_hex)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _read_key_file(path: str, *, wait_for_content: bool = False) -> bytes:
    """Read and check a key file; permissions are checked on the open descriptor, not the name."""
    deadline = time.monotonic() + (_RACE_WAIT_SECONDS if wait_for_content else 0.0)
    while True:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise PseudonymKeyError(f"cannot open pseudonym key file {path}: {exc.strerror or exc}") from exc
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise PseudonymKeyError(f"pseudonym key file {path} is not a regular file")
            mode = stat.S_IMODE(st.st_mode)
            if os.name == "posix" and mode & 0o077:
                raise PseudonymKeyError(
                    f"pseudonym key file {path} is readable by others (mode {mode:04o}); make it private with: chmod 600 {path}"
                )
            raw = b""
            while chunk := os.read(fd, 4096):
                raw += chunk
                if len(raw) > 4096:  # a key file is 65 bytes; do not slurp a wrong, huge file
                    break
        except OSError as exc:
            raise PseudonymKeyError(f"cannot read pseudonym key file {path}: {exc.strerror or exc}") from exc
        finally:
            os.close(fd)
        if raw or time.monotonic() >= deadline:
            break
        time.sleep(0.02)  # created by a concurrent process that has not written it yet

    text = raw.decode("ascii", errors="replace").strip()
    if not _HEX_KEY.fullmatch(text):
        # Never echo the content: it may be a real secret in the wrong format.
        raise PseudonymKeyError(
            f"pseudonym key file {path} is malformed: expected 64 hexadecimal characters "
            f"(e.g. from `python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )
    return bytes.fromhex(text)


# --------------------------------------------------------------------------- which key, and the store's record of it

#: the store's meta data key holding the fingerprint of the pseudonym key it was written with
FINGERPRINT_META = "pseudonym_key_fingerprint"
_FINGERPRINT_LABEL = b"ersattning: fingerprint of the pseudonym key, v1"


def key_fingerprint(key: bytes) -> str:
    """``v1:`` and an HMAC-SHA256 of a fixed label under the key (hex): it tells two keys apart and reveals
    nothing of the key (docs/personal-data.md)."""
    return "v1:" + hmac.digest(key, _FINGERPRINT_LABEL, "sha256").hex()


def key_origin() -> str:
    """Where :func:`load_key` takes the key from now, as a user reads it (never the key)."""
    if os.environ.get(ENV_KEY):
        return f"the environment variable {ENV_KEY}"
    return f"the key file {key_file_path()}"


def key_file_path() -> str:
    """The key file :func:`load_key` reads when no key is in the environment."""
    return os.path.expanduser(os.environ.get(ENV_KEY_FILE) or DEFAULT_KEY_FILE)


def existing_key() -> bytes | None:
    """The key, when one is set or its file exists; None (and nothing created) when there is none yet."""
    if not os.environ.get(ENV_KEY) and not os.path.exists(key_file_path()):
        return None
    return load_key(create=False)


class MetaData(Protocol):
    """What a store offers for its meta data (``ersattning.store.Store``)."""

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...


def check_store_key(store: MetaData, key: bytes | None, shown: str, *, record: bool) -> bool:
    """Stop (:class:`KeyMismatch`) when the store records another key than ``key`` (None: there is no key here);
    with ``record``, record ``key``'s fingerprint in a store that has none. True when it was recorded just now.

    ``shown`` names the store in the message. Neither key is ever shown: only where this one came from.
    """
    recorded = store.get_meta(FINGERPRINT_META)
    if recorded is not None:
        if key is not None and hmac.compare_digest(recorded, key_fingerprint(key)):
            return False
        raise KeyMismatch(_mismatch(shown, key is None))
    if record and key is not None:
        store.set_meta(FINGERPRINT_META, key_fingerprint(key))
        return True
    return False


def _mismatch(shown: str, no_key: bool) -> str:
    if no_key:
        here = f"the store {shown} was written with a pseudonym key, and none is set here ({key_origin()} does not exist), so"
    else:
        here = f"the store {shown} was written with another pseudonym key than this one (from {key_origin()}):"
    return (
        f"{here} every pseudonym would differ, and no "
        f"recipient, staff member or visit would match the stored ones. Nothing was written. Use the key the store was "
        f"written with: set {ENV_KEY} to it, or {ENV_KEY_FILE} to its key file (default {DEFAULT_KEY_FILE})"
    )

