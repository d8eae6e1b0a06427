from __future__ import annotations

import re

import numpy as np
import pytest

from actionbank_env.core.actions import MAX_TEXT_LENGTH, Action, ActionBank, ActionCatalog, normalize_text
from actionbank_env.core.embedders import HashingEmbedder
from actionbank_env.errors import ConfigError


class CountingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__(dim=16)
        self.calls: list[list[str]] = []

    def embed(self, texts):  # type: ignore[no-untyped-def]
        self.calls.append(list(texts))
        return super().embed(texts)


def test_ids_are_sequential_never_reused_and_text_keyed() -> None:
    emb = CountingEmbedder()
    catalog = ActionCatalog()
    first = catalog.resolve(["Big Sale", "New arrivals", "big   sale"], emb, origin="initial")
    assert [a.id for a in first] == ["A00000", "A00001", "A00000"]
    assert emb.calls == [["Big Sale", "New arrivals"]]  # one batch, duplicates embedded once
    second = catalog.resolve(["NEW ARRIVALS", "Last chance"], emb, iteration=3)
    assert [a.id for a in second] == ["A00001", "A00002"]
    assert second[1].created_iteration == 3 and second[0].created_iteration == 0
    assert emb.calls[-1] == ["Last chance"]
    assert len(catalog) == 3


def test_catalog_round_trip_keeps_the_id_sequence() -> None:
    emb = HashingEmbedder(dim=16)
    catalog = ActionCatalog()
    catalog.resolve(["a one", "b two"], emb)
    back = ActionCatalog.from_dict(catalog.to_dict())
    assert [a.id for a in back.resolve(["c three", "a one"], emb)] == ["A00002", "A00000"]


def test_bank_is_immutable_and_indexed() -> None:
    emb = HashingEmbedder(dim=16)
    bank = ActionCatalog().bank(["x y", "z w", "X  Y"], emb)
    assert len(bank) == 2 and bank.ids == ("A00000", "A00001")
    assert bank.index_of("A00001") == 1
    assert not bank.embeddings.flags.writeable
    with pytest.raises(ValueError):
        bank.embeddings[0, 0] = 1.0
    assert ActionBank.from_dict(bank.to_dict()) == bank
    with pytest.raises(KeyError, match="A00009"):
        bank.index_of("A00009")


def test_normalisation() -> None:
    assert normalize_text("Ｂｉｇ\u00a0SALE\x07 ") == "big sale"


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: ActionCatalog().resolve([""], HashingEmbedder(8)),
            ConfigError,
            "texts[0] must be a non-empty text after cleaning, got ''.",
        ),
        (lambda: ActionCatalog().resolve(["ok", 5], HashingEmbedder(8)), TypeError, "texts[1] must be a str, got int."),
        (
            lambda: ActionCatalog().resolve(["x" * (MAX_TEXT_LENGTH + 1)], HashingEmbedder(8)),
            ConfigError,
            f"texts[0] must be at most {MAX_TEXT_LENGTH} characters, got {MAX_TEXT_LENGTH + 1} characters.",
        ),
        (
            lambda: Action("A1", "t", np.array([np.nan], np.float32)),
            ValueError,
            "Action.embedding must contain only finite values",
        ),
        (
            lambda: ActionBank([Action("A1", "t", np.ones(2, np.float32)), Action("A1", "u", np.ones(2, np.float32))]),
            ConfigError,
            "ActionBank.actions must have distinct ids, got duplicates ['A1'].",
        ),
        (
            lambda: ActionBank([Action("A1", "t", np.ones(2, np.float32)), Action("A2", "u", np.ones(3, np.float32))]),
            ConfigError,
            "ActionBank.actions must share one embedding dimension, got [2, 3].",
        ),
    ],
)
def test_bad_action_input(make, error, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=re.escape(message)):
        make()
