"""Personal data: the pseudonym key, keyed pseudonyms and Swedish identity numbers.

Personal data rules: the store holds pseudonyms only (see ``docs/personal-data.md``).
"""

from ersattning.privacy.identity_numbers import (
    MASK,
    PNR_PATTERN,
    canonical,
    canonical_ids,
    canonical_numbers,
    find_personnummer,
    is_personnummer,
    mask_numbers,
    masked_cells,
    personnummer_columns,
)
from ersattning.privacy.keyed_hash import hash_arrow_strings
from ersattning.privacy.keys import (
    DEFAULT_KEY_FILE,
    ENV_KEY,
    ENV_KEY_FILE,
    KeyMismatch,
    PseudonymKeyError,
    check_store_key,
    existing_key,
    key_origin,
    load_key,
)
from ersattning.privacy.pseudonymiser import Pseudonymiser

__all__ = [
    "DEFAULT_KEY_FILE",
    "MASK",
    "ENV_KEY",
    "ENV_KEY_FILE",
    "PNR_PATTERN",
    "KeyMismatch",
    "PseudonymKeyError",
    "Pseudonymiser",
    "canonical",
    "canonical_ids",
    "canonical_numbers",
    "check_store_key",
    "existing_key",
    "find_personnummer",
    "hash_arrow_strings",
    "is_personnummer",
    "key_origin",
    "load_key",
    "mask_numbers",
    "masked_cells",
    "personnummer_columns",
]
