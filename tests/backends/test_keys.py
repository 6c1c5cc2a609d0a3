"""Key escaping holds for hostile inputs: no collision, no slot change."""

from __future__ import annotations

import re

import pytest
from redis.crc import key_slot

from resilience._keys import MAX_PART, escape, make_key

HOSTILE: list[str | bytes | int] = [
    "",
    "a",
    "user:42",
    "user%3A42",
    "{tag}",
    "}{",
    "a}b{c",
    "line\nbreak",
    "tab\tand space ",
    "\x00nul",
    "~",
    "~" + "0" * 64,
    "%b",
    "%",
    "x" * 10_000,
    "x" * 10_001,
    "é",
    "\ud800",  # lone surrogate
    "😀" * 50,
    b"",
    b"a",
    b"user:42",
    b"\xff\xfe\x00",
    b"\x80" * 10_000,
    42,
    "42",
    -1,
]

SAFE_TOKEN = re.compile(r"^[A-Za-z0-9_.~%\-]+$")


def test_every_token_is_made_of_safe_characters() -> None:
    for part in HOSTILE:
        token = escape(part)
        assert SAFE_TOKEN.match(token), (part, token)
        assert len(token) <= max(MAX_PART, 65)


def test_escaping_is_injective_over_hostile_inputs() -> None:
    distinct = {("int", str(p)) if isinstance(p, int) else (type(p).__name__, p) for p in HOSTILE}
    # an int is the same key part as its decimal string, on purpose
    distinct = {("str", v) if t == "int" else (t, v) for t, v in distinct}
    tokens = {escape(p) for p in HOSTILE}
    assert len(tokens) == len(distinct)


def test_hostile_parts_never_move_the_key_to_another_slot() -> None:
    base = make_key("app", "ratelimit", "api")
    slot = key_slot(base.encode())
    for part in HOSTILE:
        key = make_key("app", "ratelimit", "api", part, part)
        assert key.count("{") == 1
        assert key.count("}") == 1
        assert key_slot(key.encode()) == slot


def test_hostile_names_still_give_exactly_one_hash_tag() -> None:
    for name in HOSTILE:
        if isinstance(name, int):
            continue
        key = make_key("app", "breaker", name, "state")
        tag = key[key.index("{") + 1 : key.index("}")]
        assert tag, "an empty hash tag would spread one instance over several slots"
        assert key_slot(key.encode()) == key_slot(make_key("app", "breaker", name).encode())


def test_parts_with_separators_cannot_forge_other_keys() -> None:
    assert make_key("p", "k", "n", "a:b") != make_key("p", "k", "n", "a", "b")
    assert make_key("p", "k", "n}:x{") != make_key("p", "k", "n", "x")


def test_readable_parts_stay_readable() -> None:
    assert make_key("resilience", "ratelimit", "api", "user:42") == (
        "resilience:ratelimit:{api}:user%3A42"
    )


def test_unsupported_part_type_is_refused() -> None:
    with pytest.raises(TypeError, match="key parts are str, bytes or int"):
        escape(1.5)  # type: ignore[arg-type]
