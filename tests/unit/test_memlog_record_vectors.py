# SPDX-License-Identifier: MIT OR Apache-2.0
"""The record format's test vectors: up to date with the format, and passed by memlog's reader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import record_vectors

from memlog import catalog, compaction, episodes
from memlog.compaction import EventFormatError
from memlog.records import Record

VECTORS = Path(__file__).resolve().parents[2] / "docs/record-format/vectors"
INDEX = json.loads((VECTORS / "index.json").read_text())


def test_the_vectors_in_docs_are_the_ones_the_format_makes_now() -> None:
    """Regenerate with `python3 tests/unit/record_vectors.py docs/record-format/vectors`."""
    made = record_vectors.build()
    on_disk = {
        str(p.relative_to(VECTORS)): p.read_bytes() for p in VECTORS.rglob("*") if p.is_file()
    }
    assert sorted(on_disk) == sorted(made)
    assert [name for name in made if made[name] != on_disk[name]] == []


def _hexed(value: Any) -> Any:
    return record_vectors._hexed(value)


@pytest.mark.parametrize("case", INDEX["parts"], ids=[c["name"] for c in INDEX["parts"]])
def test_the_reader_decodes_each_part_vector_as_the_index_says(case: dict[str, Any]) -> None:
    blob = (VECTORS / "parts" / f"{case['name']}.cbor").read_bytes()
    if case["valid"]:
        part = compaction.decode_part(blob)
        assert part is not None and _hexed(part.to_map()) == case["fields"]
    else:
        with pytest.raises(EventFormatError) as error:
            compaction.decode_part(blob)
        assert error.value.code == case["error"]


def _records(paths: list[str]) -> list[Record]:
    return [
        Record(n + 1, 0, 1000, 1, bytes(16), (VECTORS / path).read_bytes())
        for n, path in enumerate(paths)
    ]


@pytest.mark.parametrize("case", INDEX["events"], ids=[c["name"] for c in INDEX["events"]])
def test_the_reader_rebuilds_each_event_vector_as_the_index_says(case: dict[str, Any]) -> None:
    found = catalog.Catalog(episodes.collect_events(_records(case["records"])))
    captures = list(found.captures.values())
    event = (
        next(e for e in captures if e.event == case["event"]) if "event" in case else captures[-1]
    )
    if "error" in case:
        with pytest.raises((EventFormatError, episodes.IncompleteEventError)) as error:
            found.transcript(event)
        assert error.value.code == case["error"]  # type: ignore[union-attr]
    else:
        assert record_vectors._sha(found.transcript(event)) == case["transcript_sha256"]
